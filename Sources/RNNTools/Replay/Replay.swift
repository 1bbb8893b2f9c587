// `rnnd replay` (docs/replay.md): a CSV file streamed through the model a daemon stream would
// have, scored against persistence. The command line is Sources/rnnd/Replay.swift.

import RNNBasics
import RNNCore
import RNNWire

/// What to replay: which columns, which targets, the warm-up.
public struct ReplaySettings: Sendable, Equatable {
    /// The input columns; nil takes every numeric column.
    public var columns: [String]?
    /// The target columns, among the inputs; nil forecasts every input.
    public var targets: [String]?
    /// Samples trained on first, `warmupEpochs` passes, and left out of the scores.
    public var warmupRows = 0
    /// Passes over the warm-up samples.
    public var warmupEpochs = 1
    /// The time of the latest sample the model has already seen (a stream record's, with
    /// `--from`): rows not later than it are refused, as the daemon refuses them.
    public var previousTime: Double?
    /// The clock policy of the stream (the daemon's defaults): a row far ahead of the file's own
    /// clock is refused, a clock set back is accepted after a few rows.
    public var clock: ClockPolicy

    public init(
        columns: [String]? = nil, targets: [String]? = nil, warmupRows: Int = 0, warmupEpochs: Int = 1,
        previousTime: Double? = nil, clock: ClockPolicy = .standard
    ) {
        self.columns = columns
        self.targets = targets
        self.warmupRows = warmupRows
        self.warmupEpochs = warmupEpochs
        self.previousTime = previousTime
        self.clock = clock
    }
}

/// Mean squared and mean absolute error of a set of forecasts, in original units.
public struct ErrorFigures: Sendable, Equatable, Codable {
    /// Forecast values scored (one per target per forecast).
    public var count = 0
    public var sumOfSquares = 0.0
    public var sumOfAbsolutes = 0.0

    public init() {}

    /// nil when nothing was scored.
    public var mse: Double? { count > 0 ? sumOfSquares / Double(count) : nil }
    public var mae: Double? { count > 0 ? sumOfAbsolutes / Double(count) : nil }

    mutating func add(_ error: Double) {
        count += 1
        sumOfSquares += error * error
        sumOfAbsolutes += abs(error)
    }

    mutating func add(_ other: ErrorFigures) {
        count += other.count
        sumOfSquares += other.sumOfSquares
        sumOfAbsolutes += other.sumOfAbsolutes
    }
}

/// The model's errors next to persistence's on the same forecasts, and seasonal persistence's
/// (the value one day earlier) on those of them where the file has that value.
public struct ErrorComparison: Sendable, Equatable {
    public var model = ErrorFigures()
    public var persistence = ErrorFigures()
    public var seasonal = ErrorFigures()
    /// The model's bands: forecasts made with one, how many it held, and their summed width.
    public var bands = BandFigures()

    public init() {}

    /// `1 - MSE(model) / MSE(persistence)`: above 0 the model beats persistence; nil when
    /// either is missing or persistence is perfect.
    public var skill: Double? {
        guard let m = model.mse, let p = persistence.mse, p > 0 else { return nil }
        return 1 - m / p
    }

    mutating func add(_ other: ErrorComparison) {
        model.add(other.model)
        persistence.add(other.persistence)
        seasonal.add(other.seasonal)
        bands.add(other.bands)
    }
}

/// How a set of prediction bands did.
public struct BandFigures: Sendable, Equatable, Codable {
    /// Forecasts published with a band, and of those, the ones whose band held the value.
    public var count = 0
    public var covered = 0
    public var widthSum = 0.0

    public init() {}

    /// The share of values the bands held; nil without bands.
    public var coverage: Double? { count > 0 ? Double(covered) / Double(count) : nil }
    /// The bands' mean width (upper − lower), in the file's units.
    public var meanWidth: Double? { count > 0 ? widthSum / Double(count) : nil }

    mutating func add(lower: Double, upper: Double, actual: Double) {
        count += 1
        if actual >= lower && actual <= upper { covered += 1 }
        widthSum += upper - lower
    }

    mutating func add(_ other: BandFigures) {
        count += other.count
        covered += other.covered
        widthSum += other.widthSum
    }
}

/// One forecast of the predictions file: for sample `row` (a data row of the file), made
/// `horizon` samples earlier; one value per target in original units, with the band's bounds
/// (NaN where it had none yet). `anomaly` is the score of sample `row` (on horizon 1 only, nil
/// during the warm-up). The buffers are valid only during the call that receives them.
public struct ReplayPrediction {
    public var row: Int
    public var horizon: Int
    public var values: UnsafeBufferPointer<Float>
    public var lower: UnsafeBufferPointer<Float>
    public var upper: UnsafeBufferPointer<Float>
    public var anomaly: Double?
    /// For a stream of several targets, each target's own score when `anomaly` is not nil (the
    /// daemon's `anomalies`), in the order of `values`; empty otherwise.
    public var targetAnomalies: [Float] = []
}

/// The forecast at horizon step 1 of each scored sample, with its band, and the sample's
/// anomaly score: what the plot draws, kept by ``Replayer/run(from:prediction:progress:)``.
/// Sample `warmupRows + p`'s values of target `j` are at `[p * targets + j]`, its score at `[p]`;
/// NaN where there is none (no forecast before the first sample, no band during the bands' warm-up
/// or with bands off, no score during the score's).
public struct StepOneTrace: Sendable {
    public var forecast: [Float]
    public var lower: [Float]
    public var upper: [Float]
    public var anomaly: [Double]

    init(samples: Int, targets: Int) {
        forecast = [Float](repeating: .nan, count: samples * targets)
        lower = forecast
        upper = forecast
        anomaly = [Double](repeating: .nan, count: samples)
    }
}

/// What a replay found.
public struct ReplayReport: Sendable {
    public var file: String
    /// Data rows in the file.
    public var fileRows: Int
    public var inputs: [String]
    public var targets: [String]
    public var timeColumn: String?
    public var model: ModelConfiguration
    /// Samples streamed (data rows that reached the model).
    public var samples: Int
    /// Rows skipped because an input had no value yet to carry into a missing cell (the
    /// missing-cell policy): the rows refused as `nothing_to_carry`.
    public var skippedRows: Int
    /// Per input: missing cells that took the previous value.
    public var carried: [Int]
    /// Per input: the episodes in which it was stuck (``ChannelWatch``), and the samples streamed
    /// while it was.
    public var stuckEpisodes: [Int]
    public var stuckRows: [Int]
    /// Rows the daemon would refuse, by its reason (`out_of_order`, `duplicate_timestamp`,
    /// `future_time`, `non_finite_value`, `all_channels_missing`, `nothing_to_carry`), left out as it would leave them out.
    public var refused: [String: Int]
    /// Clocks set back that the stream accepted (``StreamPolicy``).
    public var clockResets: Int
    public var warmupRows: Int
    public var warmupEpochs: Int
    /// The first scored data row, if any.
    public var firstScoredRow: Int?
    /// Every forecast scored, per target and horizon: `cells[(h - 1) * targets.count + j]`.
    public var cells: [ErrorComparison]
    /// Each expert's forecasts alone, every target and horizon (``Expert`` order): what the
    /// combination made of them.
    public var experts: [ErrorFigures]
    /// The lag of seasonal persistence in samples (one day), when the time axis has one.
    public var seasonalLag: Int?
    /// Samples whose anomaly score was reported, and drifts detected, during this replay.
    public var anomalyScores: Int
    public var drifts: Int
    /// Samples with an input held back by the outlier gate, level shifts adopted, and new
    /// segments (gaps, clock jumps) during this replay (docs/numerics.md).
    public var outliers: Int
    public var levelShifts: Int
    public var segments: Int
    /// Predict-and-learn steps taken, warm-up passes included.
    public var steps: Int
    /// Wall time of the steps (and the scoring and writing between them).
    public var seconds: Double
    /// Weight updates, skipped updates and state resets during this replay.
    public var updates: Int
    public var skippedUpdates: Int
    public var stateResets: Int
    /// What the model started from when not a new model (`--from`): the record file, and what
    /// it holds in a few words.
    public var startedFrom: (file: String, detail: String)?
    /// The forecaster's running scales after the last sample (nil only for a report not made
    /// by ``Replayer/run(from:prediction:progress:)``).
    public var finalState: ReplayFinalState?

    public var horizon: Int { model.horizon }
    public var samplesPerSecond: Double { seconds > 0 ? Double(steps) / seconds : 0 }

    public func cell(horizon h: Int, target j: Int) -> ErrorComparison { cells[(h - 1) * targets.count + j] }

    /// Every forecast, every target and horizon (summed by horizon, then target).
    public var overall: ErrorComparison {
        var total = ErrorComparison()
        for c in cells { total.add(c) }
        return total
    }

    /// Every horizon step of target `j`.
    public func target(_ j: Int) -> ErrorComparison {
        var total = ErrorComparison()
        for h in 1...horizon { total.add(cell(horizon: h, target: j)) }
        return total
    }

    /// Every target at horizon step `h`.
    public func horizonStep(_ h: Int) -> ErrorComparison {
        var total = ErrorComparison()
        for j in targets.indices { total.add(cell(horizon: h, target: j)) }
        return total
    }
}

/// A replay that cannot start: the file or the names given do not fit.
public struct ReplayError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var exitCode: Int32
    public var description: String { message }

    public init(_ message: String, exitCode: Int32 = 64) {
        self.message = message
        self.exitCode = exitCode
    }
}

/// A CSV file streamed through one stream's model, exactly as the daemon's worker runs it:
/// per sample, predict (the forecast is recorded), then learn.
///
/// The model is `model` with the file's width as its inputs (what the daemon builds for a
/// stream of that width) with `targets` set to the target columns' indexes among the inputs.
/// The samples are the file's rows less the rows the daemon would refuse, in its order: values
/// beyond float32's range (`non_finite_value`); when the file has a time axis, the stream policy's
/// refusals of a time (`out_of_order`, `duplicate_timestamp`, and `future_time` against the file's
/// own clock, ``StreamPolicy/fileClock(previous:time:next:)``), a clock set back being accepted as
/// the daemon accepts it; then the missing-cell policy, ``ChannelWatch``: every cell missing
/// (`all_channels_missing`), a missing cell of a column with no value yet (`nothing_to_carry`);
/// other missing cells take the column's previous accepted value. The watch's stuck channels are
/// counted too.
///
/// Warm-up: the first `warmupRows` samples are streamed `warmupEpochs` times, then the rest once.
/// The model, its optimizer, its normaliser, its hidden state and its TBPTT window all carry
/// across every pass, as across a jump in a live stream. Only forecasts *for* samples from
/// `warmupRows` on are scored and written (the first of them may have been made at the end of
/// the last warm-up pass, by a model that had not seen them).
public final class Replayer {
    public let samples: CSVSamples
    public let targets: [Int]
    public let model: ModelConfiguration
    public let settings: ReplaySettings
    public let fileRows: Int
    public let timeColumn: String?
    /// The samples' values as the model takes them: float32, row-major.
    let input: [Float]
    /// Rows refused as the daemon refuses them, by reason.
    public let refused: [String: Int]
    /// Per input: cells carried forward, stuck episodes, samples while stuck.
    public let carried: [Int]
    public let stuckEpisodes: [Int]
    public let stuckRows: [Int]
    /// Clocks set back that the stream accepted.
    public let clockResets: Int

    /// Chooses the columns and targets of `table` and builds the stream's model configuration.
    public init(table: CSVTable, model template: ModelConfiguration, settings: ReplaySettings) throws(ReplayError) {
        var picked: CSVSamples
        do throws(CSVError) {
            picked = try table.samples(columns: settings.columns)
        } catch {
            throw ReplayError(error.description, exitCode: error.exitCode)
        }
        var targetIndexes: [Int] = []
        if let names = settings.targets {
            guard !names.isEmpty else { throw ReplayError("\(table.file): --targets names no column") }
            for name in names {
                guard let index = picked.columns.firstIndex(of: name) else {
                    do throws(CSVError) {
                        _ = try table.columnIndex(name, flag: "--targets")
                    } catch {
                        throw ReplayError(error.description, exitCode: error.exitCode)
                    }
                    throw ReplayError("\(table.file): --targets: '\(name)' is not one of the input columns "
                        + "(\(picked.columns.joined(separator: ", "))); add it to --columns")
                }
                if targetIndexes.contains(index) { throw ReplayError("\(table.file): --targets names '\(name)' twice") }
                targetIndexes.append(index)
            }
        } else {
            targetIndexes = Array(picked.columns.indices)
        }

        // The daemon's per-sample refusals, in its order: the value check, the time, the channels.
        let width = picked.width
        var kept = CSVSamples(file: picked.file, columns: picked.columns, hasTime: picked.hasTime)
        var input: [Float] = []
        input.reserveCapacity(picked.values.count)
        var refused: [String: Int] = [:], clockResets = 0
        var policy = StreamPolicy(width: width, latestTime: settings.previousTime, clock: settings.clock)
        var watch = ChannelWatch(width: width)
        var stuckRows = [Int](repeating: 0, count: width)
        // The columns' latest accepted values in float64, the file's, carried as the watch carries
        // their float32 values: the actual values scored.
        var latest = [Double](repeating: .nan, count: width)
        var sample = [Float](repeating: 0, count: width)
        for i in 0..<picked.count {
            let values = picked.sample(i)
            let time = picked.timestamp(i)
            if let problem = StreamPolicy.valueProblem(values) {
                refused[problem.rawValue, default: 0] += 1
                continue
            }
            // The reference clock is the file's own, where the daemon's is its host's.
            let now = time.map { StreamPolicy.fileClock(previous: i > 0 ? picked.timestamp(i - 1) : nil, time: $0, next: i + 1 < picked.count ? picked.timestamp(i + 1) : nil) }
            for (j, x) in values.enumerated() { sample[j] = Float(x) }
            let verdict = sample.withUnsafeMutableBufferPointer {
                policy.admit(width: values.count, time: time, now: now, values: $0.baseAddress!, channels: &watch)
            }
            if let refusal = verdict.refusal {
                refused[refusal.rawValue, default: 0] += 1
                continue
            }
            if verdict == .clockReset { clockResets += 1 }
            for (j, x) in values.enumerated() where !x.isNaN { latest[j] = x }
            for j in watch.stuck { stuckRows[Int(j)] += 1 }
            if let time { kept.time.append(time) }
            kept.rows.append(picked.rows[i])
            kept.lines.append(picked.lines[i])
            kept.values += latest
            input += sample
        }
        guard kept.count > 0 else {
            if let previous = settings.previousTime, picked.hasTime, picked.count > 0 {
                throw ReplayError("\(table.file): no row to replay: every row is at or before the model's latest time, "
                    + "\(Timestamp.iso8601(previous)) (the daemon would refuse them as out of order)", exitCode: 65)
            }
            throw ReplayError("\(table.file): no row to replay", exitCode: 65)
        }
        guard settings.warmupRows >= 0, settings.warmupEpochs >= 1 else {
            throw ReplayError("--warmup-rows must be 0 or more and --warmup-epochs 1 or more")
        }
        guard settings.warmupRows < kept.count else {
            throw ReplayError("\(table.file): --warmup-rows \(settings.warmupRows) leaves nothing to score: "
                + "the file has \(kept.count) samples to replay")
        }

        var model = template
        model.inputs = kept.width
        // Every input in order is the daemon's own choice, the empty list: keep it identical.
        model.targets = targetIndexes == Array(0..<kept.width) ? [] : targetIndexes
        let problems = model.problems()
        guard problems.isEmpty else { throw ReplayError(problems.joined(separator: "; ")) }

        self.samples = kept
        self.targets = targetIndexes
        self.model = model
        self.settings = settings
        self.fileRows = table.rowCount
        self.timeColumn = table.timeName
        self.input = input
        self.refused = refused
        self.carried = watch.carried
        self.stuckEpisodes = watch.stuckEpisodes
        self.stuckRows = stuckRows
        self.clockResets = clockResets
    }

    public var targetNames: [String] { targets.map { samples.columns[$0] } }

    /// What the plot shows of the latest run, per scored sample: the forecast at horizon step 1
    /// and its band, and the sample's anomaly score.
    public private(set) var trace = StepOneTrace(samples: 0, targets: 0)

    /// Streams the samples. `prediction` receives every scored forecast in order of the sample
    /// it is for, then of horizon step; `progress(done, total)` is called every 256 steps.
    ///
    /// `start` continues a forecaster of ``model``'s shape (a stream record's, or `rnnd fit`'s
    /// after its first passes) instead of a new one. Only forecasts made during this replay
    /// are scored: the one `start` made before its first sample is not.
    public func run(
        from start: Forecaster? = nil,
        prediction: ((ReplayPrediction) -> Void)? = nil,
        progress: ((Int, Int) -> Void)? = nil
    ) -> ReplayReport {
        let n = samples.count, width = samples.width, k = targets.count, horizon = model.horizon
        let outputs = horizon * k, expertCount = Expert.allCases.count
        let warmup = settings.warmupRows, epochs = settings.warmupRows > 0 ? settings.warmupEpochs : 0
        let forecaster = start ?? Forecaster(configuration: model)
        let trainer = forecaster.trainer
        precondition(trainer.configuration.outputs == model.outputs && trainer.configuration.inputs == width, "run(from:): another shape")
        let before = trainer.counters, beforeForecaster = forecaster.counters
        var cells = [ErrorComparison](repeating: ErrorComparison(), count: outputs)
        var experts = [ErrorFigures](repeating: ErrorFigures(), count: expertCount)
        // The forecasts made at the latest `horizon + 1` samples, the one made at sample i in slot
        // i % (horizon + 1): the forecast, its lower and upper bounds, then each expert's.
        let rows = horizon + 1, per = (3 + expertCount) * outputs
        var made = [Float](repeating: .nan, count: rows * per)
        var trace = StepOneTrace(samples: n - warmup, targets: k)
        let total = epochs * warmup + (n - warmup)
        let lag = seasonalLag
        var steps = 0, anomalies = 0
        let clock = ContinuousClock()
        let started = clock.now

        input.withUnsafeBufferPointer { x in
            made.withUnsafeMutableBufferPointer { made in
                func predict(_ i: Int) {
                    forecaster.predict(x.baseAddress! + i * width, time: samples.timestamp(i))
                    let slot = (i % rows) * per
                    for o in 0..<outputs {
                        made[slot + o] = forecaster.forecast[o]
                        made[slot + outputs + o] = forecaster.lower[o]
                        made[slot + 2 * outputs + o] = forecaster.upper[o]
                        for e in Expert.allCases {
                            made[slot + (3 + e.rawValue) * outputs + o] = Float(forecaster.expertForecast(e, output: o))
                        }
                    }
                }
                func learn() {
                    forecaster.learn()
                    steps += 1
                    if steps & 255 == 0 { progress?(steps, total) }
                }
                for _ in 0..<epochs {
                    for i in 0..<warmup {
                        predict(i)
                        learn()
                    }
                }
                for i in warmup..<n {
                    predict(i)
                    let anomaly = forecaster.anomaly
                    if let anomaly {
                        anomalies += 1
                        trace.anomaly[i - warmup] = anomaly
                    }
                    // Score the forecasts made for sample i, then learn from it.
                    for h in 1...horizon where i - h >= 0 {
                        let slot = ((i - h) % rows) * per + (h - 1) * k
                        let seasonal: Int? = if let lag, h <= lag, i >= lag,
                            samples.time[i] - samples.time[i - lag] == 86_400 { i - lag } else { nil }
                        for j in 0..<k {
                            let actual = samples.values[i * width + targets[j]]
                            let before = samples.values[(i - h) * width + targets[j]]
                            let cell = (h - 1) * k + j
                            cells[cell].model.add(Double(made[slot + j]) - actual)
                            cells[cell].persistence.add(before - actual)
                            if let seasonal { cells[cell].seasonal.add(samples.values[seasonal * width + targets[j]] - actual) }
                            let lower = made[slot + outputs + j], upper = made[slot + 2 * outputs + j]
                            if !lower.isNaN { cells[cell].bands.add(lower: Double(lower), upper: Double(upper), actual: actual) }
                            for e in 0..<expertCount { experts[e].add(Double(made[slot + (3 + e) * outputs + j]) - actual) }
                        }
                        if h == 1 {
                            for j in 0..<k {
                                let at = (i - warmup) * k + j
                                trace.forecast[at] = made[slot + j]
                                trace.lower[at] = made[slot + outputs + j]
                                trace.upper[at] = made[slot + 2 * outputs + j]
                            }
                        }
                        if let prediction {
                            func values(_ part: Int) -> UnsafeBufferPointer<Float> {
                                UnsafeBufferPointer(rebasing: made[(slot + part * outputs)..<(slot + part * outputs + k)])
                            }
                            var line = ReplayPrediction(
                                row: samples.rows[i], horizon: h, values: values(0), lower: values(1), upper: values(2),
                                anomaly: h == 1 ? anomaly : nil)
                            if h == 1, anomaly != nil, k > 1 {
                                line.targetAnomalies = (0..<k).map { Float(forecaster.anomaly(target: $0) ?? .nan) }
                            }
                            prediction(line)
                        }
                    }
                    learn()
                }
            }
        }
        let seconds = Self.seconds(clock.now - started)
        progress?(steps, total)
        self.trace = trace

        let firstScoredIndex = max(warmup, 1)
        let firstScored = firstScoredIndex < n ? samples.rows[firstScoredIndex] : nil
        var report = ReplayReport(
            file: samples.file, fileRows: fileRows, inputs: samples.columns, targets: targetNames,
            timeColumn: timeColumn, model: model, samples: n,
            skippedRows: refused[StreamRejection.nothingToCarry.rawValue] ?? 0,
            carried: carried, stuckEpisodes: stuckEpisodes, stuckRows: stuckRows, refused: refused, clockResets: clockResets,
            warmupRows: warmup, warmupEpochs: settings.warmupEpochs,
            firstScoredRow: firstScored, cells: cells, experts: experts, seasonalLag: lag,
            anomalyScores: anomalies, drifts: forecaster.counters.drifts - beforeForecaster.drifts,
            outliers: forecaster.counters.outliers - beforeForecaster.outliers,
            levelShifts: forecaster.counters.levelShifts - beforeForecaster.levelShifts,
            segments: forecaster.counters.segments - beforeForecaster.segments,
            steps: steps, seconds: seconds,
            updates: trainer.counters.updates - before.updates,
            skippedUpdates: trainer.counters.skippedUpdates - before.skippedUpdates,
            stateResets: trainer.counters.stateResets - before.stateResets)
        report.finalState = ReplayFinalState(forecaster)
        return report
    }

    /// One day in samples, when the file's time axis has a regular interval that divides a day
    /// (the median spacing of its samples): the lag of seasonal persistence. A sample is
    /// compared with the one this many samples earlier only when that one is exactly a day older.
    public var seasonalLag: Int? {
        let t = samples.time
        guard t.count > 2 else { return nil }
        var gaps: [Double] = []
        gaps.reserveCapacity(min(t.count - 1, 1001))
        for i in 1..<min(t.count, 1002) { gaps.append(t[i] - t[i - 1]) }
        gaps.sort()
        let interval = gaps[gaps.count / 2]
        guard interval > 0, interval <= 43_200 else { return nil }
        let lag = (86_400 / interval).rounded()
        guard abs(lag * interval - 86_400) < 1e-6 else { return nil }
        return Int(lag)
    }

    /// Streams every sample `passes` times through `forecaster` (predict, then learn), unscored:
    /// `rnnd fit`'s passes before its last. `progress(done)` is called every 256 steps.
    public func train(_ forecaster: Forecaster, passes: Int, progress: ((Int) -> Void)? = nil) {
        let n = samples.count, width = samples.width
        var steps = 0
        input.withUnsafeBufferPointer { x in
            for _ in 0..<passes {
                for i in 0..<n {
                    forecaster.step(x.baseAddress! + i * width, time: samples.timestamp(i))
                    steps += 1
                    if steps & 255 == 0 { progress?(steps) }
                }
            }
        }
    }

    static func seconds(_ d: Duration) -> Double {
        let (s, a) = d.components
        return Double(s) + Double(a) * 1e-18
    }
}
