import RealModule

// The forecaster of one stream (docs/numerics.md, "Ensemble" to "Drift"): the network
// (`OnlineTrainer`), an online linear model of the changes and persistence, combined per output
// by exponentiated gradient on their recent errors; prediction bands from adaptive conformal
// inference; an anomaly score from the band; Page-Hinkley drift detection on the errors.
//
// Legend: I = inputs, K = targets, P = horizon, O = P·K outputs (row (p-1)·K + j is target j,
// p steps ahead), E = experts, D = linear features, L = lags of the linear model, W = band
// window, R = P + 1 rows of forecast history, n = the sample's index in the stream.

/// The forecasters a stream's published forecast combines.
public enum Expert: Int, CaseIterable, Sendable {
    /// The latest value.
    case persistence
    /// Exponential smoothing: the level of the latest values, recent ones weighing more.
    case smoothing
    /// Recursive least squares on the latest changes, levels and calendar phases.
    case linear
    /// The recurrent network.
    case network

    /// How many there are: the columns of a forecast's row in ``ForecastHistory``.
    static let count = allCases.count

    public var name: String {
        switch self {
        case .persistence: "persistence"
        case .smoothing: "smoothing"
        case .linear: "linear"
        case .network: "network"
        }
    }
}

/// What a forecaster saw, for metrics and checkpoints.
public struct ForecasterCounters: Sendable, Equatable {
    /// Error regime changes detected.
    public var drifts = 0
    /// Forecast values (every output) scored against the value they forecast.
    public var scored = 0
    /// Of those, the ones published with a band, and the ones their band held.
    public var banded = 0
    public var covered = 0

    public init() {}
}

/// One stream's forecaster: predict, then learn, like the `OnlineTrainer` it drives, with the
/// published forecast, its band and the sample's anomaly score on top. Confined to one thread;
/// after `init` it does not allocate.
public final class Forecaster {
    public let configuration: ModelConfiguration
    /// The network and its training (the `network` expert).
    public let trainer: OnlineTrainer<Float>
    public var counters = ForecasterCounters()
    /// The network's learning rate outside a drift's boost (may be changed at run time).
    public var learningRate: Double
    /// Whether the latest sample set off the drift policy.
    public private(set) var driftDetected = false

    // Constants (docs/numerics.md says why each has its value).
    /// Scores in each band's calibration window, and scores before a band is published.
    public static let bandWindow = ConformalBands.window
    public static let bandWarmup = ConformalBands.warmup
    /// Samples before the anomaly score is reported.
    public static let anomalyWarmup = AnomalyScore.warmup
    /// Recursive least squares: forgetting factor and the initial (and largest) covariance.
    static let linearForgetting = 0.999
    /// Samples before drift detection starts.
    public static let driftWarmup = DriftDetector.warmup
    /// After a drift, the network's learning rate starts `driftBoost` times higher and comes
    /// back over `driftBoostSamples` samples.
    public static let driftBoost = DriftDetector.boost
    public static let driftBoostSamples = DriftDetector.boostSamples
    /// The memory, in samples, of the rolling figures for monitoring (`rollingForecastMSE`...).
    public static let rollingMemory = RollingFigures.memory

    public let targets: [Int]
    public let outputs: Int
    public let horizon: Int
    /// Lags and features of the linear model (0 and 0 when it is off).
    public let lags: Int
    public let features: Int
    let inputs: Int
    let rows: Int
    let coverage: Double

    /// Every number of the forecaster's own state, in one buffer (what a checkpoint copies), and
    /// where each part sits in it.
    let state: UnsafeMutablePointer<Double>
    let layout: ForecasterLayout
    var stateCount: Int { layout.count }
    /// What was forecast at the latest `horizon + 1` samples.
    let history: ForecastHistory
    let smoothing: SmoothingExpert
    let combination: Combination
    let bands: ConformalBands
    let drift: DriftDetector
    let anomalyScore: AnomalyScore
    let rolling: RollingFigures
    /// The band windows (ConformalBands), beside the state buffer.
    let scores: UnsafeMutablePointer<Float>
    /// What `forecast`, `lower` and `upper` show.
    let published: UnsafeMutablePointer<Float>
    /// Scratch: the linear model's gain.
    let gain: UnsafeMutablePointer<Double>
    var pendingLearn = false

    /// A forecaster for `configuration`, its network computing in `workspace` (shared with the
    /// other networks of the same shape on this thread) or in one of its own.
    public convenience init(configuration: ModelConfiguration, workspace: TrainingWorkspace<Float>? = nil) {
        self.init(trainer: OnlineTrainer(configuration: configuration, workspace: workspace))
    }

    init(trainer: OnlineTrainer<Float>) {
        let c = trainer.configuration
        configuration = c
        self.trainer = trainer
        learningRate = trainer.learningRate
        inputs = c.inputs
        targets = c.targetChannels
        horizon = c.horizon
        outputs = c.outputs
        coverage = c.coverage
        rows = c.horizon + 1
        lags = c.linearLags == 0 ? 0 : min(c.linearLags, max(1, 32 / c.inputs))
        features = c.linearLags == 0 ? 0 : lags * c.inputs + c.inputs + (c.calendar ? ModelConfiguration.calendarFeatures : 0) + 1
        let d = features, o = outputs
        layout = ForecasterLayout(
            inputs: inputs, targets: targets.count, outputs: o, rows: rows, lags: lags, features: d)
        state = allocateZeroed(layout.count)
        scores = allocateZeroed(ConformalBands.windowsCount(outputs: o))
        published = allocateZeroed(3 * o)
        gain = allocateZeroed(max(d, 1))
        history = ForecastHistory(base: state + layout.history, rows: rows, outputs: o)
        smoothing = SmoothingExpert(levels: state + layout.level)
        combination = Combination(weights: state + layout.weights, errorScales: state + layout.errorScale, outputs: o)
        bands = ConformalBands(
            levels: state + layout.bandLevel, scales: state + layout.bandScale, inserted: state + layout.bandScores,
            windows: scores, outputs: o, coverage: coverage)
        drift = DriftDetector(errorScale: state + layout.driftScale, test: state + layout.drift)
        anomalyScore = AnomalyScore(latest: state + layout.anomalyIndex)
        rolling = RollingFigures(figures: state + layout.rolling)
        for i in 0..<d { state[layout.covariance + i * d + i] = 1 }
        combination.start(linear: d > 0)
        bands.start()
        anomalyScore.clear()
        for i in 0..<(3 * o) { published[i] = .nan }
    }

    deinit {
        state.deallocate()
        scores.deallocate()
        published.deallocate()
        gain.deallocate()
    }

    /// The latest forecast in the original units, row `(p-1)·K + j` for target `targets[j]`,
    /// `p` samples ahead: the combination of the experts (or the network's alone without the
    /// ensemble).
    public var forecast: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: published, count: outputs) }

    /// The band around `forecast` at the configured coverage, same rows; NaN where a band is
    /// not calibrated yet (or bands are off).
    public var lower: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: published + outputs, count: outputs) }
    public var upper: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: published + 2 * outputs, count: outputs) }

    /// Whether any output of the latest forecast has a band.
    public var hasBand: Bool { (0..<outputs).contains { !published[outputs + $0].isNaN } }

    /// The latest sample's anomaly score, 0 (inside the band) to 1 (far outside): the share of
    /// the horizon-1 error that lies beyond the band's half-width, the largest over the
    /// targets. nil before `anomalyWarmup` samples, without a band, or with bands off.
    public var anomaly: Double? { anomalyScore.value }

    /// The mean squared error of the published step-1 forecast over about the latest
    /// `rollingMemory` samples (every target, the stream's units), and persistence's: what a
    /// monitor compares. nil before the first forecast is scored.
    public var rollingForecastMSE: Double? { rolling.forecastMSE }
    public var rollingPersistenceMSE: Double? { rolling.persistenceMSE }

    /// The share of step-1 values inside their band over about the latest `rollingMemory`
    /// forecasts with one; nil before the first.
    public var rollingCoverage: Double? { rolling.coverage }

    /// The current combination weights of output `o`, one per ``Expert``.
    public func combinationWeights(output o: Int) -> [Double] {
        (0..<Expert.count).map { combination.weight($0, output: o) }
    }

    /// The forecast of `expert` made at the latest sample for output `o`.
    public func expertForecast(_ expert: Expert, output o: Int) -> Double {
        let n = trainer.counters.samples - 1
        precondition(n >= 0, "no forecast yet")
        return history.made(at: n)[expert, output: o]
    }

    // MARK: - Predict

    /// Scores the forecasts that `x` (`inputs` values, taken at Unix time `time` when known)
    /// resolves, then forecasts from it: every expert, their combination, the band. Call
    /// `learn()` next. A sample with a NaN or infinite value is counted and ignored: returns false.
    @discardableResult
    public func predict(_ x: UnsafePointer<Float>, time: Double? = nil) -> Bool {
        precondition(!pendingLearn, "predict() twice without learn()")
        for j in 0..<inputs where !x[j].isFinite {
            trainer.counters.rejectedSamples += 1
            return false
        }
        let n = trainer.counters.samples
        resolve(x, sample: n)
        trainer.predict(x, time: time)
        let values = state + layout.valueRing + (n % (lags + 1)) * inputs
        for i in 0..<inputs { values[i] = Double(x[i]) }
        if features > 0 { linearFeatures(sample: n, time: time) }

        let k = targets.count, o = outputs
        let network = trainer.forecast
        let phi = state + layout.featureRing + (n % rows) * features
        let made = history.made(at: n)
        for j in 0..<k {
            smoothing.observe(Double(x[targets[j]]), target: j, first: n == 0)
        }
        for out in 0..<o {
            let j = out % k, channel = targets[j]
            let last = Double(x[channel]), smoothed = smoothing.forecast(target: j)
            var linear = last
            if features > 0 {
                var dot = 0.0
                let w = state + layout.linearWeights + out * features
                for i in 0..<features { dot += w[i] * phi[i] }
                linear = last + dot * trainer.changeUnit(channel)
            }
            made[.persistence, output: out] = last
            made[.smoothing, output: out] = smoothed
            made[.linear, output: out] = linear
            made[.network, output: out] = Double(network[out])
            var combined = Double(network[out])
            if configuration.ensemble {
                combined = combination.combine(output: out, made.experts(output: out))
            }
            let scale = bands.scale(output: out)
            let half = bands.halfWidth(output: out)
            made[combined: out] = combined
            made[halfWidth: out] = half
            made[scale: out] = scale
            published[out] = Float(combined)
            published[o + out] = Float(combined - half)
            published[2 * o + out] = Float(combined + half)
        }
        pendingLearn = true
        return true
    }

    /// The linear model's features of sample `n` into its ring: the latest `L` changes of every
    /// channel and its level (normalised and bounded as the network's inputs), the calendar
    /// phases, and 1.
    func linearFeatures(sample n: Int, time: Double?) {
        let phi = state + layout.featureRing + (n % rows) * features
        var f = 0
        for lag in 0..<lags {
            let m = n - lag
            guard m >= 1 else {
                for _ in 0..<inputs { phi[f] = 0; f += 1 }
                continue
            }
            let current = state + layout.valueRing + (m % (lags + 1)) * inputs
            let previous = state + layout.valueRing + ((m - 1) % (lags + 1)) * inputs
            for i in 0..<inputs {
                phi[f] = OnlineTrainer<Float>.bounded((current[i] - previous[i]) / trainer.changeUnit(i))
                f += 1
            }
        }
        let latest = state + layout.valueRing + (n % (lags + 1)) * inputs
        let normalizer = trainer.normalizer
        for i in 0..<inputs {
            phi[f] = OnlineTrainer<Float>.bounded((latest[i] - normalizer.offset(i)) / normalizer.scale(i))
            f += 1
        }
        if configuration.calendar {
            OnlineTrainer<Double>.calendarPhases(time, into: phi + f)
            f += ModelConfiguration.calendarFeatures
        }
        phi[f] = 1
    }

    // MARK: - Resolve

    /// Scores every forecast that sample `n`, `x`, resolves: the combination's step, the band's
    /// calibration, the anomaly score and the drift detector (horizon 1).
    func resolve(_ x: UnsafePointer<Float>, sample n: Int) {
        driftDetected = false
        anomalyScore.clear()
        let k = targets.count
        var anomaly = AnomalyScore.Tally(known: n >= Self.anomalyWarmup && coverage > 0)
        var signal = 0.0, signals = 0
        var squares = 0.0, persistenceSquares = 0.0, held = 0, banded = 0
        for p in 1...horizon where n - p >= 0 {
            let made = history.made(at: n - p)
            for j in 0..<k {
                let out = (p - 1) * k + j
                let y = Double(x[targets[j]])
                let combined = made[combined: out], half = made[halfWidth: out]
                let error = abs(combined - y)
                if configuration.ensemble {
                    combination.learn(output: out, forecasts: made.experts(output: out), combined: combined, actual: y)
                }
                counters.scored += 1
                if let inside = bands.resolve(output: out, error: error, halfWidth: half, scale: made[scale: out]) {
                    counters.banded += 1
                    if inside { counters.covered += 1 }
                }
                if p == 1 {
                    let persistence = made[.persistence, output: out] - y
                    squares += error * error
                    persistenceSquares += persistence * persistence
                    if !half.isNaN {
                        banded += 1
                        if error <= half { held += 1 }
                    }
                    anomaly.add(error: error, halfWidth: half)
                    if let u = drift.observe(error: error, target: j) {
                        signal += u
                        signals += 1
                    }
                }
            }
        }
        if n >= 1 { anomalyScore.publish(anomaly) }
        if n >= 1 { rolling.roll(squares / Double(k), persistenceSquares / Double(k), held: held, of: banded) }
        if configuration.drift, signals > 0, n >= Self.driftWarmup, drift.watch(signal / Double(signals)) {
            driftPolicy()
        }
    }

    // MARK: - Drift

    /// The policy on a drift, beside the learning-rate boost the detector has started
    /// (`learningRateBoost`): the linear model's covariance back to its initial value, so that
    /// the network and the linear model both learn the new regime faster. (Re-warming the
    /// normalisers and pulling the combination weights back to even were tried and left out:
    /// docs/tuning.md.)
    func driftPolicy() {
        driftDetected = true
        counters.drifts += 1
        let dd = features
        if dd > 0 {
            for i in 0..<(dd * dd) { state[layout.covariance + i] = 0 }
            for i in 0..<dd { state[layout.covariance + i * dd + i] = 1 }
        }
    }

    /// The factor on the network's learning rate now: `driftBoost` right after a drift, back to
    /// 1 in a straight line over `driftBoostSamples` samples.
    public var learningRateBoost: Double {
        drift.learningRateBoost
    }

    // MARK: - Learn

    /// Learns from the newest sample: the network's TBPTT schedule (at its learning rate times
    /// the drift boost), and one recursive-least-squares step of the linear model per forecast
    /// the sample resolves.
    @discardableResult
    public func learn() -> UpdateOutcome {
        precondition(pendingLearn, "learn() without predict()")
        pendingLearn = false
        trainer.learningRate = learningRate * learningRateBoost
        drift.easeBoost()
        let outcome = trainer.learn()
        if features > 0 { learnLinear() }
        return outcome
    }

    /// `predict(x, time:)` then `learn()`.
    @discardableResult
    public func step(_ x: UnsafePointer<Float>, time: Double? = nil) -> UpdateOutcome {
        guard predict(x, time: time) else { return .rejectedInput }
        return learn()
    }

    /// Recursive least squares with forgetting (λ = `linearForgetting`) on the changes the
    /// newest sample resolves: the covariance takes the horizon-1 features once; the other
    /// horizons use its gain. Its trace is kept at or below its initial value, so that a
    /// channel that stops moving cannot wind it up.
    func learnLinear() {
        let n = trainer.counters.samples - 1
        let d = features, k = targets.count, lambda = Self.linearForgetting
        let cov = state + layout.covariance, g = gain
        let newest = history.made(at: n)
        for p in 1...horizon where n - p >= 0 {
            let phi = state + layout.featureRing + ((n - p) % rows) * d
            let origin = history.made(at: n - p)
            // g = C φ / (λ + φᵀ C φ)
            var denominator = lambda
            for r in 0..<d {
                var s = 0.0
                let row = cov + r * d
                for c in 0..<d { s += row[c] * phi[c] }
                g[r] = s
                denominator += phi[r] * s
            }
            guard denominator.isFinite, denominator > 0 else { continue }
            for r in 0..<d { g[r] /= denominator }
            for j in 0..<k {
                let out = (p - 1) * k + j, channel = targets[j]
                let last = newest[.persistence, output: j]
                let from = origin[.persistence, output: out]
                let target = (last - from) / trainer.changeUnit(channel)
                let w = state + layout.linearWeights + out * d
                var prediction = 0.0
                for i in 0..<d { prediction += w[i] * phi[i] }
                let error = target - prediction
                guard error.isFinite else { continue }
                for i in 0..<d { w[i] += g[i] * error }
            }
            if p == 1 {
                // C ← (C − g φᵀ C) / λ, symmetric: C φ = g · denominator.
                var trace = 0.0
                for r in 0..<d {
                    let row = cov + r * d
                    for c in 0..<d { row[c] = (row[c] - g[r] * g[c] * denominator) / lambda }
                    trace += row[r]
                }
                if trace > Double(d) {
                    let scale = Double(d) / trace
                    for i in 0..<(d * d) { cov[i] *= scale }
                }
            }
        }
    }

    /// Bytes this stream's forecaster holds on its own (the network's included).
    public var bytes: Int {
        trainer.bytes + MemoryLayout<Double>.stride * (stateCount + max(features, 1))
            + MemoryLayout<Float>.stride * (2 * Self.bandWindow + 3) * outputs
    }
}

/// Where each part's numbers sit in the forecaster's one state buffer, in buffer order. A checkpoint
/// copies the buffer as it is, so this order is the checkpoint's format: append, never reorder.
struct ForecasterLayout {
    // The linear expert (recursive least squares).
    let covariance: Int     // D × D, the inverse of the weighted feature covariance
    let linearWeights: Int  // O × D
    let featureRing: Int    // R × D, the features of the latest R samples
    let valueRing: Int      // (L + 1) × I, the latest samples
    // The combination's weights, the smoothing expert's level, the combination's error scale.
    let weights: Int        // O × E
    let level: Int          // K, the smoothing expert's level of each target
    let errorScale: Int     // O, mean squared expert error, for the combination's step
    let history: Int        // R × (E + 3) × O, ForecastHistory
    // The bands (adaptive conformal inference).
    let bandLevel: Int      // O, the adaptive miscoverage α_t
    let bandScale: Int      // O, mean absolute error of the combined forecast
    let bandScores: Int     // O, scores inserted so far
    // Drift (Page-Hinkley), the anomaly score, the rolling figures.
    let driftScale: Int     // K, slow mean absolute error at horizon 1
    let drift: Int          // 5: samples watched, mean signal, cumulative sum, its minimum, boost left
    let anomalyIndex: Int   // 1: the latest sample's score (NaN: none)
    let rolling: Int        // 5: step-1 samples folded in, then the rolling MSE of the forecast and
                            // of persistence, forecasts with a band folded in, and the share held
    /// Numbers in the buffer.
    let count: Int

    init(inputs: Int, targets k: Int, outputs o: Int, rows: Int, lags: Int, features d: Int) {
        var next = 0
        func region(_ count: Int) -> Int {
            defer { next += count }
            return next
        }
        covariance = region(d * d)
        linearWeights = region(o * d)
        featureRing = region(rows * d)
        valueRing = region((lags + 1) * inputs)
        weights = region(o * Expert.count)
        level = region(k)
        errorScale = region(o)
        history = region(ForecastHistory.count(rows: rows, outputs: o))
        bandLevel = region(o)
        bandScale = region(o)
        bandScores = region(o)
        driftScale = region(k)
        drift = region(DriftDetector.testCount)
        anomalyIndex = region(AnomalyScore.count)
        rolling = region(RollingFigures.count)
        count = next
    }
}
