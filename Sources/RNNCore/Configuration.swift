/// The recurrent cell of a model.
public enum CellKind: String, Sendable, Codable, CaseIterable {
    case elman, lstm, gru

    /// Gate blocks of `H` rows in the cell's input and recurrent matrices.
    public var gates: Int {
        switch self {
        case .elman: 1
        case .lstm: 4
        case .gru: 3
        }
    }
}

/// An element-wise nonlinearity: `g1` of the Elman cell, `g2` of the head.
public enum Activation: String, Sendable, Codable, CaseIterable {
    case identity, tanh, sigmoid, relu

    /// The Elman cell's choices, as the configuration file and the flag take them (identity is
    /// the head's, not a cell's).
    public static let elmanChoices: [Activation] = [.tanh, .relu, .sigmoid]
}

/// The per-forecast loss (docs/numerics.md, "Losses").
public enum LossFunction: Sendable, Codable, Equatable {
    /// `e²`.
    case squared
    /// `e²/2` within `delta`, linear beyond.
    case huber(delta: Double)
}

/// The optimizer applied to the flat parameter buffer (PyTorch's definitions).
public enum OptimizerKind: Sendable, Codable, Equatable {
    case sgd
    case momentum(Double)
    case adam(beta1: Double, beta2: Double, epsilon: Double)
    /// Adafactor (Shazeer and Stern, 2018): Adam's second moment of every weight matrix factored
    /// into row and column means; no first moment with β1 = 0 (the default, as the paper's), else
    /// one kept in bfloat16. docs/numerics.md, "Optimizers".
    case adafactor(beta1: Double, beta2: Double, epsilon: Double)

    public static let defaultAdam = OptimizerKind.adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
    public static let defaultAdafactor = OptimizerKind.adafactor(beta1: 0.0, beta2: 0.999, epsilon: 1e-8)
}

/// How gradients are bounded before the optimizer step (docs/numerics.md, "Clipping").
public enum ClipMode: String, Sendable, Codable, CaseIterable {
    /// Global L2 norm over all parameters.
    case norm
    /// Each component clamped.
    case value
    /// The back-propagated state gradient of every time step, scaled down to the threshold.
    case step
    case none
}

/// Online standardisation of input channels.
public enum Normalization: Sendable, Codable, Equatable {
    /// Values reach the network unchanged.
    case none
    /// Running mean and variance per channel; `forgetting` below 1 weights recent samples more.
    case running(forgetting: Double?)
}

/// What the network's head learns to output (docs/numerics.md, "Formulations").
public enum Formulation: String, Sendable, Codable, CaseIterable {
    /// The normalised level of each target `p` steps ahead.
    case level
    /// The change of each target from the latest value, `p` steps ahead, in units of the
    /// channel's typical change (its running RMS): an output of zero is persistence.
    case change
}

/// Everything that defines a model and how it learns. Equal configurations and equal seeds give
/// bit-identical models.
public struct ModelConfiguration: Sendable, Codable, Equatable {
    public var cell: CellKind = .lstm
    /// `g1` of the Elman cell; LSTM and GRU fix their own nonlinearities.
    public var elmanActivation: Activation = .tanh
    /// `g2` of the head.
    public var headActivation: Activation = .identity
    public var hidden: Int = 64
    public var inputs: Int = 1
    /// Input channels to forecast; empty means all of them.
    public var targets: [Int] = []
    /// Steps ahead, P.
    public var horizon: Int = 1
    /// k2: steps back-propagated through (``fitWindowToHorizon()`` lengthens the default).
    public var window: Int = Self.defaultWindow
    /// k1: samples between updates.
    public var updateEvery: Int = 2
    public var loss: LossFunction = .squared
    public var optimizer: OptimizerKind = .defaultAdafactor
    public var learningRate: Double = 2e-3
    public var clipMode: ClipMode = .norm
    public var clipThreshold: Double = 1.0
    public var normalization: Normalization = .running(forgetting: 0.9999)
    /// What the head outputs; `.change` also gives the network each channel's latest change.
    public var formulation: Formulation = .change
    /// Whether the network also sees the time of day and of the week (two phases, as sine and
    /// cosine) of samples that carry a timestamp.
    public var calendar = true
    /// Whether the published forecast combines the network with persistence, smoothing, the
    /// linear model and (beyond horizon 1) the direct and seasonal experts, weighted by their
    /// recent errors (`false`: the network's forecast alone).
    public var ensemble = true
    /// Past changes of every channel that the linear model regresses on (0: no linear model).
    /// Wide streams use fewer (``Forecaster``).
    public var linearLags = 4
    /// The look-back of the direct expert, in samples (0: none); nil: `DirectExpert.defaultLookback`
    /// beyond horizon 1, none at horizon 1 (docs/numerics.md, "Experts and their combination").
    public var directLookback: Int? = nil
    /// The experts the published forecast may combine; nil: every one that is on. An expert left
    /// out keeps weight 0 (and still learns: its forecast is in `rnnd replay`'s figures).
    public var experts: [Expert]? = nil
    /// Coverage of the prediction bands, in (0, 1); 0 publishes no bands and no anomaly score.
    public var coverage = 0.9
    /// Whether a change in a stream's error regime is detected and acted on.
    public var drift = true
    public var seed: UInt64 = 0

    public init() {}

    /// Calendar inputs: sine and cosine of the phase of the day and of the week.
    public static let calendarFeatures = 4

    /// The network's inputs per step: per channel the normalised level (and, with `.change`,
    /// the normalised latest change), then the calendar phases.
    public var features: Int {
        inputs * (formulation == .change ? 2 : 1) + (calendar ? Self.calendarFeatures : 0)
    }

    /// The target channels, with the empty list meaning every input.
    public var targetChannels: [Int] { targets.isEmpty ? Array(0..<inputs) : targets }

    /// The default window, k2. With k1 = 2 and twice the learning rate, 20 steps learn as well
    /// as k1 = 1 over 32 steps did, at under half the cost (docs/tuning.md, "Schedule").
    public static let defaultWindow = 20

    /// A window left at its default is lengthened to the shortest that trains every forecast
    /// error, `horizon + updateEvery - 1`, when the horizon needs more; a window set to another
    /// value is left as it is (and refused by `problems()` when too short).
    public mutating func fitWindowToHorizon() {
        if window == Self.defaultWindow, horizon >= 1, updateEvery >= 1 {
            window = max(window, horizon + updateEvery - 1)
        }
    }

    /// The direct expert's look-back as a stream of this configuration has it: ``directLookback``
    /// when set, else `DirectExpert.defaultLookback` beyond horizon 1 and 0 at horizon 1.
    public var effectiveDirectLookback: Int { DirectExpert.lookback(self) }

    /// Whether the combination may weigh expert `e` (``experts``).
    public func includes(_ e: Expert) -> Bool { experts?.contains(e) ?? true }

    /// Whether expert `e` is on: the linear model with lags, the direct expert with a look-back,
    /// the seasonal expert beyond horizon 1; the others always.
    public func isOn(_ e: Expert) -> Bool {
        switch e {
        case .linear: linearLags > 0
        case .direct: effectiveDirectLookback > 0
        case .seasonal: horizon > 1
        default: true
        }
    }

    /// Whether the combination weighs expert `e`: it is on (``isOn(_:)``) and ``experts`` names it.
    public func combines(_ e: Expert) -> Bool { isOn(e) && includes(e) }

    /// The look-back limit of the direct expert.
    public static let maxDirectLookback = 4096

    /// The learner beyond horizon 1 when the optimizer and learning rate are left at their
    /// defaults: Adam at 0.001. Far ahead the first moment pays (docs/tuning.md, "Long
    /// horizons"); one step ahead Adafactor without one is as accurate and lighter.
    public static let longHorizonOptimizer = OptimizerKind.defaultAdam
    public static let longHorizonLearningRate = 1e-3

    /// The defaults that depend on the horizon, for those left at their defaults: the window
    /// (``fitWindowToHorizon()``), and beyond horizon 1 the optimizer and its learning rate
    /// (``longHorizonOptimizer``). Like the window's, the rule reads a setting equal to its
    /// default as not set.
    public mutating func fitToHorizon() {
        fitWindowToHorizon()
        if horizon > 1, optimizer == .defaultAdafactor, learningRate == Self().learningRate {
            optimizer = Self.longHorizonOptimizer
            learningRate = Self.longHorizonLearningRate
        }
    }

    /// Head outputs: `horizon × targets` (computed without building the target list).
    public var outputs: Int { horizon * (targets.isEmpty ? inputs : targets.count) }

    /// What is wrong with this configuration, in words an operator can act on; empty when valid.
    public func problems() -> [String] {
        var found: [String] = []
        if hidden < 1 { found.append("hidden size must be at least 1 (got \(hidden))") }
        if inputs < 1 { found.append("inputs must be at least 1 (got \(inputs))") }
        if horizon < 1 { found.append("horizon must be at least 1 (got \(horizon))") }
        if window < 1 { found.append("window (k2) must be at least 1 (got \(window))") }
        if updateEvery < 1 { found.append("update-every (k1) must be at least 1 (got \(updateEvery))") }
        if updateEvery > window {
            found.append("update-every (k1 = \(updateEvery)) must not exceed the window (k2 = \(window))")
        }
        if horizon >= 1, updateEvery >= 1, horizon + updateEvery - 1 > window {
            found.append(
                "window (k2 = \(window)) must be at least update-every + horizon - 1 = "
                    + "\(updateEvery + horizon - 1), so that every forecast error is trained on")
        }
        for t in targets where t < 0 || t >= inputs {
            found.append("target channel \(t) does not exist (inputs: \(inputs))")
        }
        if Set(targets).count != targets.count { found.append("target channels repeat: \(targets)") }
        if !(learningRate > 0 && learningRate.isFinite) {
            found.append("learning rate must be a positive number (got \(learningRate))")
        }
        if clipMode != .none, !(clipThreshold > 0 && clipThreshold.isFinite) {
            found.append("clip threshold must be a positive number (got \(clipThreshold))")
        }
        if case .huber(let delta) = loss, !(delta > 0 && delta.isFinite) {
            found.append("Huber delta must be a positive number (got \(delta))")
        }
        if case .momentum(let mu) = optimizer, !(mu >= 0 && mu < 1) {
            found.append("momentum must be in [0, 1) (got \(mu))")
        }
        switch optimizer {
        case .adam(let b1, let b2, let eps), .adafactor(let b1, let b2, let eps):
            if !(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1 && eps > 0) {
                found.append("Adam and Adafactor need 0 ≤ beta1, beta2 < 1 and epsilon > 0")
            }
        case .sgd, .momentum:
            break
        }
        if case .running(let f?) = normalization, !(f > 0 && f < 1) {
            found.append("normalisation forgetting factor must be in (0, 1) (got \(f))")
        }
        if linearLags < 0 || linearLags > 64 { found.append("linear lags must be in 0 ... 64 (got \(linearLags))") }
        if let l = directLookback, l < 0 || l > Self.maxDirectLookback {
            found.append("the direct expert's look-back must be in 0 ... \(Self.maxDirectLookback) (got \(l))")
        }
        if let e = experts {
            if e.isEmpty { found.append("experts: name at least one") }
            if Set(e).count != e.count { found.append("experts repeat: \(e.map(\.name).joined(separator: ","))") }
            if ensemble == false, e != [.network] {
                found.append("experts other than the network need the ensemble (ensemble = off publishes the network alone)")
            }
            // The linear, direct and seasonal experts can be off (by their sizes, or at horizon 1):
            // a list of only those would leave the combination nothing to weigh.
            if !e.isEmpty, !e.contains(where: isOn) {
                found.append("experts: none of \(e.map(\.name).joined(separator: ",")) is on (linear needs linear_lags > 0; direct needs a horizon above 1 or direct_lookback > 0; seasonal needs a horizon above 1)")
            }
        }
        if !(coverage == 0 || (coverage > 0 && coverage < 1)) {
            found.append("band coverage must be in (0, 1), or 0 for no bands (got \(coverage))")
        }
        if cell == .elman, !Activation.elmanChoices.contains(elmanActivation) {
            found.append("the Elman activation must be tanh, relu or sigmoid")
        }
        return found
    }
}
