// The JSON of `rnnd replay --metrics OUT.json` (docs/replay.md lists the keys): the printed
// figures as one object. Figures that do not exist (nothing scored) are `null`.

import RNNCore

extension ReplayReport {
    /// The printed figures as one JSON object; `firstTime` and `lastTime` are the first and last
    /// sample's time (Unix seconds), when the file has a time axis.
    public func json(firstTime: Double? = nil, lastTime: Double? = nil) -> String {
        jsonLine(ReplayJSON(self, firstTime: firstTime, lastTime: lastTime))
    }
}

struct ReplayJSON: Encodable {
    var file: String
    @ExplicitNull var from: String?
    var rows: Int
    @ExplicitNull var timeColumn: String?
    var firstTime: JSONNumber
    var lastTime: JSONNumber
    var inputs: [String]
    var targets: [String]
    var horizon: Int
    var model: Model
    var samples: Int
    var skippedRows: Int
    /// Cells carried forward, per input column.
    var carried: [String: Int]
    /// Stuck episodes, and samples while stuck, per input column.
    var stuckEpisodes: [String: Int]
    var stuckRows: [String: Int]
    /// Rows refused as the daemon would, per reason.
    var refused: [String: Int]
    /// Clocks set back that the stream accepted.
    var clockResets: Int
    var warmupRows: Int
    var warmupEpochs: Int
    @ExplicitNull var firstScoredRow: Int?
    var steps: Int
    var seconds: JSONNumber
    var samplesPerSecond: JSONNumber
    var updates: Int
    var skippedUpdates: Int
    @ExplicitNull var seasonalLag: Int?
    var anomalyScores: Int
    var drifts: Int
    var outliers: Int
    var levelShifts: Int
    var segments: Int
    /// Each expert alone, by its name.
    var experts: [String: Errors]
    var overall: Comparison
    var perTarget: [Comparison]
    var perHorizon: [Comparison]
    @ExplicitNull var finalState: FinalState?

    enum CodingKeys: String, CodingKey {
        case file, from, rows, timeColumn = "time_column", firstTime = "first_time", lastTime = "last_time"
        case inputs, targets, horizon, model
        case samples, skippedRows = "skipped_rows", carried, stuckEpisodes = "stuck_episodes", stuckRows = "stuck_rows", refused, clockResets = "clock_resets"
        case warmupRows = "warmup_rows", warmupEpochs = "warmup_epochs", firstScoredRow = "first_scored_row"
        case steps, seconds, samplesPerSecond = "samples_per_second", updates, skippedUpdates = "skipped_updates"
        case seasonalLag = "seasonal_lag", anomalyScores = "anomaly_scores", drifts, experts
        case outliers, levelShifts = "level_shifts", segments
        case overall, perTarget = "per_target", perHorizon = "per_horizon", finalState = "final_state"
    }

    /// The forecaster's running scales after the last sample: per input, then per target (one
    /// number per horizon step where the state has one per output).
    struct FinalState: Encodable {
        var samples: Int
        var inputs: [Input]
        var targets: [Target]

        struct Input: Encodable {
            var input: String
            var mean: JSONNumber
            var std: JSONNumber
            var changeUnit: JSONNumber

            enum CodingKeys: String, CodingKey { case input, mean, std, changeUnit = "change_unit" }
        }

        struct Target: Encodable {
            var target: String
            var bandScale: [JSONNumber]
            var combinationErrorScale: [JSONNumber]
            var driftScale: JSONNumber

            enum CodingKeys: String, CodingKey {
                case target, bandScale = "band_scale", combinationErrorScale = "combination_error_scale"
                case driftScale = "drift_scale"
            }
        }

        init(_ s: ReplayFinalState, inputs names: [String], targets: [String], horizon: Int) {
            samples = s.samples
            inputs = names.indices.map { i in
                Input(input: names[i], mean: JSONNumber(s.inputMeans[i]), std: JSONNumber(s.inputScales[i]),
                      changeUnit: JSONNumber(s.changeUnits[i]))
            }
            let k = targets.count
            self.targets = targets.indices.map { j in
                Target(
                    target: targets[j],
                    bandScale: (0..<horizon).map { JSONNumber(s.bandScales[$0 * k + j]) },
                    combinationErrorScale: (0..<horizon).map { JSONNumber(s.combinationErrorScales[$0 * k + j]) },
                    driftScale: JSONNumber(s.driftErrorScales[j]))
            }
        }
    }

    /// The model's settings, by the names of the configuration file's `[model]` keys.
    struct Model: Encodable {
        var cell: String
        var hidden: Int
        var window: Int
        var updateEvery: Int
        var optimizer: String
        var lr: JSONNumber
        var clip: JSONNumber
        var clipMode: String
        var loss: String
        /// Only with the Huber loss.
        var huberDelta: JSONNumber?
        /// Only for the Elman cell.
        var elmanActivation: String?
        /// 1 when the normaliser forgets nothing.
        var normalizationForgetting: JSONNumber
        var formulation: String
        var calendar: Bool
        var ensemble: Bool
        var linearLags: Int
        /// The effective look-back (0: no direct expert).
        var directLookback: Int
        /// The experts the published forecast may combine (``combinedExperts(_:)``).
        var experts: [String]
        var coverage: JSONNumber
        var drift: Bool
        var seed: Int

        enum CodingKeys: String, CodingKey {
            case cell, hidden, window, updateEvery = "update_every", optimizer, lr, clip, clipMode = "clip_mode"
            case loss, huberDelta = "huber_delta", elmanActivation = "elman_activation"
            case normalizationForgetting = "normalization_forgetting"
            case formulation, calendar, ensemble, linearLags = "linear_lags", directLookback = "direct_lookback", experts
            case coverage, drift, seed
        }

        init(_ m: ModelConfiguration) {
            cell = m.cell.rawValue
            hidden = m.hidden
            window = m.window
            updateEvery = m.updateEvery
            optimizer = OptimizerName(m.optimizer).rawValue
            lr = JSONNumber(m.learningRate)
            clip = JSONNumber(m.clipThreshold)
            clipMode = m.clipMode.rawValue
            switch m.loss {
            case .squared: loss = "squared"
            case .huber(let delta): loss = "huber"; huberDelta = JSONNumber(delta)
            }
            if m.cell == .elman { elmanActivation = m.elmanActivation.rawValue }
            if case .running(let f?) = m.normalization { normalizationForgetting = JSONNumber(f) } else { normalizationForgetting = 1.0 }
            formulation = m.formulation.rawValue
            calendar = m.calendar
            ensemble = m.ensemble
            linearLags = m.linearLags
            directLookback = m.effectiveDirectLookback
            experts = combinedExperts(m).map(\.name)
            coverage = JSONNumber(m.coverage)
            drift = m.drift
            seed = Int(clamping: m.seed)
        }
    }

    struct Errors: Encodable {
        var mse: JSONNumber
        var mae: JSONNumber

        init(_ f: ErrorFigures) {
            mse = JSONNumber(f.mse)
            mae = JSONNumber(f.mae)
        }
    }

    /// The model against persistence (and seasonal persistence) over some forecast values:
    /// every one, one target's (`target` names it) or one horizon step's (`horizon`).
    struct Comparison: Encodable {
        var target: String?
        var horizon: Int?
        /// Forecast values scored.
        var count: Int
        var model: Errors
        var persistence: Errors
        var seasonal: Seasonal
        var skill: JSONNumber
        var bands: Bands

        struct Seasonal: Encodable {
            var count: Int
            var mse: JSONNumber
            var mae: JSONNumber
        }

        struct Bands: Encodable {
            /// Forecast values that had a band.
            var count: Int
            var coverage: JSONNumber
            var meanWidth: JSONNumber

            enum CodingKeys: String, CodingKey { case count, coverage, meanWidth = "mean_width" }
        }

        init(_ e: ErrorComparison, target: String? = nil, horizon: Int? = nil) {
            self.target = target
            self.horizon = horizon
            count = e.model.count
            model = Errors(e.model)
            persistence = Errors(e.persistence)
            seasonal = Seasonal(count: e.seasonal.count, mse: JSONNumber(e.seasonal.mse), mae: JSONNumber(e.seasonal.mae))
            skill = JSONNumber(e.skill)
            bands = Bands(count: e.bands.count, coverage: JSONNumber(e.bands.coverage), meanWidth: JSONNumber(e.bands.meanWidth))
        }
    }

    init(_ r: ReplayReport, firstTime: Double?, lastTime: Double?) {
        file = r.file
        from = r.startedFrom?.file
        rows = r.fileRows
        timeColumn = r.timeColumn
        self.firstTime = JSONNumber(firstTime)
        self.lastTime = JSONNumber(lastTime)
        inputs = r.inputs
        targets = r.targets
        horizon = r.horizon
        model = Model(r.model)
        samples = r.samples
        skippedRows = r.skippedRows
        carried = Dictionary(zip(r.inputs, r.carried), uniquingKeysWith: +)
        stuckEpisodes = Dictionary(zip(r.inputs, r.stuckEpisodes), uniquingKeysWith: +)
        stuckRows = Dictionary(zip(r.inputs, r.stuckRows), uniquingKeysWith: +)
        refused = r.refused
        clockResets = r.clockResets
        warmupRows = r.warmupRows
        warmupEpochs = r.warmupEpochs
        firstScoredRow = r.firstScoredRow
        steps = r.steps
        seconds = JSONNumber(r.seconds)
        samplesPerSecond = JSONNumber(r.samplesPerSecond)
        updates = r.updates
        skippedUpdates = r.skippedUpdates
        seasonalLag = r.seasonalLag
        anomalyScores = r.anomalyScores
        drifts = r.drifts
        outliers = r.outliers
        levelShifts = r.levelShifts
        segments = r.segments
        experts = Dictionary(uniqueKeysWithValues: Expert.allCases.map { ($0.name, Errors(r.experts[$0.rawValue])) })
        overall = Comparison(r.overall)
        perTarget = r.targets.indices.map { Comparison(r.target($0), target: r.targets[$0]) }
        perHorizon = (1...r.horizon).map { Comparison(r.horizonStep($0), horizon: $0) }
        finalState = r.finalState.map { FinalState($0, inputs: r.inputs, targets: r.targets, horizon: r.horizon) }
    }
}
