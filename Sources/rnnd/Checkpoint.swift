import ArgumentParser
import Foundation
import RNNCore
import RNNDaemon
import RNNState
import RNNTools
import RNNWire

struct Checkpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect the checkpoint store, and move streams in and out of it.",
        discussion: """
            The store is rnnd.sqlite in the state directory, found as rnnd run finds it: \
            --state-dir, else state_directory in the --config file, else $STATE_DIRECTORY, \
            $XDG_STATE_HOME/rnnd, ~/.local/state/rnnd. list, show and export only read, also \
            while a daemon runs; import, delete and restore-aside write, and refuse while a daemon holds the \
            directory (exit 75): stop it first. A record file is one stream's record, byte for \
            byte as the store holds it (self-describing, checksummed). docs/checkpoints.md has \
            the details. Exit codes: 64 usage, 65 bad record data, 66 no such store, file or \
            stream, 73 cannot write, 75 state directory in use, 78 bad --config file.
            """,
        subcommands: [List.self, Show.self, Export.self, Import.self, Delete.self, RestoreAside.self]
    )
}

/// `--state-dir` and `--config`: the state directory `rnnd run` would use with them.
struct StateDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("state-dir"), help: ArgumentHelp(
        "The daemon's state directory (default: as rnnd run resolves it).", valueName: "directory"))
    var stateDirectory: String?

    @Option(name: .customLong("config"), help: ArgumentHelp(
        "The daemon's TOML configuration file: its state_directory, and its [model] for the shape check.", valueName: "file"))
    var configFile: String?

    func resolve(_ command: String) throws -> (directory: String, configuration: DaemonConfiguration) {
        let c = try resolveConfiguration(command: command, file: configFile) { c in
            if let stateDirectory { c.stateDirectory = stateDirectory }
        }
        return (c.resolvedStateDirectory(environment: ProcessInfo.processInfo.environment), c)
    }

    /// The configured model to check records against: only with `--config` (flags the daemon
    /// runs with are not known here).
    func configured(_ c: DaemonConfiguration) -> (file: String, configuration: DaemonConfiguration)? {
        configFile.map { ($0, c) }
    }
}

/// Says `message` on stderr as `rnnd <command>: message` and exits with `code`.
func failure(_ command: String, _ message: String, _ code: Int32) -> ExitCode {
    FileHandle.standardError.write(Data("rnnd \(command): \(message)\n".utf8))
    return ExitCode(code)
}

func failure(_ command: String, _ error: CheckpointCommandError) -> ExitCode {
    failure(command, error.message, error.exitCode)
}

/// Opens the store of `directory`: read-only for the commands that only read.
func openStore(_ directory: String, command: String, readOnly: Bool, create: Bool = false) throws -> CheckpointStore {
    do throws(CheckpointStoreError) {
        return try CheckpointStore(directory: directory, create: create, readOnly: readOnly)
    } catch {
        switch error {
        case .cannotOpen: throw failure(command, error.description, create ? 73 : 66)
        case .newerSchema, .corrupt: throw failure(command, error.description, 65)
        case .inUse: throw failure(command, error.description, 75)
        }
    }
}

/// The stored record of the stream `name` names, and its id.
func storedRecord(_ name: String, in store: CheckpointStore, command: String) throws -> (id: [UInt8], bytes: [UInt8]) {
    for id in streamIDs(named: name) {
        if let bytes = try store.record(id: id) { return (id, bytes) }
    }
    let count = (try? store.list().count) ?? 0
    throw failure(command, "no stream '\(name)' in \(store.path) (\(count) stored; rnnd checkpoint list shows them)", 66)
}

/// Takes the state directory's lock, as the daemon does: refused while a daemon runs on it.
func lockStateDirectory(_ directory: String, command: String) throws -> StateDirectoryLock {
    do throws(CheckpointStoreError) {
        return try StateDirectoryLock(directory: directory)
    } catch {
        if case .inUse = error {
            throw failure(
                command, "\(error.description). Stop the daemon first (systemctl stop rnnd), then run this again and start it.",
                CheckpointCommandError.inUse)
        }
        throw failure(command, error.description, CheckpointCommandError.cannotWrite)
    }
}

/// Why a daemon of `configured` would not restore `record`, and what it would do instead; nil
/// when it restores it.
func restoreWarning(_ record: StreamRecord, configured: (file: String, configuration: DaemonConfiguration)) -> String? {
    let c = configured.configuration, m = record.model
    let changes = record.shapeChanges(to: c.modelConfiguration(inputs: m.inputs))
    if !changes.isEmpty {
        let then = switch c.onModelChange {
        case .refuse: "it refuses to start"
        case .keep: "it keeps the record unloaded and refuses the stream's samples"
        case .fresh: "it sets the record aside and starts the stream afresh"
        }
        return "a daemon of \(configured.file) does not restore stream '\(record.printableID)': the model differs: "
            + "\(changes.joined(separator: ", ")); \(then) (on_model_change = \(c.onModelChange.rawValue))"
    }
    if let own = c.streamShard, !own.owns(id: record.id) {
        return "a daemon of \(configured.file) (shard \(own)) does not restore stream '\(record.printableID)': another shard owns it"
    }
    return nil
}

/// Says `warnings` on stderr, at most ten of them.
func warn(_ command: String, _ warnings: [String]) {
    for w in warnings.prefix(10) { FileHandle.standardError.write(Data("rnnd \(command): warning: \(w)\n".utf8)) }
    if warnings.count > 10 {
        FileHandle.standardError.write(Data("rnnd \(command): warning: ... and \(warnings.count - 10) more such records\n".utf8))
    }
}

extension Checkpoint {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the stored streams, a summary, and the records set aside.",
            discussion: """
                One line per stream: its id, model (cell, hidden units, inputs, horizon), the \
                samples it learned and the weight updates, seq (samples the stream took), the \
                time of its latest sample and when its record was saved (ISO 8601, UTC), the \
                record's size. Reads every record once and checks its checksum.
                """)

        @OptionGroup var state: StateDirectoryOptions

        @Flag(help: "Print one JSON object (times as Unix seconds).")
        var json = false

        func run() throws {
            let command = "checkpoint list"
            let (directory, _) = try state.resolve(command)
            let store = try openStore(directory, command: command, readOnly: true)
            let listing: CheckpointListing
            do { listing = try CheckpointListing(store: store) } catch {
                throw failure(command, "\(store.path): \(error)", 66)
            }
            print(json ? listing.json() : listing.text(), terminator: "")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Everything about one stream's record: model, counters, normaliser, checksum.",
            discussion: """
                STREAM is the id as list prints it (a binary id as 0x...). --file shows a \
                record file instead (rnnd fit's or export's output). With --config, says whether \
                a daemon of that file would restore the record or set it aside (a changed shape). \
                Exits 65 when the record is unusable (after saying why).
                """)

        @Argument(help: ArgumentHelp("The stream id.", valueName: "stream"))
        var stream: String?

        @Option(help: ArgumentHelp("A record file to show instead of a stored stream.", valueName: "file"))
        var file: String?

        @OptionGroup var state: StateDirectoryOptions

        @Flag(help: "Print one JSON object.")
        var json = false

        func validate() throws {
            guard (stream == nil) != (file == nil) else { throw ValidationError("give a stream id or --file, one of them") }
        }

        func run() throws {
            let command = "checkpoint show"
            let (directory, c) = try state.resolve(command)
            let source: String, bytes: [UInt8]
            if let file {
                do throws(CheckpointCommandError) { bytes = try RecordFile.read(file) } catch { throw failure(command, error) }
                source = file
            } else {
                let store = try openStore(directory, command: command, readOnly: true)
                bytes = try storedRecord(stream!, in: store, command: command).bytes
                source = store.path
            }
            let description = RecordDescription(source: source, bytes: bytes, configured: state.configured(c).map { ($0.file, $0.configuration.model) })
            print(json ? description.json() : description.text(), terminator: "")
            if case .failure = description.decoded { throw ExitCode(CheckpointCommandError.dataError) }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write one stream's record to a file, or every record of a shard to a directory.",
            discussion: """
                The file is what import and rnnd replay --from read. Refuses to overwrite a file \
                unless --force, and to export a record that fails its checks (exit 65). With \
                --shard I/N instead of a stream, --out is a directory (created when missing) that \
                gets one file per stored stream of shard I of N (the streams rnnd run \
                --shard I/N takes: docs/protocol.md, "Sharding"): for re-sharding (docs/scaling.md). Records \
                that fail their checks are left out and named, and the command then exits 65.
                """)

        @Argument(help: ArgumentHelp("The stream id.", valueName: "stream"))
        var stream: String?

        @Option(help: ArgumentHelp("Export every stream of shard I of N; --out is then a directory.", valueName: "I/N"))
        var shard: String?

        @Option(help: ArgumentHelp("The record file to write (- for stdout); with --shard, a directory.", valueName: "file"))
        var out: String

        @Flag(help: "Overwrite files that exist.")
        var force = false

        @OptionGroup var state: StateDirectoryOptions

        func validate() throws {
            guard (stream == nil) != (shard == nil) else { throw ValidationError("give a stream id or --shard I/N, one of them") }
            if let shard {
                if let problem = StreamShard.problem(shard) { throw ValidationError("--shard: \(problem)") }
                if out == "-" { throw ValidationError("--out: with --shard, a directory (one file per stream), not -") }
            }
        }

        func run() throws {
            let command = "checkpoint export"
            let (directory, _) = try state.resolve(command)
            let store = try openStore(directory, command: command, readOnly: true)
            if let shard = shard.flatMap(StreamShard.init(parsing:)) {
                return try exportShard(shard, from: store, command: command)
            }
            let (_, bytes) = try storedRecord(stream!, in: store, command: command)
            let record: StreamRecord
            do throws(RecordProblem) { record = try StreamRecord.decode(bytes) } catch {
                throw failure(command, "stream '\(stream!)': not exported: \(error.description)", CheckpointCommandError.dataError)
            }
            do throws(CheckpointCommandError) { try RecordFile.write(bytes, to: out, replace: force) } catch {
                throw failure(command, error)
            }
            let note = "exported stream '\(record.printableID)' (\(bytes.count) bytes, seq \(record.seq)) to \(out)\n"
            if out == "-" { FileHandle.standardError.write(Data(note.utf8)) } else { print(note, terminator: "") }
        }

        /// Every stored stream of `shard`, one file each, into the directory `out`.
        private func exportShard(_ shard: StreamShard, from store: CheckpointStore, command: String) throws {
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            } catch {
                throw failure(command, "\(out): cannot create the directory: \(error.localizedDescription)", CheckpointCommandError.cannotWrite)
            }
            var exported = 0, bytes = 0, others = 0
            var unusable: [String] = []
            var writeError: CheckpointCommandError?
            do {
                try store.forEachRecord { id, raw in
                    guard writeError == nil else { return }
                    guard shard.owns(id: id) else {
                        others += 1
                        return
                    }
                    let record = Array(raw)
                    do throws(RecordProblem) { _ = try StreamRecord.decode(record) } catch {
                        unusable.append("\(printableStreamID(id)): \(error.description)")
                        return
                    }
                    let path = (out.hasSuffix("/") ? out : out + "/") + RecordFile.name(for: id)
                    do throws(CheckpointCommandError) { try RecordFile.write(record, to: path, replace: force) } catch {
                        writeError = error
                        return
                    }
                    exported += 1
                    bytes += record.count
                }
            } catch {
                throw failure(command, "\(store.path): \(error)", CheckpointCommandError.noInput)
            }
            if let writeError { throw failure(command, "\(writeError.message) (\(exported) streams written before it)", writeError.exitCode) }
            print("exported \(exported) stream\(exported == 1 ? "" : "s") of shard \(shard) (\(bytes) bytes) to \(out); "
                + "\(others) stored stream\(others == 1 ? " belongs" : "s belong") to other shards")
            if !unusable.isEmpty {
                throw failure(
                    command, "\(unusable.count) records fail their checks and were not exported:\n  " + unusable.joined(separator: "\n  "),
                    CheckpointCommandError.dataError)
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put record files (export's or fit's) into the store.",
            discussion: """
                Checks every record first (a corrupt one is refused, exit 65, with why, and \
                nothing is imported). A directory stands for every *.rnndckpt file in it. \
                --stream stores a single record under another id. --shard I/N imports only the \
                records of streams that shard owns (for re-sharding, docs/scaling.md). Needs \
                --replace when a stream is stored already. All records go in at once, in one \
                transaction. Refused while a daemon runs on the state directory (exit 75): stop \
                it, import, start it; it then restores each stream whose model has the record's \
                shape (rnnd checkpoint show --file FILE prints the flags).
                """)

        @Argument(help: ArgumentHelp("Record files or directories of them; - for stdin.", valueName: "file"))
        var files: [String]

        @Option(name: .customLong("stream"), help: ArgumentHelp("Store the record as this stream id (one file only).", valueName: "id"))
        var newID: String?

        @Option(help: ArgumentHelp("Import only the streams of shard I of N, leave the others out.", valueName: "I/N"))
        var shard: String?

        @Flag(help: "Replace a stream's record when it is stored already.")
        var replace = false

        @OptionGroup var state: StateDirectoryOptions

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("give a record file (or a directory of them)") }
            if files.contains("-"), files.count > 1 { throw ValidationError("- (stdin) is the only file when given") }
            if let newID {
                if let problem = streamIDProblem(newID) { throw ValidationError("--stream: \(problem)") }
                if files.count > 1 { throw ValidationError("--stream renames one record: give one file") }
            }
            if let shard, let problem = StreamShard.problem(shard) { throw ValidationError("--shard: \(problem)") }
        }

        func run() throws {
            let command = "checkpoint import"
            let (directory, c) = try state.resolve(command)
            let paths: [String]
            do throws(CheckpointCommandError) { paths = try RecordFile.expand(files) } catch { throw failure(command, error) }
            if paths.isEmpty { throw failure(command, "no *.rnndckpt file in \(files.joined(separator: ", "))", CheckpointCommandError.noInput) }
            if newID != nil, paths.count > 1 { throw failure(command, "--stream renames one record, and \(files[0]) holds \(paths.count)", 64) }

            // Every record read and checked before anything is written.
            let filter = shard.flatMap(StreamShard.init(parsing:))
            var records: [(file: String, record: StreamRecord, bytes: [UInt8])] = []
            var source: [[UInt8]: String] = [:]
            var leftOut = 0
            for file in paths {
                var bytes: [UInt8]
                do throws(CheckpointCommandError) { bytes = try RecordFile.read(file) } catch { throw failure(command, error) }
                var record: StreamRecord
                do throws(RecordProblem) { record = try StreamRecord.decode(bytes, template: state.configured(c)?.configuration.model) } catch {
                    throw failure(command, "\(file): not imported: \(error.description); nothing was imported", CheckpointCommandError.dataError)
                }
                if let newID {
                    record.id = Array(newID.utf8)
                    bytes = record.encoded()
                } else if let problem = record.id.withUnsafeBytes({ validateStreamID($0) }) {
                    throw failure(
                        command, "\(file): not imported: it names an invalid stream id (\(problem)); --stream gives it another",
                        CheckpointCommandError.dataError)
                }
                if let filter, !filter.owns(id: record.id) {
                    leftOut += 1
                    continue
                }
                if let other = source[record.id] {
                    throw failure(
                        command, "\(other) and \(file) both hold stream '\(record.printableID)'; import one of them; nothing was imported",
                        CheckpointCommandError.dataError)
                }
                source[record.id] = file
                records.append((file, record, bytes))
            }

            let lock = try lockStateDirectory(directory, command: command)
            defer { withExtendedLifetime(lock) {} }
            let store = try openStore(directory, command: command, readOnly: false, create: true)
            do {
                if !replace {
                    let stored = try records.filter { try store.record(id: $0.record.id) != nil }.map { "'\($0.record.printableID)'" }
                    if !stored.isEmpty {
                        throw failure(
                            command, "\(stored.count == 1 ? "stream \(stored[0]) is" : "\(stored.count) streams are") stored already in "
                                + "\(store.path)\(stored.count == 1 ? "" : " (\(stored.prefix(5).joined(separator: ", "))\(stored.count > 5 ? ", ..." : ""))"); "
                                + "--replace replaces \(stored.count == 1 ? "it" : "them"); nothing was imported",
                            CheckpointCommandError.cannotWrite)
                    }
                }
                try store.put(records.map { ($0.record.id, $0.bytes, $0.record.savedAt) })
            } catch let exit as ExitCode {
                throw exit
            } catch {
                throw failure(command, "\(store.path): \(error)", CheckpointCommandError.cannotWrite)
            }
            for r in records where records.count <= 10 {
                let m = r.record.model
                let learned = r.record.stateSummary.map { "\($0.counters.samples) samples learned, " } ?? ""
                print("imported stream '\(r.record.printableID)' into \(store.path): \(m.cell.rawValue), hidden \(m.hidden), "
                    + "\(m.inputs) inputs, horizon \(m.horizon); \(learned)seq \(r.record.seq)")
            }
            if records.count != 1 || filter != nil {
                print("imported \(records.count) stream\(records.count == 1 ? "" : "s") into \(store.path)"
                    + (filter.map { "; \(leftOut) of other shards than \($0) left out" } ?? ""))
            }
            if let configured = state.configured(c) {
                var warnings: [String] = []
                for r in records {
                    if let warning = restoreWarning(r.record, configured: configured) { warnings.append(warning) }
                }
                warn(command, warnings)
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a stream's record out of the restored streams, into the records set aside.",
            discussion: """
                The daemon no longer restores it; the bytes stay in the store (list shows them \
                under set aside, for set_aside_days; restore-aside brings them back). For a \
                stream moved to another host. Refused while a daemon runs on the state directory \
                (exit 75).
                """)

        @Argument(help: ArgumentHelp("The stream id.", valueName: "stream"))
        var stream: String

        @OptionGroup var state: StateDirectoryOptions

        func run() throws {
            let command = "checkpoint delete"
            let (directory, _) = try state.resolve(command)
            _ = try openStore(directory, command: command, readOnly: true)  // there is a store
            let lock = try lockStateDirectory(directory, command: command)
            defer { withExtendedLifetime(lock) {} }
            let store = try openStore(directory, command: command, readOnly: false)
            let (id, _) = try storedRecord(stream, in: store, command: command)
            do {
                _ = try store.setAside(id: id, reason: "deleted", detail: "rnnd checkpoint delete")
            } catch {
                throw failure(command, "\(store.path): \(error)", CheckpointCommandError.cannotWrite)
            }
            print("stream '\(stream)' set aside in \(store.path); the daemon no longer restores it")
        }
    }

    struct RestoreAside: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "restore-aside",
            abstract: "Put records set aside back among the streams the daemon restores.",
            discussion: """
                STREAM takes the newest record set aside of that stream; --entry N the record \
                numbered N (list prints the numbers); --all the newest of every stream that has \
                one, --reason narrowing them (model_changed, deleted, ...). A record that fails \
                its checks stays set aside: with --all it is named and left out, otherwise nothing \
                is restored (exit 65). A stream whose live record was saved later than the record \
                set aside keeps it unless --force (exit 73, nothing restored); a live record that \
                is replaced is set aside in its turn (replaced), so nothing is deleted. All go in \
                one transaction. Refused while a daemon runs on the state directory (exit 75). \
                With --config, warns of records a daemon of that file would not restore.
                """)

        @Argument(help: ArgumentHelp("Stream ids: the newest record set aside of each.", valueName: "stream"))
        var streams: [String] = []

        @Option(name: .customLong("entry"), help: ArgumentHelp("A record set aside by its number (list prints it); repeat for several.", valueName: "n"))
        var entries: [Int] = []

        @Flag(help: "The newest record set aside of every stream that has one.")
        var all = false

        @Option(help: ArgumentHelp("With --all: only records set aside for this reason.", valueName: "reason"))
        var reason: String?

        @Flag(help: "Restore a record even when the stream's live record was saved later (that one is set aside).")
        var force = false

        @OptionGroup var state: StateDirectoryOptions

        func validate() throws {
            guard all != (!streams.isEmpty || !entries.isEmpty) else {
                throw ValidationError("give stream ids or --entry N, or --all, one of them")
            }
            if reason != nil, !all { throw ValidationError("--reason narrows --all") }
        }

        func run() throws {
            let command = "checkpoint restore-aside"
            let (directory, c) = try state.resolve(command)
            _ = try openStore(directory, command: command, readOnly: true)  // there is a store
            let lock = try lockStateDirectory(directory, command: command)
            defer { withExtendedLifetime(lock) {} }
            let store = try openStore(directory, command: command, readOnly: false)
            do {
                try restore(in: store, configuration: c, command: command)
            } catch let exit as ExitCode {
                throw exit
            } catch {
                throw failure(command, "\(store.path): \(error)", CheckpointCommandError.cannotWrite)
            }
        }

        private func restore(in store: CheckpointStore, configuration c: DaemonConfiguration, command: String) throws {
            let aside = try store.setAsideList()
            // The records asked for: their numbers.
            var chosen: [Int] = []
            if all {
                var newest: [[UInt8]: Int] = [:]
                for r in aside where reason == nil || r.reason == reason { newest[r.id] = max(newest[r.id] ?? r.n, r.n) }
                chosen = newest.values.sorted()
                if chosen.isEmpty {
                    print("no records set aside\(reason.map { " for \($0)" } ?? "") in \(store.path); nothing restored")
                    return
                }
            }
            for name in streams {
                let ids = streamIDs(named: name)
                guard let n = aside.filter({ ids.contains($0.id) }).map(\.n).max() else {
                    throw failure(command, "no record of stream '\(name)' is set aside in \(store.path) (rnnd checkpoint list shows them)", CheckpointCommandError.noInput)
                }
                chosen.append(n)
            }
            for n in entries {
                guard aside.contains(where: { $0.n == n }) else {
                    throw failure(command, "no record set aside numbered \(n) in \(store.path) (rnnd checkpoint list shows them)", CheckpointCommandError.noInput)
                }
                chosen.append(n)
            }

            // Every record checked, and every live record it would replace, before anything is written.
            let live = Dictionary(try store.list().map { ($0.id, $0.savedAt) }, uniquingKeysWith: { a, _ in a })
            var restoring: [(n: Int, record: StreamRecord, reason: String, at: Double, replaces: Double?)] = []
            var unusable: [String] = [], newer: [String] = []
            var seen: Set<[UInt8]> = []
            for n in chosen {
                guard let entry = try store.setAsideRecord(n) else { continue }
                let name = "'\(printableStreamID(entry.id))' (record \(n), set aside as \(entry.reason))"
                guard seen.insert(entry.id).inserted else {
                    throw failure(command, "two records of stream \(name) asked for; restore one of them; nothing was restored", CheckpointCommandError.usage)
                }
                let record: StreamRecord
                do throws(RecordProblem) { record = try StreamRecord.decode(entry.record, template: state.configured(c)?.configuration.model) } catch {
                    unusable.append("\(name): \(error.description)")
                    continue
                }
                let replaces = live[entry.id]
                if let replaces, replaces > record.savedAt, !force {
                    newer.append("\(name): its live record, saved \(Timestamp.iso8601(replaces)), is newer than this one, saved \(Timestamp.iso8601(record.savedAt))")
                }
                restoring.append((n, record, entry.reason, entry.at, replaces))
            }
            if !unusable.isEmpty, !all {
                throw failure(command, "these records fail their checks and stay set aside; nothing was restored:\n  " + unusable.joined(separator: "\n  "),
                              CheckpointCommandError.dataError)
            }
            if !newer.isEmpty {
                throw failure(
                    command, "\(newer.count == 1 ? "a stream has a live record" : "\(newer.count) streams have live records") newer than the one set aside; "
                        + "--force restores \(newer.count == 1 ? "it" : "them") anyway (the live \(newer.count == 1 ? "record is" : "records are") set aside as replaced); "
                        + "nothing was restored:\n  " + newer.prefix(10).joined(separator: "\n  ") + (newer.count > 10 ? "\n  ..." : ""),
                    CheckpointCommandError.cannotWrite)
            }
            try store.restoreAside(restoring.map { ($0.n, $0.record.savedAt) }, detail: "replaced by a record set aside (rnnd checkpoint restore-aside)")
            for r in restoring where restoring.count <= 10 {
                print("restored stream '\(r.record.printableID)' into \(store.path): the record set aside as \(r.reason) at \(Timestamp.iso8601(r.at)), "
                    + "saved \(Timestamp.iso8601(r.record.savedAt)), seq \(r.record.seq)"
                    + (r.replaces == nil ? "" : "; the live record it replaces is set aside (replaced)"))
            }
            if restoring.count > 10 || all {
                print("restored \(restoring.count) stream\(restoring.count == 1 ? "" : "s") into \(store.path)")
            }
            if !unusable.isEmpty {
                FileHandle.standardError.write(Data(("rnnd \(command): \(unusable.count) records fail their checks and stay set aside:\n  "
                    + unusable.prefix(10).joined(separator: "\n  ") + "\n").utf8))
            }
            if let configured = state.configured(c) {
                warn(command, restoring.compactMap { restoreWarning($0.record, configured: configured) })
            }
        }
    }
}
