// The JSON of `rnnd checkpoint list --json` and `rnnd checkpoint show --json`
// (docs/checkpoints.md lists the keys): the text of CheckpointInspection.swift as one object.
// Times are Unix seconds.

import RNNCore
import RNNState
import RNNWire

extension CheckpointListing {
    /// The listing as one JSON object.
    public func json() -> String { jsonLine(ListingJSON(self)) }
}

extension RecordDescription {
    /// Everything about the record as one JSON object.
    public func json() -> String { jsonLine(RecordJSON(self)) }
}

/// Why a record cannot be used: `{"reason", "detail"}`.
struct ProblemJSON: Encodable {
    var reason: String
    var detail: String

    init(_ problem: RecordProblem) {
        reason = problem.reason
        detail = problem.description
    }
}

struct ListingJSON: Encodable {
    var store: String
    var streams: [Stream]
    var totalBytes: Int
    @ExplicitNull var lastCheckpoint: LastCheckpoint?
    var setAside: [SetAside]

    enum CodingKeys: String, CodingKey {
        case store, streams, totalBytes = "total_bytes", lastCheckpoint = "last_checkpoint", setAside = "set_aside"
    }

    /// A stored stream. A record that does not decode has only `stream`, `bytes` and `problem`.
    struct Stream: Encodable {
        var stream: String
        var bytes: Int
        var cell: String?
        var hidden: Int?
        var inputs: Int?
        var targets: [Int]?
        var horizon: Int?
        var samples: Int?
        var updates: Int?
        var seq: Int?
        var lastT: JSONNumber?
        var savedAt: JSONNumber?
        @ExplicitNull var problem: ProblemJSON?

        enum CodingKeys: String, CodingKey {
            case stream, bytes, cell, hidden, inputs, targets, horizon, samples, updates, seq
            case lastT = "last_t", savedAt = "saved_at", problem
        }

        init(_ s: StoredStream) {
            stream = s.printableID
            bytes = s.bytes
            if let m = s.model {
                cell = m.cell.rawValue
                hidden = m.hidden
                inputs = m.inputs
                targets = m.targetChannels
                horizon = m.horizon
            }
            samples = s.summary?.counters.samples
            updates = s.summary?.counters.updates
            seq = s.seq
            if s.problem == nil { lastT = JSONNumber(s.lastTimestamp) }
            savedAt = s.savedAt.map { JSONNumber($0) }
            problem = s.problem.map(ProblemJSON.init)
        }
    }

    struct LastCheckpoint: Encodable {
        var at: JSONNumber
        var streams: Int
    }

    struct SetAside: Encodable {
        /// Its number in the store, what `rnnd checkpoint restore-aside --entry` takes.
        var n: Int
        var stream: String
        var bytes: Int
        var reason: String
        var detail: String
        var at: JSONNumber
    }

    init(_ listing: CheckpointListing) {
        store = listing.storePath
        streams = listing.streams.map(Stream.init)
        totalBytes = listing.totalBytes
        lastCheckpoint = listing.lastCheckpoint.map { LastCheckpoint(at: JSONNumber($0.at), streams: $0.streams) }
        setAside = listing.setAside.map {
            SetAside(n: $0.n, stream: printableStreamID($0.id), bytes: $0.bytes, reason: $0.reason, detail: $0.detail, at: JSONNumber($0.at))
        }
    }
}

/// A record that does not decode has only `source`, `bytes`, `checksum` and `problem`.
struct RecordJSON: Encodable {
    var source: String
    var bytes: Int
    var checksum: String
    @ExplicitNull var problem: ProblemJSON? = nil
    var stream: String?
    var formatVersion: Int?
    var savedAt: JSONNumber?
    var seq: Int?
    var lastT: JSONNumber?
    var model: Model?
    /// The `rnnd run` flags that give a stream this model.
    var flags: String?
    /// Only with `--config`.
    var config: Config?
    var counters: Counters?
    var normalizer: Normalizer?
    var forecaster: Forecaster?

    enum CodingKeys: String, CodingKey {
        case source, bytes, checksum, problem, stream, formatVersion = "format_version", savedAt = "saved_at", seq
        case lastT = "last_t", model, flags, config, counters, normalizer, forecaster
    }

    /// Every field of the model, by the names of the configuration file's `[model]` keys where
    /// it has them.
    struct Model: Encodable {
        var cell: String
        var hidden: Int
        var inputs: Int
        /// Input indexes.
        var targets: [Int]
        var horizon: Int
        var window: Int
        var updateEvery: Int
        var optimizer: String
        /// Only for `momentum`.
        var momentum: JSONNumber?
        /// `beta1`, `beta2`, `epsilon`: only for `adam`.
        var beta1: JSONNumber?
        var beta2: JSONNumber?
        var epsilon: JSONNumber?
        var lr: JSONNumber
        var clipMode: String
        var clip: JSONNumber
        var loss: String
        /// Only with the Huber loss.
        var huberDelta: JSONNumber?
        var headActivation: String
        var elmanActivation: String
        /// `none` or `running`.
        var normalization: String
        /// Only when running; 1 when it forgets nothing.
        var normalizationForgetting: JSONNumber?
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
            case cell, hidden, inputs, targets, horizon, window, updateEvery = "update_every"
            case optimizer, momentum, beta1, beta2, epsilon, lr, clipMode = "clip_mode", clip
            case loss, huberDelta = "huber_delta", headActivation = "head_activation", elmanActivation = "elman_activation"
            case normalization, normalizationForgetting = "normalization_forgetting"
            case formulation, calendar, ensemble, linearLags = "linear_lags", directLookback = "direct_lookback", experts
            case coverage, drift, seed
        }

        init(_ m: ModelConfiguration) {
            cell = m.cell.rawValue
            hidden = m.hidden
            inputs = m.inputs
            targets = m.targetChannels
            horizon = m.horizon
            window = m.window
            updateEvery = m.updateEvery
            optimizer = OptimizerName(m.optimizer).rawValue
            switch m.optimizer {
            case .sgd: break
            case .momentum(let mu): momentum = JSONNumber(mu)
            case .adam(let b1, let b2, let eps), .adafactor(let b1, let b2, let eps): (beta1, beta2, epsilon) = (JSONNumber(b1), JSONNumber(b2), JSONNumber(eps))
            }
            lr = JSONNumber(m.learningRate)
            clipMode = m.clipMode.rawValue
            clip = JSONNumber(m.clipThreshold)
            switch m.loss {
            case .squared: loss = "squared"
            case .huber(let delta): loss = "huber"; huberDelta = JSONNumber(delta)
            }
            headActivation = m.headActivation.rawValue
            elmanActivation = m.elmanActivation.rawValue
            switch m.normalization {
            case .none: normalization = "none"
            case .running(let f): normalization = "running"; normalizationForgetting = JSONNumber(f ?? 1)
            }
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

    /// What a daemon of the `--config` file would do with the record.
    struct Config: Encodable {
        var file: String
        /// The configured model has the record's shape.
        var restores: Bool
        /// The shape changes, when it has not.
        var changes: [String]
    }

    struct Counters: Encodable {
        var samples: Int
        var rejectedSamples: Int
        var updates: Int
        var clippedUpdates: Int
        var skippedUpdates: Int
        var stateResets: Int
        var optimizerSteps: Int
        var lastLoss: JSONNumber
        var lastGradientNorm: JSONNumber

        enum CodingKeys: String, CodingKey {
            case samples, rejectedSamples = "rejected_samples", updates, clippedUpdates = "clipped_updates"
            case skippedUpdates = "skipped_updates", stateResets = "state_resets", optimizerSteps = "optimizer_steps"
            case lastLoss = "last_loss", lastGradientNorm = "last_gradient_norm"
        }
    }

    /// Per input, in original units.
    struct Normalizer: Encodable {
        var count: Int
        var mean: [JSONNumber]
        var std: [JSONNumber]
        /// The root mean square of the input's change from one sample to the next.
        var changeRMS: [JSONNumber]

        enum CodingKeys: String, CodingKey { case count, mean, std, changeRMS = "change_rms" }
    }

    struct Forecaster: Encodable {
        var scored: Int
        var banded: Int
        var covered: Int
        var drifts: Int
        var outliers: Int
        var levelShifts: Int
        var segments: Int

        enum CodingKeys: String, CodingKey {
            case scored, banded, covered, drifts, outliers, levelShifts = "level_shifts", segments
        }
    }

    init(_ d: RecordDescription) {
        source = d.source
        bytes = d.bytes.count
        checksum = d.checksumText
        let record: StreamRecord
        switch d.decoded {
        case .failure(let p):
            problem = ProblemJSON(p)
            return
        case .success(let r): record = r
        }
        stream = record.printableID
        formatVersion = Int(StreamRecord.formatVersion)
        savedAt = JSONNumber(record.savedAt)
        seq = record.seq
        lastT = JSONNumber(record.lastTimestamp)
        model = Model(record.model)
        flags = modelFlags(record.model)
        if let configured = d.configured, let changes = d.configurationChanges {
            config = Config(file: configured.file, restores: changes.isEmpty, changes: changes)
        }
        if let s = record.stateSummary {
            let k = s.counters
            counters = Counters(
                samples: k.samples, rejectedSamples: k.rejectedSamples, updates: k.updates,
                clippedUpdates: k.clippedUpdates, skippedUpdates: k.skippedUpdates, stateResets: k.stateResets,
                optimizerSteps: s.optimizerSteps, lastLoss: JSONNumber(k.lastLoss), lastGradientNorm: JSONNumber(k.lastGradientNorm))
            normalizer = Normalizer(
                count: s.normalizerCount, mean: s.mean.map { JSONNumber($0) },
                std: s.variance.map { JSONNumber($0.squareRoot()) }, changeRMS: s.changeMeanSquare.map { JSONNumber($0.squareRoot()) })
        }
        if let f = record.forecasterCounters {
            forecaster = Forecaster(
                scored: f.scored, banded: f.banded, covered: f.covered, drifts: f.drifts,
                outliers: f.outliers, levelShifts: f.levelShifts, segments: f.segments)
        }
    }
}
