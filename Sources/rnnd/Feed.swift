import ArgumentParser
import Foundation
import RNNDaemon
import RNNTools
import RNNWire
import Synchronization

struct Feed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish a CSV file's rows as samples, e.g. to a running rnnd.",
        discussion: """
            Each row becomes one sample of the stream --topic (docs/protocol.md), with its time \
            when the file has a time axis (its first column holds timestamps, or Unix seconds \
            under a time's name; or --time-column). The columns are those of rnnd replay; a \
            missing cell is sent as null (NaN in binary), which the daemon carries forward as \
            replay does, so a replay of the file gives the forecasts the daemon \
            publishes. The first sample waits for a subscriber of the topic (no sample is \
            lost to a late join); then rows go out as fast as the subscriber takes them, at \
            --rate, or spaced by their timestamps (--realtime).
            """
    )

    @Argument(help: ArgumentHelp("The CSV file.", valueName: "file.csv"))
    var file: String

    @Option(name: .customLong("pub"), help: ArgumentHelp(
        "Where to publish: >tcp://host:port connects, @tcp://addr:port binds; the default is rnnd run's input.",
        valueName: "endpoint"))
    var endpoint = ">tcp://127.0.0.1:5556"

    @Option(help: ArgumentHelp("The stream id of every sample.", valueName: "id"))
    var topic: String

    @Option(help: ArgumentHelp("Samples per second (default: as fast as the subscriber takes them).", valueName: "n"))
    var rate: Double?

    @Flag(help: "Space the samples by their timestamps (see --speedup).")
    var realtime = false

    @Option(help: ArgumentHelp("With --realtime: play this many times faster.", valueName: "x"))
    var speedup = 1.0

    @Option(help: ArgumentHelp("Columns to send, comma-separated (default: every numeric column).", valueName: "a,b"))
    var columns: String?

    @Option(name: .customLong("time-column"), help: ArgumentHelp(
        "The time axis: a column's name, or none (default: the first column, when it holds timestamps, or Unix seconds under a time's name such as time or timestamp).",
        valueName: "name"))
    var timeColumn: String?

    @Option(help: "Payload format: json or binary.")
    var format: FeedSettings.Format = .json

    @Option(help: ArgumentHelp("Send at most this many samples.", valueName: "n"))
    var limit: Int?

    @Option(name: .customLong("wait-seconds"), help: ArgumentHelp(
        "How long to wait for a subscriber of the topic before giving up.", valueName: "seconds"))
    var waitSeconds = 10.0

    @OptionGroup var curve: CurveClientOptions

    mutating func validate() throws {
        if topic.isEmpty || topic.utf8.count > WireLimits.maxTopicBytes {
            throw ValidationError("--topic must be 1 to \(WireLimits.maxTopicBytes) bytes")
        }
        if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be a positive number") }
        if rate != nil && realtime { throw ValidationError("--rate and --realtime exclude each other") }
        if !(speedup > 0 && speedup.isFinite) { throw ValidationError("--speedup must be a positive number") }
        if speedup != 1, !realtime { throw ValidationError("--speedup goes with --realtime") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if !(waitSeconds >= 0 && waitSeconds.isFinite) { throw ValidationError("--wait-seconds must be 0 or more") }
        if let problem = endpointProblem(endpoint) { throw ValidationError("--pub \(problem)") }
    }

    func fail(_ message: String, _ code: Int32) -> ExitCode {
        FileHandle.standardError.write(Data("rnnd feed: \(message)\n".utf8))
        return ExitCode(code)
    }

    func run() throws {
        let samples: CSVSamples
        do throws(CSVError) {
            samples = try CSVTable(path: file, timeColumn: timeColumn.map(CSVTable.TimeColumn.init(flag:)) ?? .automatic).samples(columns: columns.map(Replay.names))
        } catch {
            throw fail(error.description, error.exitCode)
        }
        guard samples.count > 0 else { throw fail("\(file): no row to send", 65) }
        if realtime && !samples.hasTime {
            throw fail("\(file): --realtime needs a time axis (a first column of timestamps)", 64)
        }
        if samples.width > Int(UInt16.max) { throw fail("\(file): more than \(UInt16.max) columns", 64) }
        var settings = FeedSettings(topic: topic)
        settings.endpoint = endpoint
        settings.format = format
        settings.limit = limit
        settings.waitSeconds = waitSeconds
        settings.curve = try curve.load(command: "feed")
        settings.pace = if let rate { .rate(rate) } else if realtime { .realtime(speedup: speedup) } else { .asFastAsPossible }

        installStopHandlers()
        let count = min(samples.count, limit ?? .max)
        FileHandle.standardError.write(Data(
            "rnnd feed: \(count) samples of \(samples.columns.joined(separator: ",")) from \(file) as '\(topic)' to \(endpoint); waiting for a subscriber\n".utf8))
        do throws(FeedError) {
            let result = try Feeder(settings: settings).run(samples) { stopRequested.load(ordering: .relaxed) }
            let rate = result.seconds > 0 ? " (\(Int(Double(result.sent) / result.seconds)) samples/s)" : ""
            print("rnnd feed: sent \(result.sent) samples to '\(topic)' in \(String(format: "%.3f", result.seconds)) s\(rate)")
        } catch {
            if case .interrupted(let sent) = error {
                print("rnnd feed: interrupted; sent \(sent) samples to '\(topic)'")
            }
            throw fail(error.description, error.exitCode)
        }
    }
}

extension FeedSettings.Format: ExpressibleByArgument {}

/// Set by SIGINT and SIGTERM for the commands that stop cleanly on them.
let stopRequested = Atomic<Bool>(false)

/// SIGINT and SIGTERM set ``stopRequested`` instead of killing the process. They are unblocked
/// too: a parent may have started us with them blocked, and the mask is inherited.
func installStopHandlers() {
    var signals = sigset_t()
    sigemptyset(&signals)
    for signal in [SIGINT, SIGTERM] {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in stopRequested.store(true, ordering: .relaxed) }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(signal, &action, nil)
        sigaddset(&signals, signal)
    }
    pthread_sigmask(SIG_UNBLOCK, &signals, nil)
}

/// What is wrong with a CZMQ-style endpoint for a tool's socket, or nil.
func endpointProblem(_ text: String) -> String? {
    guard let first = text.first, first == "@" || first == ">" else {
        return "\"\(text)\": an endpoint starts with '@' (bind) or '>' (connect), e.g. >tcp://127.0.0.1:5556"
    }
    guard text.dropFirst().contains("://") else {
        return "\"\(text)\": expected tcp://host:port or ipc://path after '\(first)'"
    }
    return nil
}
