// `rnnd checkpoint` and `rnnd fit` (docs/checkpoints.md): what a store holds, one stream's
// record in full, and record files moved in and out of stores. The command lines are
// Sources/rnnd/Checkpoint.swift and Sources/rnnd/Fit.swift; `--json` is CheckpointJSON.swift.

import Foundation
import RNNBasics
import RNNCore
import RNNState
import RNNWire

/// Why a checkpoint command failed, with its exit status (sysexits.h).
public struct CheckpointCommandError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var exitCode: Int32
    public var description: String { message }

    public init(_ message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }

    /// EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_CANTCREAT, EX_TEMPFAIL.
    public static let usage: Int32 = 64, dataError: Int32 = 65, noInput: Int32 = 66, cannotWrite: Int32 = 73, inUse: Int32 = 75
}

// MARK: record files

/// A stream record as a file: exactly the bytes the store holds for the stream (the record is
/// self-describing and checksummed), what `rnnd checkpoint export` and `rnnd fit` write and
/// `rnnd checkpoint import` and `rnnd replay --from` read. `-` is stdin or stdout.
public enum RecordFile {
    /// The file's bytes; a missing or unreadable file is EX_NOINPUT.
    public static func read(_ path: String) throws(CheckpointCommandError) -> [UInt8] {
        if path == "-" { return Array(FileHandle.standardInput.readDataToEndOfFile()) }
        do { return try FileContents.read(path) } catch {
            throw CheckpointCommandError("\(path): cannot read: \(error.reason)", exitCode: CheckpointCommandError.noInput)
        }
    }

    /// Fails now, before a long computation, when `path` exists and `replace` is false, or its
    /// directory cannot take a new file.
    public static func checkWritable(_ path: String, replace: Bool) throws(CheckpointCommandError) {
        guard path != "-" else { return }
        if !replace, FileManager.default.fileExists(atPath: path) {
            throw CheckpointCommandError("\(path) exists; --force overwrites it", exitCode: CheckpointCommandError.cannotWrite)
        }
        let directory = (path as NSString).deletingLastPathComponent
        guard access(directory.isEmpty ? "." : directory, W_OK) == 0 else {
            throw failure(path, "cannot write", CheckpointCommandError.cannotWrite)
        }
    }

    /// Writes `bytes` to `path`, durably: a new file is created exclusively (it never replaces
    /// one that appeared meanwhile unless `replace`), and a replaced file is swapped in whole by
    /// a rename, so a reader never sees half a record.
    public static func write(_ bytes: [UInt8], to path: String, replace: Bool) throws(CheckpointCommandError) {
        if path == "-" {
            FileHandle.standardOutput.write(Data(bytes))
            return
        }
        let target = replace ? path + ".tmp-\(getpid())" : path
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            if errno == EEXIST, !replace {
                throw CheckpointCommandError("\(path) exists; --force overwrites it", exitCode: CheckpointCommandError.cannotWrite)
            }
            throw failure(path, "cannot write", CheckpointCommandError.cannotWrite)
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let error = failure(path, "cannot write", CheckpointCommandError.cannotWrite)
                close(fd)
                unlink(target)
                throw error
            }
            written += n
        }
        guard fsync(fd) == 0, close(fd) == 0 else {
            let error = failure(path, "cannot write", CheckpointCommandError.cannotWrite)
            unlink(target)
            throw error
        }
        if replace, rename(target, path) != 0 {
            let error = failure(path, "cannot write", CheckpointCommandError.cannotWrite)
            unlink(target)
            throw error
        }
    }

    /// The record file name `rnnd checkpoint export --shard` gives a stream: its id made safe
    /// for a file name (bytes other than `A-Z a-z 0-9 . _ -` become `_`, at most 64 of them, no
    /// leading dot), then the id's hash in hex, which tells apart ids made alike: `plant_7_temp-
    /// 9694d1cee5d33b39.rnndckpt`. The file's name does not matter to `import`: the record
    /// names its stream.
    public static func name(for id: [UInt8]) -> String {
        var safe = id.prefix(64).map { b -> Character in
            let c = Character(Unicode.Scalar(b))
            return b < 0x80 && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-") ? c : "_"
        }
        if safe.first == "." { safe[0] = "_" }
        let hash = String(StreamShard.hash(of: id), radix: 16)
        return String(safe) + "-" + String(repeating: "0", count: 16 - hash.count) + hash + ".rnndckpt"
    }

    /// The record files a command line names: a file as it is, a directory as every
    /// `*.rnndckpt` file in it (sorted by name, not recursing).
    public static func expand(_ paths: [String]) throws(CheckpointCommandError) -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard path != "-", FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                files.append(path)
                continue
            }
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else {
                throw failure(path, "cannot read the directory", CheckpointCommandError.noInput)
            }
            let directory = path.hasSuffix("/") ? path : path + "/"
            files += names.filter { $0.hasSuffix(".rnndckpt") }.sorted().map { directory + $0 }
        }
        return files
    }

    private static func failure(_ path: String, _ what: String, _ code: Int32) -> CheckpointCommandError {
        CheckpointCommandError("\(path): \(what): \(String(cString: strerror(errno)))", exitCode: code)
    }
}

/// The stream ids a command-line argument may name: its UTF-8 bytes, and, for `0x` followed by
/// hex digits (how a binary id is printed), the bytes they spell.
public func streamIDs(named text: String) -> [[UInt8]] {
    var ids = [Array(text.utf8)]
    let hex = Array(text.utf8.dropFirst(2))
    if text.hasPrefix("0x"), !hex.isEmpty, hex.count % 2 == 0 {
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: hex.count, by: 2) {
            guard let b = UInt8(String(decoding: hex[i..<(i + 2)], as: UTF8.self), radix: 16) else { return ids }
            bytes.append(b)
        }
        ids.append(bytes)
    }
    return ids
}

/// Why `text` cannot be a stream id (1 ... 255 bytes of UTF-8), or nil.
public func streamIDProblem(_ text: String) -> String? {
    let bytes = Array(text.utf8)
    return bytes.withUnsafeBytes { validateStreamID($0) }.map { "'\(text)' cannot be a stream id: \($0)" }
}

/// The flags of `rnnd run` (and `replay`, `fit`) that give a stream this model.
public func modelFlags(_ m: ModelConfiguration) -> String {
    var flags = ["--model", m.cell.rawValue, "--hidden", "\(m.hidden)", "--window", "\(m.window)",
        "--update-every", "\(m.updateEvery)", "--horizon", "\(m.horizon)", "--optimizer", OptimizerName(m.optimizer).rawValue,
        "--lr", "\(m.learningRate)", "--clip-mode", m.clipMode.rawValue]
    if m.clipMode != .none { flags += ["--clip", "\(m.clipThreshold)"] }
    if m.cell == .elman { flags += ["--elman-activation", m.elmanActivation.rawValue] }
    if case .huber(let delta) = m.loss { flags += ["--loss", "huber", "--huber-delta", "\(delta)"] }
    if case .running(let f?) = m.normalization { flags += ["--normalization-forgetting", "\(f)"] }
    flags += ["--formulation", m.formulation.rawValue, "--calendar", m.calendar ? "on" : "off"]
    flags += ["--ensemble", m.ensemble ? "on" : "off", "--linear-lags", "\(m.linearLags)", "--direct-lookback", "\(m.effectiveDirectLookback)"]
    if let experts = m.experts { flags += ["--experts", experts.map(\.name).joined(separator: ",")] }
    flags += ["--coverage", "\(m.coverage)", "--drift", m.drift ? "on" : "off"]
    flags += ["--seed", "\(m.seed)"]
    return flags.joined(separator: " ")
}

/// The experts whose forecasts the published one may combine, in their order: with the
/// ensemble, those that are on (the linear model with lags, the direct expert with a look-back)
/// and that `experts` includes; without it, the network alone.
public func combinedExperts(_ m: ModelConfiguration) -> [Expert] {
    guard m.ensemble else { return [.network] }
    return Expert.allCases.filter(m.combines)
}

/// ``combinedExperts(_:)`` in words: `persistence, smoothing, linear 4 lags, network, direct 672 samples`.
func describeExperts(_ m: ModelConfiguration) -> String {
    combinedExperts(m).map { e in
        switch e {
        case .linear: "linear \(m.linearLags) lags"
        case .direct: "direct \(m.effectiveDirectLookback) samples"
        default: e.name
        }
    }.joined(separator: ", ")
}

// MARK: list

/// One stream of a store, for `rnnd checkpoint list`: its record's header and counters.
public struct StoredStream: Sendable {
    public var id: [UInt8]
    public var bytes: Int
    /// The record's fields when it decodes (the trainer state left out).
    public var model: ModelConfiguration?
    public var seq: Int?
    public var lastTimestamp: Double?
    public var savedAt: Double?
    public var summary: TrainerStateSummary?
    /// Why the record cannot be used: the daemon sets it aside at its next start.
    public var problem: RecordProblem?

    public var printableID: String { printableStreamID(id) }
}

/// A record the daemon (or `rnnd checkpoint delete`) moved out of the streams.
public struct SetAsideRecord: Sendable {
    /// Its number in the store, what `rnnd checkpoint restore-aside --entry` takes.
    public var n: Int
    public var id: [UInt8]
    public var reason: String
    public var detail: String
    public var at: Double
    public var bytes: Int
}

/// Everything `rnnd checkpoint list` prints.
public struct CheckpointListing: Sendable {
    public var storePath: String
    public var streams: [StoredStream] = []
    public var setAside: [SetAsideRecord] = []
    public var lastCheckpoint: (at: Double, streams: Int)?

    /// Reads every record of `store` once (checking its checksum), one at a time.
    public init(store: CheckpointStore) throws {
        storePath = store.path
        var streams: [StoredStream] = []
        try store.forEachRecord { id, raw in
            var entry = StoredStream(id: id, bytes: raw.count)
            do throws(RecordProblem) {
                let record = try StreamRecord.decode(raw)
                entry.model = record.model
                entry.seq = record.seq
                entry.lastTimestamp = record.lastTimestamp
                entry.savedAt = record.savedAt
                entry.summary = record.stateSummary
            } catch {
                entry.problem = error
            }
            streams.append(entry)
        }
        self.streams = streams
        setAside = try store.setAsideList().map {
            SetAsideRecord(n: $0.n, id: $0.id, reason: $0.reason, detail: $0.detail, at: $0.at, bytes: $0.bytes)
        }
        lastCheckpoint = try store.lastCheckpoint()
    }

    public var totalBytes: Int { streams.reduce(0) { $0 + $1.bytes } }

    /// A table, a summary line, then the records set aside.
    public func text() -> String {
        var lines: [String] = []
        if streams.isEmpty {
            lines.append("no streams stored in \(storePath)")
        } else {
            let header = ["STREAM", "CELL", "HIDDEN", "INPUTS", "HORIZON", "SAMPLES", "UPDATES", "SEQ", "LAST T", "SAVED AT", "BYTES"]
            var rows: [[String]] = []
            for s in streams {
                let id = s.printableID
                if let m = s.model, let seq = s.seq {
                    rows.append([
                        id, m.cell.rawValue, "\(m.hidden)", "\(m.inputs)", "\(m.horizon)",
                        s.summary.map { "\($0.counters.samples)" } ?? "-", s.summary.map { "\($0.counters.updates)" } ?? "-",
                        "\(seq)", s.lastTimestamp.map(Timestamp.iso8601) ?? "-", s.savedAt.map(Timestamp.iso8601) ?? "-", "\(s.bytes)",
                    ])
                } else {
                    rows.append([id, "-", "-", "-", "-", "-", "-", "-", "-", "-", "\(s.bytes)"])
                }
            }
            // Text columns left-aligned, numbers right-aligned.
            let left: Set<Int> = [0, 1, 8, 9]
            let widths = header.indices.map { c in max(header[c].count, rows.map { $0[c].count }.max() ?? 0) }
            func line(_ cells: [String]) -> String {
                cells.indices.map { c in
                    let pad = String(repeating: " ", count: widths[c] - cells[c].count)
                    return left.contains(c) ? cells[c] + pad : pad + cells[c]
                }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
            }
            lines.append(line(header))
            for row in rows { lines.append(line(row)) }
            for s in streams {
                if let problem = s.problem {
                    if case .unsupportedVersion(let v) = problem, v > Int(StreamRecord.formatVersion) {
                        lines.append("\(s.printableID): \(problem.description): written by a newer rnnd, not restored by this one (its on_model_change decides)")
                    } else {
                        lines.append("\(s.printableID): unusable: \(problem.description); the daemon sets it aside at its next start")
                    }
                }
            }
            lines.append("")
        }
        var summary = "\(streams.count) stream\(streams.count == 1 ? "" : "s"), \(totalBytes) bytes in \(storePath)"
        if let last = lastCheckpoint {
            summary += "; last checkpoint \(Timestamp.iso8601(last.at)) (\(last.streams) stream\(last.streams == 1 ? "" : "s") written)"
        } else {
            summary += "; no checkpoint written by a daemon yet"
        }
        lines.append(summary)
        if !setAside.isEmpty {
            lines.append("")
            lines.append("set aside (kept in the store, not restored; rnnd checkpoint restore-aside brings them back):")
            let ids = setAside.map { printableStreamID($0.id) }
            let numberWidth = setAside.map { "\($0.n)".count }.max() ?? 0
            let idWidth = ids.map(\.count).max() ?? 0, reasonWidth = setAside.map(\.reason.count).max() ?? 0
            for (r, id) in zip(setAside, ids) {
                let number = String(repeating: " ", count: numberWidth - "\(r.n)".count) + "\(r.n)"
                lines.append("  \(number)  \(id.padding(idWidth))  \(r.reason.padding(reasonWidth))  \(Timestamp.iso8601(r.at))  \(r.detail)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

// MARK: show

/// Everything about one record, for `rnnd checkpoint show`.
public struct RecordDescription {
    /// Where the record came from: `stream 'x' in PATH` or a file.
    public var source: String
    public var bytes: [UInt8]
    /// The record, or why it cannot be used.
    public var decoded: Result<StreamRecord, RecordProblem>
    /// The model a daemon of the `--config` file would give the stream, and the file's name.
    public var configured: (file: String, model: ModelConfiguration)?

    public init(source: String, bytes: [UInt8], configured template: (file: String, model: ModelConfiguration)? = nil) {
        self.source = source
        self.bytes = bytes
        // A record of an old format is migrated as the daemon of `template` would (the
        // settings the old format lacked are the template's).
        do throws(RecordProblem) { decoded = .success(try StreamRecord.decode(bytes, template: template?.model)) } catch {
            decoded = .failure(error)
        }
        if let template, case .success(let record) = decoded {
            var model = template.model
            model.inputs = record.model.inputs
            configured = (template.file, model)
        }
    }

    var checksumText: String { StreamRecord.storedChecksum(bytes).map { "0x" + String($0, radix: 16) } ?? "-" }

    /// What would stop the daemon of the `--config` file from restoring the record: shape
    /// changes, or nil when none (or no file was given).
    public var configurationChanges: [String]? {
        guard let configured, case .success(let record) = decoded else { return nil }
        return record.shapeChanges(to: configured.model)
    }

    public func text() -> String {
        var lines: [String] = [source]
        func add(_ label: String, _ value: String, indent: Int = 2) {
            lines.append(String(repeating: " ", count: indent) + label.padding(indent == 2 ? 11 : 20) + value)
        }
        let record: StreamRecord
        switch decoded {
        case .failure(let problem):
            add("record", "\(bytes.count) bytes, unusable: \(problem.description)")
            return lines.joined(separator: "\n") + "\n"
        case .success(let r): record = r
        }
        lines[0] = "stream '\(record.printableID)' (\(source))"
        let formatText = record.formatRead == StreamRecord.formatVersion
            ? "format \(record.formatRead)" : "format \(record.formatRead), migrated to \(StreamRecord.formatVersion) as read"
        add("record", "\(bytes.count) bytes, \(formatText), checksum ok (xxh64 \(checksumText))")
        add("saved at", Timestamp.iso8601(record.savedAt))
        add("seq", "\(record.seq) samples taken by the stream; last t \(record.lastTimestamp.map(Timestamp.iso8601) ?? "none")")
        let m = record.model
        lines.append("  model")
        add("cell", m.cell.rawValue, indent: 4)
        add("hidden", "\(m.hidden)", indent: 4)
        add("inputs", "\(m.inputs)", indent: 4)
        add("targets", m.targets.isEmpty ? "every input" : m.targets.map(String.init).joined(separator: ", "), indent: 4)
        add("horizon", "\(m.horizon)", indent: 4)
        add("window (k2)", "\(m.window)", indent: 4)
        add("update every (k1)", "\(m.updateEvery)", indent: 4)
        add("optimizer", Self.describe(m.optimizer), indent: 4)
        add("learning rate", "\(m.learningRate)", indent: 4)
        add("clipping", m.clipMode == .none ? "none" : "\(m.clipMode.rawValue) \(m.clipThreshold)", indent: 4)
        add("loss", { if case .huber(let d) = m.loss { "huber (delta \(d))" } else { "squared" } }(), indent: 4)
        add("head activation", m.headActivation.rawValue, indent: 4)
        add("elman activation", m.elmanActivation.rawValue + (m.cell == .elman ? "" : " (unused)"), indent: 4)
        add("normalisation", Self.describe(m.normalization), indent: 4)
        add("formulation", m.formulation.rawValue + (m.calendar ? ", with calendar inputs" : ""), indent: 4)
        add("forecast", m.ensemble ? "ensemble (\(describeExperts(m)))" : "the network alone", indent: 4)
        add("bands", m.coverage > 0 ? "\(m.coverage) coverage" : "none", indent: 4)
        add("drift", m.drift ? "detected and acted on" : "off", indent: 4)
        add("seed", "\(m.seed)", indent: 4)
        add("as flags", modelFlags(m), indent: 4)
        if let configured, let changes = configurationChanges {
            add("with --config", "\(configured.file): " + (changes.isEmpty
                ? "restored (the shape matches)"
                : "not restored: the model differs: \(changes.joined(separator: ", ")) (on_model_change decides the rest)"), indent: 4)
        }
        if let s = record.stateSummary {
            let k = s.counters
            lines.append("  trainer")
            add("samples learned", "\(k.samples) (\(k.rejectedSamples) rejected)", indent: 4)
            add("updates", "\(k.updates) (\(k.clippedUpdates) clipped, \(k.skippedUpdates) skipped), \(s.optimizerSteps) optimizer steps", indent: 4)
            add("state resets", "\(k.stateResets)", indent: 4)
            add("latest loss", k.lastLoss.map { formatG($0, 6) } ?? "none", indent: 4)
            add("gradient norm", k.lastGradientNorm.map { formatG($0, 6) } ?? "none", indent: 4)
            lines.append("  normaliser (\(s.normalizerCount) samples, original units)")
            for j in 0..<m.inputs {
                add("input \(j)", "mean \(formatG(s.mean[j], 6)), std \(formatG(s.variance[j].squareRoot(), 6)), "
                    + "typical change \(formatG(s.changeMeanSquare[j].squareRoot(), 6))", indent: 4)
            }
        }
        if let f = record.forecasterCounters {
            lines.append("  forecaster")
            add("scored", "\(f.scored) forecast values", indent: 4)
            add("in their band", f.banded > 0 ? "\(f.covered) of \(f.banded) (\(format(100 * Double(f.covered) / Double(f.banded), 1))%)" : "no band yet", indent: 4)
            add("drifts", "\(f.drifts)", indent: 4)
            add("outliers", "\(f.outliers) samples held back, \(f.levelShifts) level shifts, \(f.segments) new segments (gaps, clock jumps)", indent: 4)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func describe(_ optimizer: OptimizerKind) -> String {
        switch optimizer {
        case .sgd: "sgd"
        case .momentum(let mu): "momentum \(mu)"
        case .adam(let b1, let b2, let eps): "adam (beta1 \(b1), beta2 \(b2), epsilon \(eps))"
        case .adafactor(let b1, let b2, let eps): "adafactor (beta1 \(b1), beta2 \(b2), epsilon \(eps))"
        }
    }

    static func describe(_ normalization: Normalization) -> String {
        switch normalization {
        case .none: "none"
        case .running(let f?): "running, forgetting \(f)"
        case .running(nil): "running, every sample weighs the same"
        }
    }
}
