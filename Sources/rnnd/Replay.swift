import ArgumentParser
import Foundation
import RNNCore
import RNNDaemon
import RNNState
import RNNTools

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream a CSV file through a stream's model offline and score it against persistence.",
        discussion: """
            Every row is a sample: predict (the forecast is scored and recorded), then learn, as \
            the daemon's worker does, with the model `rnnd run` would build from the same \
            --config file and flags. Prints MSE and MAE of the model and of persistence (the \
            latest value) overall, per target and per horizon step. The first column is the \
            time axis when it holds timestamps; the others are inputs when numeric. A missing \
            cell takes its column's previous value. docs/replay.md has the details.
            """
    )

    @Argument(help: ArgumentHelp("The CSV file (a header row, then one row per sample).", valueName: "file.csv"))
    var file: String

    @Option(help: ArgumentHelp("Input columns, comma-separated (default: every numeric column).", valueName: "a,b"))
    var columns: String?

    @Option(help: ArgumentHelp("Columns to forecast, among the inputs (default: every input).", valueName: "c"))
    var targets: String?

    @Option(name: .customLong("time-column"), help: ArgumentHelp(
        "The time axis: a column's name, or none (default: the first column, when it holds timestamps, or Unix seconds under a time's name such as time or timestamp).",
        valueName: "name"))
    var timeColumn: String?

    @Option(name: .customLong("config"), help: ArgumentHelp("TOML configuration file, as for rnnd run.", valueName: "file"))
    var configFile: String?

    @OptionGroup var model: OptionalModelOptions

    @Option(name: .customLong("warmup-rows"), help: ArgumentHelp(
        "Train on the first N samples first (--warmup-epochs passes); they are not scored.", valueName: "N"))
    var warmupRows = 0

    @Option(name: .customLong("warmup-epochs"), help: ArgumentHelp("Passes over the warm-up samples.", valueName: "E"))
    var warmupEpochs = 1

    @Option(help: ArgumentHelp(
        "Start from this stream record (rnnd fit's or rnnd checkpoint export's) instead of a new model; its shape must match.",
        valueName: "model.rnndckpt"))
    var from: String?

    @Option(help: ArgumentHelp("Write every scored forecast: row,horizon,<targets>, each target's band (<target>_lower,<target>_upper), the row's anomaly score.", valueName: "out.csv"))
    var predictions: String?

    @Option(help: ArgumentHelp("Write the figures as JSON.", valueName: "out.json"))
    var metrics: String?

    @Option(help: ArgumentHelp("Draw actual against the one-step forecast, its band and the anomalies as SVG.", valueName: "out.svg"))
    var plot: String?

    @Option(name: .customLong("plot-target"), help: ArgumentHelp("The target to plot (default: the first).", valueName: "name"))
    var plotTarget: String?

    @Option(name: .customLong("plot-rows"), help: ArgumentHelp(
        "Data rows A up to B (excluded) to plot (default: the last 500 scored).", valueName: "A:B"))
    var plotRows: String?

    @Option(name: .customLong("plot-threshold"), help: ArgumentHelp(
        "The anomaly score from which a sample is marked as an anomaly on the plot, 0 to 1 (default: \(Replayer.defaultAnomalyThreshold)).",
        valueName: "X"))
    var plotThreshold: Double?

    var columnList: [String]? { columns.map(Self.names) }
    var targetList: [String]? { targets.map(Self.names) }

    static func names(_ list: String) -> [String] {
        list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    func resolve() throws -> DaemonConfiguration {
        try resolveConfiguration(command: "replay", file: configFile) { model.apply(to: &$0.model) }
    }

    /// `A:B`, `A:` or `:B` as a half-open range of data rows.
    static func rowRange(_ text: String) -> (Int?, Int?)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let a = parts[0].isEmpty ? nil : Int(parts[0]), b = parts[1].isEmpty ? nil : Int(parts[1])
        if !parts[0].isEmpty && a == nil || !parts[1].isEmpty && b == nil { return nil }
        if let a, let b, b <= a { return nil }
        return (a, b)
    }

    mutating func validate() throws {
        _ = try resolve()
        guard warmupRows >= 0 else { throw ValidationError("--warmup-rows must be 0 or more") }
        guard warmupEpochs >= 1 else { throw ValidationError("--warmup-epochs must be 1 or more") }
        if let plotRows, Self.rowRange(plotRows) == nil {
            throw ValidationError("--plot-rows takes A:B (data rows A up to B, B > A), A: or :B, not '\(plotRows)'")
        }
        if let plotThreshold, !Replayer.isAnomalyThreshold(plotThreshold) {
            throw ValidationError("--plot-threshold takes an anomaly score from 0 to 1, not \(plotThreshold)")
        }
        if plot == nil, plotTarget != nil || plotRows != nil || plotThreshold != nil {
            throw ValidationError("--plot-target, --plot-rows and --plot-threshold go with --plot")
        }
        if let list = columnList, list.contains(where: \.isEmpty) { throw ValidationError("--columns has an empty name") }
        if let list = targetList, list.contains(where: \.isEmpty) { throw ValidationError("--targets has an empty name") }
    }

    func fail(_ message: String, _ code: Int32) -> ExitCode {
        FileHandle.standardError.write(Data("rnnd replay: \(message)\n".utf8))
        return ExitCode(code)
    }

    func run() throws {
        let configuration = try resolve()
        let table: CSVTable
        do throws(CSVError) {
            table = try CSVTable(path: file, timeColumn: timeColumn.map(CSVTable.TimeColumn.init(flag:)) ?? .automatic)
        } catch {
            throw fail(error.description, error.exitCode)
        }
        var record: StreamRecord?
        if let from {
            do throws(CheckpointCommandError) {
                let bytes = try RecordFile.read(from)
                do throws(RecordProblem) { record = try StreamRecord.decode(bytes) } catch {
                    throw CheckpointCommandError("--from \(from): \(error.description)", exitCode: 65)
                }
            } catch {
                throw fail(error.message, error.exitCode)
            }
        }
        let settings = ReplaySettings(
            columns: columnList, targets: targetList, warmupRows: warmupRows, warmupEpochs: warmupEpochs,
            previousTime: record?.lastTimestamp)
        let replayer: Replayer
        do throws(ReplayError) {
            replayer = try Replayer(table: table, model: configuration.model, settings: settings)
        } catch {
            throw fail(error.message, error.exitCode)
        }
        // The record's forecaster, under this replay's model: its shape must be the same.
        var start: Forecaster?
        if let record, let from {
            do throws(RecordProblem) {
                start = try record.forecaster(current: replayer.model)
            } catch {
                if case .modelChanged(let changes) = error {
                    throw fail("--from \(from): the record's model differs from this replay's: \(changes.joined(separator: ", ")); "
                        + "replay with the flags it was trained with (\(modelFlags(record.model)))"
                        + (record.model.targets.isEmpty ? "" : " and the same --targets"), 64)
                }
                throw fail("--from \(from): \(error.description)", 65)
            }
        }

        // Everything that can be refused is refused before the replay starts.
        var plotTargetIndex = 0
        if let plotTarget {
            guard let j = replayer.targetNames.firstIndex(of: plotTarget) else {
                throw fail("--plot-target: '\(plotTarget)' is not a target (\(replayer.targetNames.joined(separator: ", ")))", 64)
            }
            plotTargetIndex = j
        }
        let scored = replayer.scoredRows
        var plotRange = max(0, scored.count - 500)..<scored.count
        if let plotRows, let (a, b) = Self.rowRange(plotRows) {
            let lower = a.map { a in scored.firstIndex { $0 >= a } ?? scored.endIndex } ?? scored.startIndex
            let upper = b.map { b in scored.firstIndex { $0 >= b } ?? scored.endIndex } ?? scored.endIndex
            plotRange = (lower - scored.startIndex)..<(max(lower, upper) - scored.startIndex)
            guard plotRange.count >= 2 else {
                throw fail("--plot-rows \(plotRows): fewer than 2 scored rows in that range (scored rows: "
                    + "\(scored.first ?? 0) to \(scored.last ?? 0))", 64)
            }
        }
        let predictionsFile = try predictions.map { try OutputFile($0, command: "replay") }
        if let metrics { try OutputFile.checkWritable(metrics, command: "replay") }
        if let plot { try OutputFile.checkWritable(plot, command: "replay") }

        predictionsFile?.write(replayer.predictionsHeader)
        let progress = isatty(STDERR_FILENO) == 1 ? ProgressBar(label: "replay") : nil
        var report = replayer.run(
            from: start,
            prediction: predictionsFile.map { out in { out.write(Replayer.predictionLine($0)) } },
            progress: progress.map { bar in { bar.update($0, of: $1) } })
        progress?.finish()
        try predictionsFile?.close()
        if let record, let from {
            let learned = record.stateSummary.map { "\($0.counters.samples) samples learned, " } ?? ""
            let last = record.lastTimestamp.map { ", last t \(Timestamp.iso8601($0))" } ?? ""
            report.startedFrom = (from, "stream '\(record.printableID)', \(learned)seq \(record.seq)\(last)")
        }

        let span = replayer.timeSpan
        print(report.table(firstTime: span?.first, lastTime: span?.last), terminator: "")
        if let metrics {
            try OutputFile.write(report.json(firstTime: span?.first, lastTime: span?.last), to: metrics, command: "replay")
        }
        if let plot {
            let svg = replayer.plot(
                target: plotTargetIndex, range: plotRange, threshold: plotThreshold ?? Replayer.defaultAnomalyThreshold)
            try OutputFile.write(svg, to: plot, command: "replay")
        }
        var written: [String] = []
        if let predictions { written.append("predictions \(predictions)") }
        if let metrics { written.append("metrics \(metrics)") }
        if let plot { written.append("plot \(plot)") }
        if !written.isEmpty { print("  wrote " + written.joined(separator: ", ")) }
    }
}

/// A text file written through stdio's buffer.
final class OutputFile {
    let path: String
    let command: String
    private var handle: UnsafeMutablePointer<FILE>?

    init(_ path: String, command: String) throws {
        self.path = path
        self.command = command
        guard let handle = fopen(path, "w") else {
            throw Self.failure(path, command, String(cString: strerror(errno)))
        }
        self.handle = handle
    }

    deinit { if let handle { fclose(handle) } }

    func write(_ text: String) {
        guard let handle else { return }
        fputs(text, handle)
    }

    func close() throws {
        guard let h = handle else { return }
        handle = nil
        let failed = ferror(h) != 0
        if fclose(h) != 0 || failed { throw Self.failure(path, command, String(cString: strerror(errno))) }
    }

    static func write(_ text: String, to path: String, command: String) throws {
        let file = try OutputFile(path, command: command)
        file.write(text)
        try file.close()
    }

    /// Fails now rather than after a long replay when `path` cannot be created (an existing
    /// file is left as it is until it is written).
    static func checkWritable(_ path: String, command: String) throws {
        let exists = FileManager.default.fileExists(atPath: path)
        guard let handle = fopen(path, "a") else {
            throw failure(path, command, String(cString: strerror(errno)))
        }
        fclose(handle)
        if !exists { unlink(path) }
    }

    static func failure(_ path: String, _ command: String, _ reason: String) -> ExitCode {
        FileHandle.standardError.write(Data("rnnd \(command): \(path): cannot write: \(reason)\n".utf8))
        return ExitCode(73)  // EX_CANTCREAT
    }
}

/// A progress bar on stderr, redrawn at most ten times a second.
final class ProgressBar {
    let label: String
    let clock = ContinuousClock()
    let started: ContinuousClock.Instant
    var drawn: ContinuousClock.Instant?

    init(label: String) {
        self.label = label
        started = clock.now
    }

    func update(_ done: Int, of total: Int) {
        let now = clock.now
        if let drawn, now - drawn < .milliseconds(100), done < total { return }
        drawn = now
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let rate = seconds > 0 ? Int(Double(done) / seconds) : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let text = "\r\(label) [\(bar)] \(Int(fraction * 100))% \(done)/\(total) steps, \(rate)/s "
        FileHandle.standardError.write(Data(text.utf8))
    }

    func finish() {
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
