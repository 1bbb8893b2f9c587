import ArgumentParser
import Foundation
import RNNCore
import RNNDaemon
import RNNState
import RNNTools

struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a stream's model on a CSV file's history and write its record: a warm start.",
        discussion: """
            Streams the whole file --epochs times through the model rnnd run would build from \
            the same --config file and flags (predict, then learn, as replay's warm-up does; \
            everything carries from pass to pass), prints the last pass's MSE and MAE next to \
            persistence, and writes stream ID's record to --out: seq is the samples of one pass \
            and the last time is the file's last, so a daemon continues the stream after it. \
            rnnd checkpoint import puts it in a daemon's store (rnnd run then restores it when \
            run with the same model flags); rnnd replay --from starts from it. The daemon \
            forecasts every input of a stream: a record fitted with --targets naming fewer \
            columns is refused by rnnd run as a changed shape (replay --from takes it). \
            docs/checkpoints.md has the details.
            """
    )

    @Argument(help: ArgumentHelp("The CSV file (a header row, then one row per sample).", valueName: "file.csv"))
    var file: String

    @Option(help: ArgumentHelp("The record file to write; - for stdout.", valueName: "model.rnndckpt"))
    var out: String

    @Option(help: ArgumentHelp("The stream id the record is for.", valueName: "id"))
    var stream: String

    @Option(help: ArgumentHelp("Passes over the file.", valueName: "E"))
    var epochs = 5

    @Option(help: ArgumentHelp("Input columns, comma-separated (default: every numeric column).", valueName: "a,b"))
    var columns: String?

    @Option(help: ArgumentHelp(
        "Columns to forecast, among the inputs (default: every input; fewer than every input cannot be restored by rnnd run).",
        valueName: "c"))
    var targets: String?

    @Option(name: .customLong("time-column"), help: ArgumentHelp(
        "The time axis: a column's name, or none (default: the first column, when it holds timestamps, or Unix seconds under a time's name such as time or timestamp).",
        valueName: "name"))
    var timeColumn: String?

    @Option(name: .customLong("config"), help: ArgumentHelp("TOML configuration file, as for rnnd run.", valueName: "file"))
    var configFile: String?

    @OptionGroup var model: OptionalModelOptions

    @Flag(help: "Overwrite --out when it exists.")
    var force = false

    func resolve() throws -> DaemonConfiguration {
        try resolveConfiguration(command: "fit", file: configFile) { model.apply(to: &$0.model) }
    }

    func validate() throws {
        _ = try resolve()
        guard epochs >= 1 else { throw ValidationError("--epochs must be 1 or more") }
        if let problem = streamIDProblem(stream) { throw ValidationError("--stream: \(problem)") }
        if let list = columns.map(Replay.names), list.contains(where: \.isEmpty) { throw ValidationError("--columns has an empty name") }
        if let list = targets.map(Replay.names), list.contains(where: \.isEmpty) { throw ValidationError("--targets has an empty name") }
    }

    func run() throws {
        let configuration = try resolve()
        let table: CSVTable
        do throws(CSVError) { table = try CSVTable(path: file, timeColumn: timeColumn.map(CSVTable.TimeColumn.init(flag:)) ?? .automatic) } catch {
            throw failure("fit", error.description, error.exitCode)
        }
        let settings = ReplaySettings(columns: columns.map(Replay.names), targets: targets.map(Replay.names))
        let replayer: Replayer
        do throws(ReplayError) {
            replayer = try Replayer(table: table, model: configuration.model, settings: settings)
        } catch {
            throw failure("fit", error.message, error.exitCode)
        }
        do throws(CheckpointCommandError) { try RecordFile.checkWritable(out, replace: force) } catch {
            throw failure("fit", error)
        }

        let progress = isatty(STDERR_FILENO) == 1 ? ProgressBar(label: "fit") : nil
        let result = replayer.fit(
            id: Array(stream.utf8), epochs: epochs, savedAt: Date().timeIntervalSince1970,
            progress: progress.map { bar in { bar.update($0, of: $1) } })
        progress?.finish()
        let bytes = result.record.encoded()
        do throws(CheckpointCommandError) { try RecordFile.write(bytes, to: out, replace: force) } catch {
            throw failure("fit", error)
        }
        let text = result.text(output: out, bytes: bytes.count)
        if out == "-" { FileHandle.standardError.write(Data(text.utf8)) } else { print(text, terminator: "") }
    }
}
