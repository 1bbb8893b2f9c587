import ArgumentParser
import Foundation
import RNNCore
import RNNDaemon

struct Checkpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect the checkpoint store, and move streams in and out of it.",
        discussion: """
            The store is rnnd.sqlite in the state directory, found as rnnd run finds it: \
            --state-dir, else state_directory in the --config file, else $STATE_DIRECTORY, \
            $XDG_STATE_HOME/rnnd, ~/.local/state/rnnd. list, show and export only read, also \
            while a daemon runs; import and delete write, and refuse while a daemon holds the \
            directory (exit 75): stop it first. A record file is one stream's record, byte for \
            byte as the store holds it (self-describing, checksummed). docs/checkpoints.md has \
            the details. Exit codes: 64 usage, 65 bad record data, 66 no such store, file or \
            stream, 73 cannot write, 75 state directory in use, 78 bad --config file.
            """,
        subcommands: [List.self, Show.self, Export.self, Import.self, Delete.self]
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
            let description = RecordDescription(source: source, bytes: bytes, configuration: state.configured(c))
            print(json ? description.json() : description.text(), terminator: "")
            if case .failure = description.decoded { throw ExitCode(CheckpointCommandError.dataError) }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write one stream's record to a file, byte for byte.",
            discussion: """
                The file is what import and rnnd replay --from read. Refuses to overwrite a file \
                unless --force, and to export a record that fails its checks (exit 65).
                """)

        @Argument(help: ArgumentHelp("The stream id.", valueName: "stream"))
        var stream: String

        @Option(help: ArgumentHelp("The record file to write; - for stdout.", valueName: "file"))
        var out: String

        @Flag(help: "Overwrite the file when it exists.")
        var force = false

        @OptionGroup var state: StateDirectoryOptions

        func run() throws {
            let command = "checkpoint export"
            let (directory, _) = try state.resolve(command)
            let store = try openStore(directory, command: command, readOnly: true)
            let (_, bytes) = try storedRecord(stream, in: store, command: command)
            let record: StreamRecord
            do throws(RecordProblem) { record = try StreamRecord.decode(bytes) } catch {
                throw failure(command, "stream '\(stream)': not exported: \(error.description)", CheckpointCommandError.dataError)
            }
            do throws(CheckpointCommandError) { try RecordFile.write(bytes, to: out, replace: force) } catch {
                throw failure(command, error)
            }
            let note = "exported stream '\(record.printableID)' (\(bytes.count) bytes, seq \(record.seq)) to \(out)\n"
            if out == "-" { FileHandle.standardError.write(Data(note.utf8)) } else { print(note, terminator: "") }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a record file (export's or fit's) into the store.",
            discussion: """
                Checks the record first (a corrupt one is refused, exit 65, with why). \
                --stream stores it under another id. Needs --replace when the stream is stored \
                already. Refused while a daemon runs on the state directory (exit 75): stop it, \
                import, start it; it then restores the stream if its model has the record's \
                shape (rnnd checkpoint show --file FILE prints the flags).
                """)

        @Argument(help: ArgumentHelp("The record file; - for stdin.", valueName: "file"))
        var file: String

        @Option(name: .customLong("stream"), help: ArgumentHelp("Store it as this stream id.", valueName: "id"))
        var newID: String?

        @Flag(help: "Replace the stream's record when it is stored already.")
        var replace = false

        @OptionGroup var state: StateDirectoryOptions

        func validate() throws {
            if let newID, let problem = streamIDProblem(newID) { throw ValidationError("--stream: \(problem)") }
        }

        func run() throws {
            let command = "checkpoint import"
            let (directory, c) = try state.resolve(command)
            var bytes: [UInt8]
            do throws(CheckpointCommandError) { bytes = try RecordFile.read(file) } catch { throw failure(command, error) }
            var record: StreamRecord
            do throws(RecordProblem) { record = try StreamRecord.decode(bytes) } catch {
                throw failure(command, "\(file): not imported: \(error.description)", CheckpointCommandError.dataError)
            }
            if let newID {
                record.id = Array(newID.utf8)
                bytes = record.encoded()
            } else if let problem = record.id.withUnsafeBytes({ validateStreamID($0) }) {
                throw failure(
                    command, "\(file): not imported: it names an invalid stream id (\(problem)); --stream gives it another",
                    CheckpointCommandError.dataError)
            }
            let lock = try lockStateDirectory(directory, command: command)
            defer { withExtendedLifetime(lock) {} }
            let store = try openStore(directory, command: command, readOnly: false, create: true)
            do {
                if !replace, try store.record(id: record.id) != nil {
                    throw failure(
                        command, "stream '\(record.printableID)' is stored already in \(store.path); --replace replaces it",
                        CheckpointCommandError.cannotWrite)
                }
                try store.put(id: record.id, record: bytes, savedAt: record.savedAt)
            } catch let exit as ExitCode {
                throw exit
            } catch {
                throw failure(command, "\(store.path): \(error)", CheckpointCommandError.cannotWrite)
            }
            let m = record.model
            let learned = record.stateSummary.map { "\($0.counters.samples) samples learned, " } ?? ""
            print("imported stream '\(record.printableID)' into \(store.path): \(m.cell.rawValue), hidden \(m.hidden), "
                + "\(m.inputs) inputs, horizon \(m.horizon); \(learned)seq \(record.seq)")
            if let configured = state.configured(c) {
                let changes = StreamRecord.shapeChanges(from: m, to: configured.configuration.modelConfiguration(inputs: m.inputs))
                if !changes.isEmpty {
                    FileHandle.standardError.write(Data(("rnnd \(command): warning: a daemon of \(configured.file) sets this "
                        + "record aside at start: the model differs: \(changes.joined(separator: ", "))\n").utf8))
                }
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a stream's record out of the restored streams, into the records set aside.",
            discussion: """
                The daemon no longer restores it; the bytes stay in the store (list shows them \
                under set aside). For a stream moved to another host. Refused while a daemon \
                runs on the state directory (exit 75).
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
}
