import ArgumentParser
import Foundation
import RNNDaemon
import RNNTools
import Synchronization

struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print forecasts as they arrive, one line each.",
        discussion: """
            Each line: the time of the latest sample (ISO 8601, UTC; - when the sample had \
            none), the stream, seq, the forecast (one row per step ahead), then every other key \
            of the message (updates, and bands or anomaly scores when the daemon adds them). \
            --json prints the messages as they came. Stops after --count forecasts, or on \
            SIGINT/SIGTERM, with exit status 0.
            """
    )

    @Option(name: .customLong("sub"), help: ArgumentHelp(
        "Where the forecasts are: >tcp://host:port connects, @tcp://addr:port binds; the default is rnnd run's output.",
        valueName: "endpoint"))
    var endpoint = ">tcp://127.0.0.1:5557"

    @Option(help: ArgumentHelp("Only streams whose topic starts with this prefix (default: every stream).", valueName: "prefix"))
    var topic = ""

    @Option(help: ArgumentHelp("Exit after this many forecasts.", valueName: "n"))
    var count: Int?

    @Flag(help: "Print each forecast's JSON payload as it came.")
    var json = false

    @OptionGroup var curve: CurveClientOptions

    mutating func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let problem = endpointProblem(endpoint) { throw ValidationError("--sub \(problem)") }
    }

    func run() throws {
        let keys = try curve.load(command: "tail")
        installStopHandlers()
        do {
            _ = try tailForecasts(
                endpoint: endpoint, topic: topic, count: count, curve: keys,
                shouldStop: { stopRequested.load(ordering: .relaxed) }
            ) { topic, payload in
                let line = json ? String(decoding: payload, as: UTF8.self) : ForecastLine.format(topic: topic, payload: payload)
                // One write per line, unbuffered, so a pipe sees each forecast as it comes.
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        } catch {
            FileHandle.standardError.write(Data("rnnd tail: \(error)\n".utf8))
            throw ExitCode(69)
        }
    }
}
