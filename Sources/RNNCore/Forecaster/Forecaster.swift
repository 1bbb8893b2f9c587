// The forecaster of one stream (docs/numerics.md, "The forecaster: ensemble, bands, anomaly,
// drift"): six experts (persistence, SmoothingExpert, LinearExpert, the network,
// `OnlineTrainer`, and beyond horizon 1 DirectExpert and SeasonalExpert) combined per output by exponentiated
// gradient (Combination); prediction bands by adaptive conformal inference (ConformalBands); an
// anomaly score from the band
// (AnomalyScore); Page–Hinkley drift detection on the errors (DriftDetector); rolling figures for
// monitoring (RollingFigures). Each part is a typed view over its regions of one state buffer
// (ForecasterLayout), so that a checkpoint copies one buffer; this file only composes them, in
// the order the page gives: score what the sample resolves, forecast, learn.
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
    /// Ridge regression of every step ahead on a long look-back of the target's own past (on
    /// beyond horizon 1).
    case direct
    /// The latest value plus the change of the target's day and week profile up to the
    /// forecast's time (on beyond horizon 1; needs samples with a time).
    case seasonal

    /// How many there are: the columns of a forecast's row in ``ForecastHistory``.
    static let count = allCases.count

    public var name: String {
        switch self {
        case .persistence: "persistence"
        case .smoothing: "smoothing"
        case .linear: "linear"
        case .network: "network"
        case .direct: "direct"
        case .seasonal: "seasonal"
        }
    }

    /// The expert called `name`; nil when there is none.
    public init?(name: String) {
        guard let e = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = e
    }
}

extension Expert: Codable {
    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let e = Expert(name: name) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "no expert \(name)"))
        }
        self = e
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
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
    /// Samples with an input the outlier gate held back, level shifts it adopted, and new
    /// segments (a gap, or time going back) started.
    public var outliers = 0
    public var levelShifts = 0
    public var segments = 0

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
    /// The format of the state `writeState` writes, the record format that carries it
    /// (StreamRecord's format version; ForecasterLayout has what each format added).
    public static let recordFormat = 12
    public static let bandWarmup = ConformalBands.warmup
    /// Samples before the anomaly score is reported.
    public static let anomalyWarmup = AnomalyScore.warmup
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
    /// The parts, each a view over its regions of `state`.
    let history: ForecastHistory
    let linear: LinearExpert
    let direct: DirectExpert
    let seasonal: SeasonalExpert
    let smoothing: SmoothingExpert
    let combination: Combination
    let bands: ConformalBands
    let drift: DriftDetector
    let anomalyScore: AnomalyScore
    let rolling: RollingFigures
    let clock: SamplingClock
    let gate: OutlierGate
    /// The latest sample as the stream learns from it (the gate's output).
    let clean: UnsafeMutablePointer<Float>
    /// The bands' windows of scores, beside the state buffer (Float, and checkpointed after it).
    let bandWindows: UnsafeMutablePointer<Float>
    /// What `forecast`, `lower` and `upper` show.
    let published: UnsafeMutablePointer<Float>
    /// Scratch: the linear model's gain, the direct model's factor and features.
    let gain: UnsafeMutablePointer<Double>
    let directScratch: UnsafeMutablePointer<Double>
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
        lags = LinearExpert.lags(c)
        features = LinearExpert.features(c)
        let d = features, o = outputs
        layout = ForecasterLayout(c)
        state = allocateZeroed(layout.count)
        bandWindows = allocateZeroed(ConformalBands.windowsCount(outputs: o))
        published = allocateZeroed(3 * o)
        gain = allocateZeroed(max(d, 1))
        let lookback = DirectExpert.lookback(c)
        directScratch = allocateZeroed(max(DirectExpert.scratchCount(lookback: lookback), 1))
        direct = DirectExpert(
            gram: state + layout.directGram, cross: state + layout.directCross, weights: state + layout.directWeights,
            ring: state + layout.directRing, status: state + layout.directStatus, scratch: directScratch,
            targets: targets.count, horizon: horizon, lookback: lookback)
        seasonal = SeasonalExpert(base: state + layout.seasonal, targets: targets.count, isOn: c.isOn(.seasonal))
        linear = LinearExpert(
            covariance: state + layout.covariance, weights: state + layout.linearWeights,
            featureRing: state + layout.featureRing, valueRing: state + layout.valueRing, gain: gain,
            inputs: inputs, lags: lags, features: d, outputs: o, targets: targets.count, rows: rows, calendar: c.calendar)
        history = ForecastHistory(base: state + layout.history, rows: rows, outputs: o)
        smoothing = SmoothingExpert(levels: state + layout.smoothingLevels)
        combination = Combination(weights: state + layout.combinationWeights, errorScales: state + layout.combinationScales, outputs: o)
        bands = ConformalBands(
            levels: state + layout.bandLevels, scales: state + layout.bandScales, inserted: state + layout.bandInserted,
            debts: state + layout.bandDebts, windows: bandWindows, outputs: o, targets: targets.count, coverage: coverage)
        drift = DriftDetector(errorScales: state + layout.driftScales, test: state + layout.driftTest)
        anomalyScore = AnomalyScore(
            latest: state + layout.anomaly, base: state + layout.anomalyHistory, routine: state + layout.anomalyRoutine,
            novelty: NoveltyScore(in: state, layout: layout, targets: targets.count))
        rolling = RollingFigures(figures: state + layout.rolling)
        clock = SamplingClock(base: state + layout.clock)
        gate = OutlierGate(base: state + layout.gate, inputs: inputs)
        clean = allocateZeroed(inputs)
        clock.start()
        linear.resetCovariance()
        direct.start()
        seasonal.start()
        combination.start(on: configuration.combines)
        bands.start()
        anomalyScore.start()
        for i in 0..<(3 * o) { published[i] = .nan }
    }

    deinit {
        state.deallocate()
        bandWindows.deallocate()
        published.deallocate()
        gain.deallocate()
        directScratch.deallocate()
        clean.deallocate()
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

    /// The latest sample's anomaly score, 0 (usual) to 1 (a departure): per target the larger
    /// of the surprise (how unusual its horizon-1 error beyond the band is against the stream's
    /// own history of such errors) and the novelty (the value outside every value it has
    /// taken), each 0 for `anomalyQuietSamples` samples after it fired (both after a score of
    /// 0.92 or more); the largest over the targets. nil before `anomalyWarmup` samples, without a
    /// band, or with bands off.
    /// docs/numerics.md, "Anomaly score".
    public var anomaly: Double? { anomalyScore.value }

    /// The latest sample's anomaly score of target `targets[j]` alone; nil when `anomaly` is.
    public func anomaly(target j: Int) -> Double? { anomalyScore.value(target: j) }

    /// The alert level of the documented alert rule (docs/anomalies.md).
    public static let anomalyAlertLevel = AnomalyScore.alertLevel
    public static let anomalyQuietSamples = AnomalyScore.quietSamples

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

    /// The stream's usual sampling interval in seconds, estimated from its samples' times; nil
    /// before two samples with a time (docs/numerics.md, "Gaps and clock jumps"). The forecast
    /// `p` steps ahead is for about `p` intervals after the latest sample.
    public var samplingInterval: Double? { clock.interval }

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
        // The clock first: after a gap or a clock set back, the forecasts made before it are not
        // scored and nothing is learned across it.
        let step = clock.observe(time)
        let newSegment = n > 0 && (step == .gap || step == .backwards)
        if newSegment {
            events[Self.scoredFrom] = Double(n)
            counters.segments += 1
        }
        // Then the gate: what the stream learns from this sample.
        var verdict = OutlierGate.Verdict()
        if n == 0 || newSegment || !gateWatches {
            gate.reset(to: x)
            clean.update(from: x, count: inputs)
        } else {
            verdict = gate.admit(x, clean: clean, unit: { trainer.changeUnit($0) }) { i in
                trainer.normalizer.adoptLevel(i, Double(x[i]))
            }
        }
        if verdict.outlier { counters.outliers += 1 }
        if verdict.shift { counters.levelShifts += 1 }
        let restart = newSegment || verdict.shift

        // The time's bins of the day and week, found once per step for every part that reads them.
        let now = time.map(SeasonalExpert.Bins.init)
        resolve(x, sample: n, at: now)
        trainer.predict(clean, time: time, restart: restart)
        linear.remember(clean, sample: n, restart: restart)
        if linear.isOn {
            linear.prepareFeatures(sample: n, time: time, normalizer: trainer.normalizer) { trainer.changeUnit($0) }
        }

        let k = targets.count, o = outputs
        let network = trainer.forecast
        let made = history.made(at: n)
        let learned = cleanValues(at: n)
        for j in 0..<k {
            learned[j] = Double(clean[targets[j]])
            smoothing.observe(learned[j], target: j, first: n == 0 || restart)
        }
        if direct.isOn {
            // A level shift keeps the look-back (the model sees changes from the latest value);
            // only a new segment (a gap, a clock set back) starts it over.
            direct.remember(sample: n, restart: n == 0 || newSegment) { learned[$0] }
            for j in 0..<k {
                let spread = trainer.normalizer.scale(targets[j])
                let phi = direct.prepare(origin: n, target: j, spread: spread)
                for p in 1...horizon {
                    made[.direct, output: (p - 1) * k + j] = learned[j] + direct.change(step: p, features: phi) * spread
                }
            }
        }
        if seasonal.isOn {
            // It learns from samples with a time; the profile belongs to the time of day, so only
            // the level starts over after a gap or a level shift. Without a time, or before the
            // sampling interval is known, it forecasts the latest value.
            let interval = clock.interval
            if let now {
                for j in 0..<k {
                    seasonal.observe(learned[j], target: j, at: now, interval: interval, restart: n == 0 || restart)
                }
            }
            for p in 1...horizon {
                let ahead = time.flatMap { t in interval.map { SeasonalExpert.Bins(t + Double(p) * $0) } }
                for j in 0..<k {
                    var f = learned[j]
                    if let now, let ahead { f += seasonal.change(target: j, from: now, to: ahead) }
                    made[.seasonal, output: (p - 1) * k + j] = f
                }
            }
        }
        for out in 0..<o {
            let j = out % k, channel = targets[j]
            // Every expert forecasts from the value as learned from: after an outlier, from the
            // value the gate held back to (the next sample is far more often back at the old
            // level than at the outlier's).
            let last = learned[j], smoothed = smoothing.forecast(target: j)
            var linearForecast = last
            if linear.isOn { linearForecast += linear.change(output: out, sample: n) * trainer.changeUnit(channel) }
            made[.persistence, output: out] = last
            made[.smoothing, output: out] = smoothed
            made[.linear, output: out] = linearForecast
            made[.network, output: out] = Double(network[out])
            if !direct.isOn { made[.direct, output: out] = last }
            if !seasonal.isOn { made[.seasonal, output: out] = last }
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

    // MARK: - Resolve

    /// Scores every forecast that sample `n`, `x` taken at the time of `bins`, resolves: the
    /// combination's step, the band's calibration, the anomaly score and the drift detector
    /// (horizon 1).
    func resolve(_ x: UnsafePointer<Float>, sample n: Int, at bins: SeasonalExpert.Bins?) {
        driftDetected = false
        anomalyScore.clear()
        let k = targets.count
        var anomalyKnown = n >= Self.anomalyWarmup && coverage > 0
        for j in 0..<k where coverage > 0 {
            let channel = targets[j]
            anomalyScore.observe(target: j, value: Double(x[channel]), learned: Double(clean[channel]), at: bins, interval: clock.interval)
        }
        var signal = 0.0, signals = 0
        var squares = 0.0, persistenceSquares = 0.0, held = 0, banded = 0
        let first = Int(events[Self.scoredFrom])
        for p in 1...horizon where n - p >= first {
            let made = history.made(at: n - p)
            for j in 0..<k {
                let out = (p - 1) * k + j
                let y = Double(x[targets[j]])
                let combined = made[combined: out], half = made[halfWidth: out]
                let error = abs(combined - y)
                if configuration.ensemble {
                    combination.learn(output: out, forecasts: made.experts(output: out), combined: combined, actual: y, step: p)
                }
                counters.scored += 1
                let inside = bands.resolve(output: out, error: error, halfWidth: half, scale: made[scale: out])
                if let inside {
                    counters.banded += 1
                    if inside { counters.covered += 1 }
                }
                if p == 1 {
                    let persistence = made[.persistence, output: out] - y
                    squares += error * error
                    persistenceSquares += persistence * persistence
                    if let inside {
                        banded += 1
                        if inside { held += 1 }
                    }
                    if coverage > 0 {
                        let spread = trainer.normalizer.enabled ? trainer.normalizer.scale(targets[j]) : 0
                        if anomalyScore.observe(target: j, error: error, halfWidth: half, spread: spread) == nil {
                            anomalyKnown = false
                        }
                    }
                    if let u = drift.observe(error: error, target: j) {
                        signal += u
                        signals += 1
                    }
                }
            }
        }
        if n >= first + 1 {
            anomalyScore.publish(known: anomalyKnown)
            rolling.roll(squares / Double(k), persistenceSquares / Double(k), held: held, of: banded)
        }
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
        linear.resetCovariance()
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
        if linear.isOn { learnLinear() }
        if direct.isOn {
            direct.learn(newest: trainer.counters.samples - 1) { trainer.normalizer.scale(targets[$0]) }
        }
        return outcome
    }

    /// `predict(x, time:)` then `learn()`.
    @discardableResult
    public func step(_ x: UnsafePointer<Float>, time: Double? = nil) -> UpdateOutcome {
        guard predict(x, time: time) else { return .rejectedInput }
        return learn()
    }

    /// One recursive-least-squares step of the linear model per forecast the newest sample
    /// resolves, towards the change it forecast in the change unit now.
    func learnLinear() {
        let n = trainer.counters.samples - 1
        let newest = cleanValues(at: n)
        for p in 1...horizon where n - p >= trainer.segmentStart {
            let origin = cleanValues(at: n - p)
            linear.learn(madeAt: n - p, step: p) { j in
                (newest[j] - origin[j]) / trainer.changeUnit(targets[j])
            }
        }
    }

    /// The gate's watch starts once the change unit has seen `OutlierGate.warmup` changes, and
    /// needs units (normalisation on).
    var gateWatches: Bool {
        trainer.normalizer.enabled && trainer.changeScale.count >= OutlierGate.warmup
    }

    /// The targets' values of sample `m` as the stream learned from them (K numbers).
    func cleanValues(at m: Int) -> UnsafeMutablePointer<Double> {
        state + layout.cleanHistory + (m % rows) * targets.count
    }

    /// The forecaster's own events region: the counters not in the record's head, and the first
    /// sample whose forecasts are scored (the latest new segment's).
    var events: UnsafeMutablePointer<Double> { state + layout.events }
    static let outlierEvents = 0, shiftEvents = 1, segmentEvents = 2, scoredFrom = 3

    /// Bytes this stream's forecaster holds on its own (the network's included).
    public var bytes: Int {
        trainer.bytes + MemoryLayout<Double>.stride * (stateCount + max(features, 1) + max(DirectExpert.scratchCount(lookback: direct.lookback), 1))
            + MemoryLayout<Float>.stride * (2 * Self.bandWindow + 3) * outputs
    }
}

/// Where each part's numbers sit in the forecaster's one state buffer, in buffer order. A
/// checkpoint copies the buffer as it is, so this order is the checkpoint's format: append,
/// never reorder. (The combination's two regions have the smoothing expert's between them for
/// that reason.)
struct ForecasterLayout {
    // LinearExpert
    let covariance: Int         // D × D, the inverse of the weighted feature covariance
    let linearWeights: Int      // O × D
    let featureRing: Int        // R × D, the features of the latest R samples
    let valueRing: Int          // (L + 1) × I, the latest samples
    // Combination, SmoothingExpert, Combination
    let combinationWeights: Int // O × E
    let smoothingLevels: Int    // K, the smoothed level of each target
    let combinationScales: Int  // O, the experts' mean squared error, for the combination's step
    // ForecastHistory
    let history: Int            // R × (E + 3) × O: per sample, the experts' forecasts, the combined
                                // one, the band's half-width (NaN: no band) and the scale it used
    // ConformalBands
    let bandLevels: Int         // O, the adaptive miscoverage α_t
    let bandScales: Int         // O, mean absolute error of the combined forecast
    let bandInserted: Int       // O, scores inserted so far
    // DriftDetector
    let driftScales: Int        // K, slow mean absolute error at horizon 1
    let driftTest: Int          // 5: samples watched, mean signal, cumulative sum, its minimum, boost left
    // AnomalyScore
    let anomaly: Int            // 1: the latest sample's score (NaN: none)
    // RollingFigures
    let rolling: Int            // 5: step-1 samples folded in, then the rolling MSE of the forecast and
                                // of persistence, forecasts with a band folded in, and the share held
    // Added in record format 3 (a format-2 state ends here: ``formatTwoCount``).
    // SamplingClock
    let clock: Int              // 3: the latest time, the usual interval, intervals folded in
    // OutlierGate
    let gate: Int               // 4 × I: per input, the latest value taken as it came, the level before
                                // the latest shift, the signed count of consecutive outliers on one
                                // side, the samples since the latest shift
    let cleanHistory: Int       // R × K: per sample, each target's value as learned from (bounded)
    let events: Int             // 4: outliers, level shifts adopted, segments started (gaps, clock
                                // jumps), the first sample whose forecasts are scored
    // Added in record format 4 (a format-3 state ends here: ``formatThreeCount``).
    // AnomalyScore
    let anomalyHistory: Int     // 1 + (4 + 3) × K: the quiet samples left after an alert; per target
                                // its latest score, its latest 3 raw scores, their mean's long-term
                                // mean and variance, and how many were folded in
    // Added in record format 5 (a format-4 state ends here: ``formatFourCount``).
    let noveltyHistory: Int     // 1 + (2 + 3 × 3) × K: the samples left in the novelty's quiet period;
                                // per target its latest novelty, the values folded in, and per span the
                                // smoothed value and the remembered range (lowest, highest); formats 5
                                // to 8 had four spans, 1 + (2 + 3 × 4) × K
    // Record format 6 added the direct expert: a fifth column in the combination's weights and
    // in every row of the history (format 5's layout: ``init(_:format:)``), and these regions
    // (the direct expert's empty when it is off), the bands' debts last.
    // DirectExpert
    let directGram: Int         // D(D + 1)/2, the forgotten sum of φφᵀ (lower triangle, packed by rows)
    let directCross: Int        // P × D, per step the forgotten sum of its change times φ
    let directWeights: Int      // P × D
    let directRing: Int         // (L + P + 1) × K, the latest values as learned from
    let directStatus: Int       // 2: samples in the ring since the latest restart, samples since the
                                // latest solve (-1: none yet)
    // ConformalBands
    let bandDebts: Int          // O, beyond step 1 the fall of the level the bound held back
    // Record format 7 added the seasonal expert: a sixth column in the combination's weights and
    // in every row of the history, and its region (empty when it is off).
    // SeasonalExpert
    let seasonal: Int           // K × (1 + 288 + 672): per target its level, day and week profiles
    // Added in record format 8 (a format-7 state ends here: ``formatSevenCount``).
    // NoveltyScore
    let noveltyResidual: Int    // (2 + 3 × 3) × K: per target the residuals folded in, the time of the
                                // first, and per residual span the smoothed residual and its range
    let noveltyProfile: Int     // K × (1 + 288 + 672): per target the novelty's own level, day and
                                // week profiles (SeasonalExpert's, always on)
    // Record format 9 dropped the novelty's span of 5 samples: `noveltyHistory` is 3 × K numbers
    // shorter than format 8's, and the regions after it sit that much earlier.
    // Added in record format 10 (a format-9 state ends here: ``formatNineCount``).
    // AnomalyScore
    let anomalyRoutine: Int     // K: per target its surprise alerts, forgotten at 1/2000 a sample
    // Added in record format 11 (a format-10 state ends here: ``formatTenCount``).
    // NoveltyScore
    let noveltyDrift: Int       // 4 × K: per target, per end of the longest span's range (low, high),
                                // the run of samples beyond it (negative once alerted) and where the end
                                // stood when the run began
    // Added in record format 12 (a format-11 state ends here: ``formatElevenCount``).
    let noveltyShape: Int       // 837 × K: per target the shape's counts, record, ring and 100 shapes
    /// The record format the layout is of (``ForecasterLayout/format``: the current one).
    let format: Int
    /// The experts the combination and the history have columns for.
    let experts: Int
    /// Numbers in the buffer.
    let count: Int
    /// Numbers in a state saved in record format 2, which ended before `clock`.
    var formatTwoCount: Int { clock }
    /// Numbers in a state saved in record format 3, which ended before `anomalyHistory`.
    var formatThreeCount: Int { anomalyHistory }
    /// Numbers in a state saved in record format 4, which ended before `noveltyHistory`.
    var formatFourCount: Int { noveltyHistory }
    /// Numbers in a state saved in record format 7, which ended before `noveltyResidual` (in a
    /// layout of format 8).
    var formatSevenCount: Int { noveltyResidual }
    /// Numbers in a state saved in record format 9, which ended before `anomalyRoutine`.
    var formatNineCount: Int { anomalyRoutine }
    /// Numbers in a state saved in record format 10, which ended before `noveltyDrift`.
    var formatTenCount: Int { noveltyDrift }
    /// Numbers in a state saved in record format 11, which ended before `noveltyShape`.
    var formatElevenCount: Int { noveltyShape }

    /// The current record format's number: ``Forecaster/recordFormat``.
    static let currentFormat = Forecaster.recordFormat

    /// The layout of a forecaster of `c`.
    init(_ c: ModelConfiguration) {
        self.init(c, format: Self.currentFormat)
    }

    /// The layout of a forecaster of `c` as record format `format` had it: formats 2 to 5 had four
    /// experts and no direct expert (their `count` is format 5's; `formatTwoCount`,
    /// `formatThreeCount` and `formatFourCount` are the earlier formats'), format 6 five experts and
    /// no seasonal one.
    init(_ c: ModelConfiguration, format: Int) {
        self.init(
            inputs: c.inputs, targets: c.targetChannels.count, outputs: c.outputs, rows: c.horizon + 1,
            lags: LinearExpert.lags(c), features: LinearExpert.features(c),
            lookback: format >= 6 ? DirectExpert.lookback(c) : 0, seasonal: format >= 7 && c.isOn(.seasonal),
            format: format)
    }

    /// The layout of the given sizes in record format `format` (2 to 12).
    init(
        inputs: Int, targets k: Int, outputs o: Int, rows: Int, lags: Int, features d: Int, lookback: Int, seasonal on: Bool,
        format: Int = Self.currentFormat
    ) {
        var next = 0
        self.format = format
        experts = format >= 7 ? Expert.count : format == 6 ? Expert.count - 1 : Expert.count - 2
        func region(_ count: Int) -> Int {
            defer { next += count }
            return next
        }
        covariance = region(d * d)
        linearWeights = region(o * d)
        featureRing = region(rows * d)
        valueRing = region((lags + 1) * inputs)
        combinationWeights = region(o * experts)
        smoothingLevels = region(k)
        combinationScales = region(o)
        history = region(ForecastHistory.count(rows: rows, outputs: o, experts: experts))
        bandLevels = region(o)
        bandScales = region(o)
        bandInserted = region(o)
        driftScales = region(k)
        driftTest = region(DriftDetector.testCount)
        anomaly = region(AnomalyScore.count)
        rolling = region(RollingFigures.count)
        clock = region(SamplingClock.count)
        gate = region(OutlierGate.count(inputs: inputs))
        cleanHistory = region(rows * k)
        events = region(4)
        anomalyHistory = region(AnomalyScore.historyCount(targets: k))
        noveltyHistory = region(NoveltyScore.count(targets: k, format: format))
        let df = DirectExpert.features(lookback: lookback), horizon = rows - 1
        directGram = region(DirectExpert.packed(df))
        directCross = region(horizon * df)
        directWeights = region(horizon * df)
        directRing = region(DirectExpert.ringRows(lookback: lookback, horizon: horizon) * k)
        directStatus = region(lookback > 0 ? DirectExpert.statusCount : 0)
        bandDebts = region(format >= 6 ? o : 0)
        seasonal = region(format >= 7 ? SeasonalExpert.count(targets: k, on: on) : 0)
        noveltyResidual = region(format >= 8 ? NoveltyScore.residualCount(targets: k) : 0)
        noveltyProfile = region(format >= 8 ? NoveltyScore.profileCount(targets: k) : 0)
        anomalyRoutine = region(format >= 10 ? k : 0)
        noveltyDrift = region(format >= 11 ? NoveltyScore.driftCount(targets: k) : 0)
        noveltyShape = region(format >= 12 ? NoveltyScore.shapeCount(targets: k) : 0)
        count = next
    }
}

extension NoveltyScore {
    /// The novelty score over its regions of a state buffer in `layout`.
    init(in state: UnsafeMutablePointer<Double>, layout: ForecasterLayout, targets: Int) {
        self.init(
            base: state + layout.noveltyHistory, residual: state + layout.noveltyResidual, profile: state + layout.noveltyProfile,
            drift: state + layout.noveltyDrift, shape: state + layout.noveltyShape, targets: targets)
    }
}
