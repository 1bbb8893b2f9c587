import RealModule

/// What `learn()` did with the newest sample.
public enum UpdateOutcome: Sendable, Equatable {
    /// Not an update step (fewer than k1 samples since the last one).
    case waiting
    /// No forecast was resolved yet (the first sample).
    case nothingToLearn
    /// Weights updated; `gradientNorm` is the global L2 norm before clipping.
    case updated(loss: Double, gradientNorm: Double, clipped: Bool)
    /// The loss or gradient was not finite; weights left as they were.
    case skippedNonFinite
    /// The sample held a non-finite value and was ignored entirely.
    case rejectedInput
}

/// Counters of one trainer, for metrics and checkpoints.
public struct TrainerCounters: Sendable, Codable, Equatable {
    public var samples = 0
    /// Samples with a non-finite value, ignored.
    public var rejectedSamples = 0
    public var updates = 0
    public var clippedUpdates = 0
    public var skippedUpdates = 0
    /// Live states that became non-finite and were reset to zero.
    public var stateResets = 0
    /// Loss and pre-clip gradient norm of the latest update; nil before the first.
    public var lastLoss: Double?
    public var lastGradientNorm: Double?
}

/// A model learning one stream online: predict, then learn, with TBPTT(k1, k2) over a rolling
/// window (docs/numerics.md, "Online schedule"). Confined to one thread; after `init` it does
/// not allocate.
public final class OnlineTrainer<S: RNNScalar> {
    public let configuration: ModelConfiguration
    public let network: RecurrentNetwork<S>
    public let optimizer: Optimizer<S>
    public var normalizer: RunningNormalizer
    /// The RMS of each channel's change (the `.change` formulation's unit; kept for both).
    public var changeScale: ChangeScale
    /// Counters since the trainer was created (or restored).
    public var counters = TrainerCounters()
    /// Learning rate of the next update (may be changed at run time).
    public var learningRate: Double
    public var clipThreshold: Double

    @usableFromInline let targets: [Int]
    @usableFromInline let outputs: Int
    @usableFromInline let ringRows: Int               // k2 + 1 samples
    @usableFromInline let features: Int
    /// The network's inputs of the latest `ringRows` samples (`features` each).
    @usableFromInline let ring: UnsafeMutablePointer<S>
    /// The latest `ringRows` samples as they came (`inputs` each): the `.change` targets and the
    /// next sample's change.
    @usableFromInline let values: UnsafeMutablePointer<S>
    @usableFromInline let liveState: UnsafeMutablePointer<S>
    @usableFromInline let carriedState: UnsafeMutablePointer<S>
    @usableFromInline let liveGates: UnsafeMutablePointer<S>
    @usableFromInline let liveAux: UnsafeMutablePointer<S>
    @usableFromInline let liveOutput: UnsafeMutablePointer<S>
    @usableFromInline let nextState: UnsafeMutablePointer<S>
    @usableFromInline let forecastBuffer: UnsafeMutablePointer<S>
    @usableFromInline var sinceUpdate = 0
    @usableFromInline var pendingLearn = false
    /// The first sample of the stream's current segment (0, or the latest restart): no window
    /// reaches before it and no change is taken across it (docs/numerics.md, "Gaps and clock
    /// jumps").
    @usableFromInline var _segmentStart = 0
    public var segmentStart: Int { _segmentStart }

    /// A trainer for `configuration`, computing its updates in `workspace` (shared with the
    /// other trainers of the same shape on this thread) or in one of its own.
    public convenience init(configuration: ModelConfiguration, workspace: TrainingWorkspace<S>? = nil) {
        self.init(configuration: configuration, workspace: workspace, initialize: true)
    }

    init(configuration: ModelConfiguration, workspace: TrainingWorkspace<S>?, initialize: Bool) {
        self.configuration = configuration
        network = RecurrentNetwork(configuration, workspace: workspace, initialize: initialize)
        optimizer = Optimizer(kind: configuration.optimizer, layout: network.layout)
        normalizer = RunningNormalizer(channels: configuration.inputs, normalization: configuration.normalization)
        changeScale = ChangeScale(channels: configuration.inputs, normalization: configuration.normalization)
        learningRate = configuration.learningRate
        clipThreshold = configuration.clipThreshold
        targets = configuration.targetChannels
        outputs = configuration.outputs
        ringRows = configuration.window + 1
        features = configuration.features
        func buffer(_ n: Int) -> UnsafeMutablePointer<S> { allocateZeroed(n) }
        let s = network.stateSize
        ring = buffer(ringRows * features)
        values = buffer(ringRows * configuration.inputs)
        liveState = buffer(s)
        carriedState = buffer(s)
        nextState = buffer(s)
        liveGates = buffer(network.gateRows)
        liveAux = buffer(configuration.hidden)
        liveOutput = buffer(outputs)
        forecastBuffer = buffer(outputs)
    }

    deinit {
        for p in [ring, values, liveState, carriedState, nextState, liveGates, liveAux, liveOutput, forecastBuffer] {
            p.deallocate()
        }
    }

    /// The latest forecast in the original units: row `(p-1)·K + j` is target channel
    /// `targets[j]`, `p` samples ahead of the latest sample.
    public var forecast: UnsafeBufferPointer<S> { UnsafeBufferPointer(start: forecastBuffer, count: outputs) }

    /// The latest forecast in normalised units (what the head produced).
    public var normalizedForecast: UnsafeBufferPointer<S> { UnsafeBufferPointer(start: liveOutput, count: outputs) }

    /// The live recurrent state (`S` values).
    public var state: UnsafeMutableBufferPointer<S> { UnsafeMutableBufferPointer(start: liveState, count: network.stateSize) }

    @inlinable
    func ringRow(_ sample: Int) -> UnsafeMutablePointer<S> { ring + (sample % ringRows) * features }

    @inlinable
    func valueRow(_ sample: Int) -> UnsafeMutablePointer<S> { values + (sample % ringRows) * configuration.inputs }

    /// The unit of channel `j`'s changes now: their running RMS, or 1 without normalisation
    /// (values and changes then reach the network unchanged).
    @inlinable
    func changeUnit(_ j: Int) -> Double { normalizer.enabled ? changeScale.scale(j, mean: normalizer.mean[j]) : 1 }

    /// Normalises `x` (`inputs` values in original units, taken at Unix time `time` when known),
    /// stores the network's inputs in the window and runs one forward step from the live state;
    /// the forecast is then in `forecast`. Call `learn()` next.
    /// A sample with a NaN or infinite value is counted and ignored: returns false.
    /// With `restart`, the sample starts a new segment of the stream: its change is not taken
    /// (it is 0, as the first sample's), and the window of later updates starts at it, from the
    /// live state before it; the weights, the optimizer and the normaliser go on.
    @inlinable @discardableResult
    public func predict(_ x: UnsafePointer<S>, time: Double? = nil, restart: Bool = false) -> Bool {
        precondition(!pendingLearn, "predict() twice without learn()")
        let inputs = configuration.inputs
        for j in 0..<inputs where !x[j].isFinite {
            counters.rejectedSamples += 1
            return false
        }
        let n = counters.samples
        if restart, n > 0 {
            _segmentStart = n
            carriedState.update(from: liveState, count: network.stateSize)
        }
        let continues = n > segmentStart
        normalizer.update(x)
        if continues { changeScale.update(x, previous: valueRow(n - 1)) }
        let row = ringRow(n)
        normalizer.normalize(x, into: row)
        var next = inputs
        if configuration.formulation == .change {
            let previous = valueRow(n - 1)
            for j in 0..<inputs {
                row[inputs + j] = continues ? S(Self.bounded((x[j].double - previous[j].double) / changeUnit(j))) : 0
                row[j] = S(Self.bounded(row[j].double))
            }
            next += inputs
        }
        if configuration.calendar { Self.calendarPhases(time, into: row + next) }
        valueRow(n).update(from: x, count: inputs)
        counters.samples += 1
        network.forwardStep(
            x: row, previous: liveState, next: nextState, gates: liveGates, aux: liveAux, y: liveOutput)
        if sumOfSquares(nextState, count: network.stateSize).isFinite {
            liveState.update(from: nextState, count: network.stateSize)
        } else {
            liveState.update(repeating: 0, count: network.stateSize)
            counters.stateResets += 1
        }
        let k = targets.count
        for o in 0..<outputs {
            let channel = targets[o % k]
            switch configuration.formulation {
            case .level:
                forecastBuffer[o] = S(liveOutput[o].double * normalizer.scale(channel) + normalizer.offset(channel))
            case .change:
                forecastBuffer[o] = S(x[channel].double + liveOutput[o].double * changeUnit(channel))
            }
        }
        pendingLearn = true
        return true
    }

    /// Normalised inputs of the `.change` formulation are bounded to ±`inputBound`, so that a
    /// wild sample (a spike of a thousand typical changes) cannot saturate the cell for long.
    public static var inputBound: Double { 8 }

    @inlinable
    static func bounded(_ v: Double) -> Double { min(max(v, -inputBound), inputBound) }

    /// Sine and cosine of the phase of the day and of the week (weeks starting on Monday, UTC)
    /// of Unix time `time`; zeros when there is no time.
    @inlinable
    static func calendarPhases(_ time: Double?, into out: UnsafeMutablePointer<S>) {
        guard let t = time else {
            out.update(repeating: 0, count: ModelConfiguration.calendarFeatures)
            return
        }
        let days = t / 86_400
        let day = 2 * Double.pi * (days - days.rounded(.down))
        // 1970-01-01 was a Thursday: three days after a Monday.
        let weeks = (days + 3) / 7
        let week = 2 * Double.pi * (weeks - weeks.rounded(.down))
        out[0] = S(Double.sin(day))
        out[1] = S(Double.cos(day))
        out[2] = S(Double.sin(week))
        out[3] = S(Double.cos(week))
    }

    /// Learns from the newest sample: every k1 samples, one TBPTT update.
    @inlinable @discardableResult
    public func learn() -> UpdateOutcome {
        precondition(pendingLearn, "learn() without predict()")
        pendingLearn = false
        sinceUpdate += 1
        guard sinceUpdate == configuration.updateEvery else { return .waiting }
        sinceUpdate = 0
        return update()
    }

    /// `predict(x, time:)` then `learn()`.
    @inlinable @discardableResult
    public func step(_ x: UnsafePointer<S>, time: Double? = nil) -> UpdateOutcome {
        guard predict(x, time: time) else { return .rejectedInput }
        return learn()
    }

    /// Recomputes the current window from the carried state and fills the output gradients
    /// with the mean loss of the forecasts the newest k1 samples resolve. Returns the loss and
    /// the number of window steps (0 when there is nothing to learn).
    @inlinable
    func prepareWindow() -> (loss: Double, steps: Int) {
        let newest = counters.samples - 1
        let k2 = configuration.window, k1 = configuration.updateEvery
        let start = max(segmentStart, newest - k2), steps = newest - start
        guard steps > 0 else { return (0, 0) }
        let net = network
        for t in 0..<steps { net.windowInput(t).update(from: ringRow(start + t), count: features) }
        net.windowState(0).update(from: carriedState, count: net.stateSize)
        net.forwardWindow(steps: steps)
        net.outputGradients.update(repeating: 0, count: steps * outputs)
        let k = targets.count, horizon = configuration.horizon, change = configuration.formulation == .change
        var total = 0.0, terms = 0
        for u in max(newest - k1 + 1, 1)...newest {
            let actual = ringRow(u), value = valueRow(u)
            for p in 1...horizon where u - p >= start {
                let t = u - p - start
                let y = net.windowOutput(t) + (p - 1) * k, dy = net.windowOutputGradient(t) + (p - 1) * k
                let origin = valueRow(u - p)
                for j in 0..<k {
                    let c = targets[j]
                    let target = change
                        ? (value[c].double - origin[c].double) / changeUnit(c) : actual[c].double
                    let e = y[j].double - target
                    switch configuration.loss {
                    case .squared:
                        total += e * e
                        dy[j] = S(2 * e)
                    case .huber(let delta):
                        if abs(e) <= delta {
                            total += 0.5 * e * e
                            dy[j] = S(e)
                        } else {
                            total += delta * (abs(e) - 0.5 * delta)
                            dy[j] = S(e > 0 ? delta : -delta)
                        }
                    }
                    terms += 1
                }
            }
        }
        guard terms > 0 else { return (0, 0) }
        let scale = S(1 / Double(terms))
        for o in 0..<(steps * outputs) { net.outputGradients[o] *= scale }
        return (total / Double(terms), steps)
    }

    /// The loss of the current window and its gradient in `network.gradients` (with step
    /// clipping when configured, before norm or value clipping), without changing the model.
    /// Used by `learn()` and by gradient checks.
    @inlinable
    public func windowLossAndGradient() -> (loss: Double, steps: Int) {
        let (loss, steps) = prepareWindow()
        network.gradients.update(repeating: 0, count: network.layout.count)
        guard steps > 0 else { return (loss, 0) }
        let stepClip: S? = configuration.clipMode == .step ? S(clipThreshold) : nil
        network.backwardWindow(steps: steps, stepClip: stepClip)
        return (loss, steps)
    }

    /// The loss of the current window with the current parameters, forward only.
    @inlinable
    public func windowLoss() -> Double { prepareWindow().loss }

    @inlinable
    func update() -> UpdateOutcome {
        let (loss, steps) = windowLossAndGradient()
        guard steps > 0 else { return .nothingToLearn }
        let newest = counters.samples - 1
        let start = max(segmentStart, newest - configuration.window)
        let nextStart = max(segmentStart, newest + configuration.updateEvery - configuration.window)
        let count = network.layout.count, g = network.gradients
        let norm = sumOfSquares(g, count: count).double.squareRoot()
        // Carry the state the next window starts from, computed before this update's step.
        if nextStart > start {
            let s = network.windowState(nextStart - start)
            if sumOfSquares(s, count: network.stateSize).isFinite {
                carriedState.update(from: s, count: network.stateSize)
            } else {
                carriedState.update(repeating: 0, count: network.stateSize)
            }
        }
        guard loss.isFinite, norm.isFinite else {
            counters.skippedUpdates += 1
            return .skippedNonFinite
        }
        var clipped = false
        let c = clipThreshold
        switch configuration.clipMode {
        case .norm:
            if norm > c {
                clipped = true
                let scale = S(c / (norm + 1e-6))
                for i in 0..<count { g[i] *= scale }
            }
        case .value:
            let bound = S(c)
            for i in 0..<count where abs(g[i]) > bound {
                clipped = true
                g[i] = g[i] > 0 ? bound : -bound
            }
        case .step, .none:
            break
        }
        optimizer.step(parameters: network.parameters, gradients: g, learningRate: learningRate)
        counters.updates += 1
        if clipped { counters.clippedUpdates += 1 }
        counters.lastLoss = loss
        counters.lastGradientNorm = norm
        return .updated(loss: loss, gradientNorm: norm, clipped: clipped)
    }

    /// Bytes this stream's model holds on its own, without a shared workspace: parameters,
    /// optimizer moments, the window of samples and the recurrent states.
    public var bytes: Int {
        let c = configuration, net = network
        return optimizer.stateBytes + MemoryLayout<S>.stride * (net.layout.count + ringRows * (features + c.inputs) + 3 * net.stateSize
            + net.gateRows + c.hidden + 2 * outputs) + MemoryLayout<Double>.stride * 3 * c.inputs
    }

    /// Floating-point operations (matrix products) per sample at steady state:
    /// one forward step, plus every k1 samples a recomputed and back-propagated window of k2.
    public var flopsPerSample: Double {
        let net = network
        return Double(net.forwardFLOPs)
            + Double(configuration.window) * Double(net.forwardFLOPs + net.backwardFLOPs)
            / Double(configuration.updateEvery)
    }
}
