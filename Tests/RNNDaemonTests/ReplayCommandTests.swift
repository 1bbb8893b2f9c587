import Foundation
import FoundationXML
import RNNCore
@testable import RNNTools
import Synchronization
import Testing
import ZeroMQ
#if canImport(FoundationXML)
#endif

/// `rnnd replay`, `rnnd feed` and `rnnd tail` as a user runs them: the real binary on the bundled
/// data, into a real `rnnd run` over tcp loopback; the replay's forecasts equal to the daemon's
/// for the same rows; and `rnnd-nab detect`'s replays written in NAB's layout.
@Suite(.timeLimit(.minutes(1)))
struct ReplayCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let taxi = root.appendingPathComponent("data/nab/nyc_taxi.csv").path

    final class Output: Sendable {
        let text = Mutex<String>("")
    }

    enum CommandError: Error { case timeout(String) }

    /// The real `rnnd` binary running one subcommand, its stdout and stderr collected.
    final class Command: @unchecked Sendable {
        let process = Process()
        let out = Output(), err = Output()
        /// A directory the command works in (a daemon's state), removed once it has ended.
        let owned: String?

        init(_ arguments: [String], owning owned: String? = nil) throws {
            self.owned = owned
            process.executableURL = try ReplayCommandTests.binary()
            process.arguments = arguments
            process.currentDirectoryURL = ReplayCommandTests.root
            for (pipe, sink) in [(Pipe(), out), (Pipe(), err)] {
                if sink === out { process.standardOutput = pipe } else { process.standardError = pipe }
                pipe.fileHandleForReading.readabilityHandler = { handle in
                    let data = handle.availableData
                    if !data.isEmpty { sink.text.withLock { $0 += String(decoding: data, as: UTF8.self) } }
                }
            }
            try process.run()
        }

        var stdout: String { out.text.withLock { $0 } }
        var stderr: String { err.text.withLock { $0 } }

        /// The exit status; the process is killed when it runs longer than `seconds`.
        func wait(seconds: Double = 60) throws -> Int32 {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                throw CommandError.timeout("\(process.arguments ?? []) still running after \(seconds) s\nstdout: \(stdout)\nstderr: \(stderr)")
            }
            Thread.sleep(forTimeInterval: 0.05)  // the last output
            return process.terminationStatus
        }

        /// Waits until stderr has a line containing `marker`; returns what follows it on that line.
        func await(_ marker: String, seconds: Double = 10) throws -> String {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let line = stderr.split(separator: "\n").first(where: { $0.contains(marker) }) {
                    return String(line[line.range(of: marker)!.upperBound...]).trimmingCharacters(in: .whitespaces)
                }
                if !process.isRunning { break }
                Thread.sleep(forTimeInterval: 0.02)
            }
            throw CommandError.timeout("no '\(marker)' on stderr:\n\(stderr)")
        }

        func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

        /// Waits until the process catches `signal` (its bit in /proc/PID/status's SigCgt).
        func awaitHandler(for signal: Int32, seconds: Double = 10) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline && process.isRunning {
                let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
                if let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
                    let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16),
                    mask & (1 << UInt64(signal - 1)) != 0
                {
                    return
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            throw CommandError.timeout("no handler of signal \(signal) installed")
        }

        deinit { ReplayCommandTests.end(process, removing: owned) }
    }

    /// Kills `process` if it is still running (a test failed, or left it), waits for it, then
    /// removes `directory`, the state it worked in (nil: none of its own).
    static func end(_ process: Process, removing directory: String?) {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// The real `rnnd` binary, built beside the tests.
    static func binary() throws -> URL {
        let next = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("rnnd")
        let candidates = [next, URL(fileURLWithPath: FileManager.default.currentDirectoryPath + "/.build/debug/rnnd")]
        return try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }, "rnnd binary not built")
    }

    static func run(_ arguments: [String], seconds: Double = 60) throws -> (status: Int32, stdout: String, stderr: String) {
        let command = try Command(arguments)
        let status = try command.wait(seconds: seconds)
        return (status, command.stdout, command.stderr)
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-replay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The `value` column of nyc_taxi.csv, read here without the reader under test.
    static func taxiValues() throws -> [Double] {
        let lines = try String(contentsOfFile: taxi, encoding: .utf8).split(whereSeparator: \.isNewline).dropFirst()
        return try lines.map { try #require(Double($0.split(separator: ",")[1])) }
    }

    /// One line of a predictions file, its numbers as text: the forecast of each target, the
    /// band's bounds (lower and upper per target, empty without a band) and the anomaly score.
    struct PredictionLine {
        var row: Int
        var horizon: Int
        var values: [String]
        var bounds: [String]
        var anomaly: String
        /// Each target's score, with several targets (empty fields where there is none).
        var anomalies: [String] = []
    }

    /// A predictions file: header, then its lines.
    static func predictions(_ path: String) throws -> (header: String, lines: [PredictionLine]) {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasSuffix("\n"))
        var lines = text.split(separator: "\n").map(String.init)
        let header = lines.removeFirst()
        let perTarget = header.split(separator: ",").filter { $0.hasSuffix("_anomaly") }.count
        return (header, try lines.map { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let k = (fields.count - 3 - perTarget) / 3
            try #require(fields.count == 3 * k + 3 + perTarget, "row, horizon, k values, 2k bounds, anomaly, k scores with k > 1: \(line)")
            return PredictionLine(
                row: try #require(Int(fields[0])), horizon: try #require(Int(fields[1])),
                values: Array(fields[2..<(2 + k)]), bounds: Array(fields[(2 + k)..<(2 + 3 * k)]), anomaly: fields[2 + 3 * k],
                anomalies: Array(fields[(3 + 3 * k)...]))
        })
    }

    // MARK: replay

    @Test func replayOfTheBundledTaxiDataWritesItsFiles() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let predictions = dir.appendingPathComponent("p.csv").path
        let metrics = dir.appendingPathComponent("m.json").path
        let plot = dir.appendingPathComponent("p.svg").path
        let result = try Self.run([
            "replay", "data/nab/nyc_taxi.csv", "--model", "elman", "--hidden", "8", "--window", "8",
            "--predictions", predictions, "--metrics", metrics, "--plot", plot,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("MSE model") && result.stdout.contains("samples/s"))
        #expect(result.stderr.isEmpty, "no progress bar when stderr is not a terminal: \(result.stderr)")

        let values = try Self.taxiValues()
        #expect(values.count == 10_320)
        let (header, lines) = try Self.predictions(predictions)
        #expect(header == "row,horizon,value,value_lower,value_upper,anomaly")
        #expect(lines.count == 10_319)
        #expect(lines.map(\.row) == Array(1..<10_320))
        var model = (0.0, 0.0), persistence = (0.0, 0.0), banded = 0, covered = 0
        for line in lines {
            #expect(line.horizon == 1 && line.values.count == 1)
            let f = try #require(Float(line.values[0]))
            #expect(f.description == line.values[0], "shortest round-trip text")
            let e = Double(f) - values[line.row], p = values[line.row - 1] - values[line.row]
            model.0 += e * e
            model.1 += abs(e)
            persistence.0 += p * p
            persistence.1 += abs(p)
            if let lower = Float(line.bounds[0]), let upper = Float(line.bounds[1]) {
                #expect(lower <= f && f <= upper, "row \(line.row): the band holds its forecast")
                banded += 1
                if Double(lower) <= values[line.row] && values[line.row] <= Double(upper) { covered += 1 }
            }
            // The anomaly score: none during the warm-up, then in [0, 1].
            if line.row < Forecaster.anomalyWarmup {
                #expect(line.anomaly.isEmpty, "row \(line.row)")
            } else if let a = Float(line.anomaly) {
                #expect(a >= 0 && a <= 1)
            }
        }
        let n = Double(lines.count)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: metrics))) as? [String: Any])
        let overall = try #require(json["overall"] as? [String: Any])
        let m = try #require(overall["model"] as? [String: Double]), p = try #require(overall["persistence"] as? [String: Double])
        #expect(overall["count"] as? Int == 10_319)
        // Within a few units in the last place, not equal: JSONSerialization on Linux parses some
        // numbers one ulp off (1186071.2635499951 reads as …954), though replay wrote them exactly.
        func close(_ read: Double?, _ recomputed: Double) -> Bool {
            guard let read else { return false }
            return abs(read - recomputed) <= 4 * recomputed.ulp
        }
        #expect(close(p["mse"], persistence.0 / n) && close(p["mae"], persistence.1 / n))
        #expect(close(m["mse"], model.0 / n) && close(m["mae"], model.1 / n))
        let bands = try #require(overall["bands"] as? [String: Any])
        #expect(bands["count"] as? Int == banded && banded > 10_000)
        #expect(abs((bands["coverage"] as? Double ?? -1) - Double(covered) / Double(banded)) < 1e-12)
        #expect(abs(Double(covered) / Double(banded) - 0.9) < 0.02, "90% bands: \(covered) of \(banded)")
        #expect(json["rows"] as? Int == 10_320 && json["samples"] as? Int == 10_320)
        #expect((json["per_target"] as? [[String: Any]])?.first?["target"] as? String == "value")
        #expect((json["per_horizon"] as? [[String: Any]])?.first?["horizon"] as? Int == 1)
        #expect(json["time_column"] as? String == "timestamp")

        // The chart is well-formed XML with its parts.
        let svg = try Data(contentsOf: URL(fileURLWithPath: plot))
        let parser = XMLParser(data: svg)
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        let text = String(decoding: svg, as: UTF8.self)
        #expect(text.contains("data rows 9820 to 10319"), "the last 500 rows by default")
        #expect(text.contains("forecast (h=1)") && text.contains("actual"))
        #expect(text.contains("<polygon class=\"band\"") && text.contains("time (UTC)") && text.contains("class=\"threshold\""))
    }

    @Test func badInputsAreRefusedWithTheFileAndLine() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ragged = dir.appendingPathComponent("ragged.csv")
        try Data("time,a,b\n2016-07-01 00:00:00,1,2\n2016-07-01 01:00:00,3\n".utf8).write(to: ragged)
        let r = try Self.run(["replay", ragged.path])
        #expect(r.status == 65)
        #expect(r.stderr.contains("ragged.csv:3: the row has 2 fields; the header (line 1) has 3"), "\(r.stderr)")

        let unknown = try Self.run(["replay", Self.taxi, "--columns", "valeu"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("no column named 'valeu'") && unknown.stderr.contains("did you mean 'value'"), "\(unknown.stderr)")

        let target = try Self.run(["replay", Self.taxi, "--targets", "speed"])
        #expect(target.status == 64 && target.stderr.contains("'speed'"), "\(target.stderr)")

        let plot = dir.appendingPathComponent("p.svg").path
        for bad in ["1.5", "-0.1", "nan"] {  // (a negative number after `=`, else it reads as a flag)
            let threshold = try Self.run(["replay", Self.taxi, "--plot", plot, "--plot-threshold=\(bad)"])
            #expect(threshold.status == 64 && threshold.stderr.contains("--plot-threshold takes an anomaly score from 0 to 1"),
                "\(bad): \(threshold.stderr)")
        }
        let alone = try Self.run(["replay", Self.taxi, "--plot-threshold", "0.7"])
        #expect(alone.status == 64 && alone.stderr.contains("--plot-target, --plot-rows and --plot-threshold go with --plot"), "\(alone.stderr)")

        let experts = try Self.run(["replay", Self.taxi, "--experts", "persistence,bogus"])
        #expect(experts.status == 64 && experts.stderr.contains("no expert 'bogus'") && experts.stderr.contains("seasonal"), "\(experts.stderr)")
        // identity is the output head's activation, not a cell's: refused as the file refuses it.
        let activation = try Self.run(["replay", Self.taxi, "--elman-activation", "identity"])
        #expect(activation.status == 64 && activation.stderr.contains("'tanh', 'relu' or 'sigmoid'"), "\(activation.stderr)")
        let lookback = try Self.run(["replay", Self.taxi, "--direct-lookback", "5000"])
        #expect(lookback.status == 64 && lookback.stderr.contains("model.direct_lookback (--direct-lookback)"), "\(lookback.stderr)")

        let missing = try Self.run(["replay", dir.appendingPathComponent("none.csv").path])
        #expect(missing.status == 66 && missing.stderr.contains("No such file"), "\(missing.stderr)")

        let feed = try Self.run(["feed", ragged.path, "--topic", "x"])
        #expect(feed.status == 65 && feed.stderr.contains("ragged.csv:3:"), "\(feed.stderr)")
    }

    // MARK: feed, run, tail

    /// A running `rnnd run` on free ports; its endpoints as the log gives them.
    struct Daemon {
        let command: Command
        let samplesIn: String
        let forecastsOut: String

        init(_ model: [String]) throws {
            // A state directory of its own (each daemon locks its directory), removed with it.
            let state = ServiceEndToEndTests.temporaryDirectory()
            command = try Command(
                [
                    "run", "--sub", "@tcp://127.0.0.1:*", "--pub", "@tcp://127.0.0.1:*", "--workers", "1", "--log-level", "info",
                    "--state-dir", state,
                ] + model, owning: state)
            samplesIn = try command.await("samples in:")
            forecastsOut = try command.await("forecasts out:")
            _ = try command.await("ready")
        }

        func stop() throws -> Int32 {
            command.signal(SIGTERM)
            return try command.wait(seconds: 20)
        }
    }

    @Test func feedIntoTheDaemonAndTailItsForecasts() throws {
        let daemon = try Daemon(["--model", "elman", "--hidden", "4", "--window", "4"])
        let tail = try Command(["tail", "--sub", ">" + daemon.forecastsOut, "--topic", "taxi", "--count", "20"])
        let raw = try Command(["tail", "--sub", ">" + daemon.forecastsOut, "--count", "5", "--json"])
        // Running, then connected: their subscriptions reach the daemon (slow joiner).
        try tail.awaitHandler(for: SIGINT)
        try raw.awaitHandler(for: SIGINT)
        Thread.sleep(forTimeInterval: 0.3)
        // 300 samples over a second: the tails need 20 and 5 of them, whenever they joined.
        let feed = try Self.run([
            "feed", "data/nab/nyc_taxi.csv", "--pub", ">" + daemon.samplesIn, "--topic", "taxi", "--limit", "300", "--rate", "300",
        ])
        #expect(feed.status == 0, "\(feed.stderr)")
        #expect(feed.stdout.contains("sent 300 samples"), "\(feed.stdout)")

        #expect(try tail.wait(seconds: 30) == 0, "\(tail.stderr)")
        let lines = tail.stdout.split(separator: "\n")
        #expect(lines.count == 20, "\(tail.stdout)")
        var seqs: [Int] = []
        for line in lines {
            let parts = line.components(separatedBy: "  ")
            #expect(parts.count >= 5, "\(line)")
            #expect(parts[0].hasPrefix("2014-07-") && parts[0].hasSuffix("Z"), "\(line)")
            #expect(parts[1] == "taxi")
            #expect(parts[3].hasPrefix("forecast=[") && parts.contains { $0.hasPrefix("updates=") }, "\(line)")
            seqs.append(Int(parts[2].dropFirst(4)) ?? -1)
        }
        #expect(seqs == Array((seqs.first ?? 0)..<((seqs.first ?? 0) + 20)), "consecutive: \(seqs)")

        #expect(try raw.wait(seconds: 30) == 0, "\(raw.stderr)")
        let payloads = raw.stdout.split(separator: "\n")
        #expect(payloads.count == 5)
        for payload in payloads {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any])
            #expect(object["stream"] as? String == "taxi" && object["forecast"] is [[Double]])
        }
        #expect(try daemon.stop() == 0)
        #expect(daemon.command.stderr.contains("learned=300"), "every sample reached the daemon: \(daemon.command.stderr)")
    }

    @Test func tailStopsCleanlyOnSIGINTAndFeedWithoutSubscriberGivesUp() throws {
        for signal in [SIGINT, SIGTERM] {
            let tail = try Command(["tail", "--sub", ">tcp://127.0.0.1:9"])
            try tail.awaitHandler(for: signal)
            tail.signal(signal)
            #expect(try tail.wait(seconds: 10) == 0, "signal \(signal)")
        }

        let feed = try Self.run(["feed", Self.taxi, "--pub", ">tcp://127.0.0.1:9", "--topic", "x", "--wait-seconds", "0.5"])
        #expect(feed.status == 69)
        #expect(feed.stderr.contains("no subscriber of this topic within 0.5 s"), "\(feed.stderr)")
    }

    /// The forecasts of `payload` (a daemon message) as the text of its numbers, one array per step.
    static func forecastTexts(_ payload: [UInt8]) throws -> [[String]] {
        try #require(try rowTexts(payload, key: "forecast"))
    }

    /// The rows of `key` ("forecast", "lower" or "upper") in `payload` as the text of their
    /// numbers, a JSON null as ""; nil when the whole value is null.
    static func rowTexts(_ payload: [UInt8], key: String) throws -> [[String]]? {
        let text = String(decoding: payload, as: UTF8.self)
        let start = try #require(text.range(of: "\"\(key)\":")).upperBound
        if text[start...].hasPrefix("null") { return nil }
        #expect(text[start...].hasPrefix("[["))
        let from = text.index(start, offsetBy: 2)
        let end = try #require(text[from...].range(of: "]]")).lowerBound
        return text[from..<end].components(separatedBy: "],[").map { $0.components(separatedBy: ",").map { $0 == "null" ? "" : $0 } }
    }

    /// The anomaly score of `payload` as text, "" for null.
    static func anomalyText(_ payload: [UInt8]) throws -> String {
        let text = String(decoding: payload, as: UTF8.self)
        let start = try #require(text.range(of: "\"anomaly\":")).upperBound
        let end = try #require(text[start...].firstIndex(of: ","))
        let value = String(text[start..<end])
        return value == "null" ? "" : value
    }

    /// The texts of a forecast's `anomalies` array, as published; nil when it has none.
    static func anomaliesTexts(_ payload: [UInt8]) throws -> [String]? {
        let text = String(decoding: payload, as: UTF8.self)
        guard let start = text.range(of: "\"anomalies\":[")?.upperBound else { return nil }
        let end = try #require(text[start...].firstIndex(of: "]"))
        return text[start..<end].split(separator: ",").map(String.init)
    }

    @Test func replayForecastsEqualTheDaemonsForTheSameRows() throws {
        // A file with missing cells (carried forward by both, from the rows each accepted), a
        // missing cell with nothing to carry (row 0) and a row with every cell missing (row 100),
        // both refused by both, a step back in time (row 50, refused by both), and a temperature
        // frozen for 50 rows (320 to 369), stuck for both from its 31st equal value.
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("sensor.csv")
        var csv = "time,temp,load\n"
        let rows = 400
        let missingTemp: Set = [0, 30, 100, 200], missingLoad: Set = [10, 60, 61, 100, 200 + 1]
        let frozen = 320..<370
        for r in 0..<rows {
            let t = r == 50 ? 1_700_000_000 + 3600 * 10 : 1_700_000_000 + 3600 * r
            var temp = String(format: "%.9f", 21.5 + 3 * sin(Double(r) * 0.37) + Double(r % 5) * 0.013)
            if frozen.contains(r) { temp = "25.0" }
            if missingTemp.contains(r) { temp = r == 30 ? "NA" : "" }
            let load = missingLoad.contains(r) ? "" : String(format: "%.6f", 0.93 + 0.05 * cos(Double(r) * 0.21))
            csv += "\(csvTime(t)),\(temp),\(load)\n"
        }
        try Data(csv.utf8).write(to: file)
        let accepted = (0..<rows).filter { ![0, 50, 100].contains($0) }
        /// What the forecast made after row r says is missing, and stuck.
        func missing(_ r: Int) -> [Int]? {
            let m: [Int] = (missingTemp.contains(r) ? [0] : []) + (missingLoad.contains(r) ? [1] : [])
            return m.isEmpty ? nil : m
        }
        func stuck(_ r: Int) -> [Int]? { r >= frozen.lowerBound + 30 && frozen.contains(r) ? [0] : nil }
        let model = ["--model", "gru", "--hidden", "6", "--window", "6", "--horizon", "2", "--lr", "0.01", "--seed", "7"]

        let daemon = try Daemon(model)
        // A warm-up stream of another width gets us past the slow joiner.
        let client = try ForecastClient(samplesIn: daemon.samplesIn, forecastsOut: daemon.forecastsOut)

        for (topic, format) in [("sensor-json", "json"), ("sensor-binary", "binary")] {
            let feed = try Self.run(["feed", file.path, "--pub", ">" + daemon.samplesIn, "--topic", topic, "--format", format])
            #expect(feed.status == 0, "\(feed.stderr)")
            #expect(feed.stdout.contains("sent \(rows) samples"), "\(feed.stdout)")
        }
        try client.collect(until: { $0["sensor-json", default: []].count >= accepted.count && $0["sensor-binary", default: []].count >= accepted.count }, seconds: 30)
        #expect(try daemon.stop() == 0)
        for refusal in ["out_of_order=2", "nothing_to_carry=2", "all_channels_missing=2", "missing_values=12", "stuck_episodes=2"] {
            #expect(daemon.command.stderr.contains(refusal), "\(refusal): rows 50, 0, 100 refused, 6 cells carried, 1 episode, on both streams: \(daemon.command.stderr)")
        }
        #expect(daemon.command.stderr.contains("channel 0 is stuck") && daemon.command.stderr.contains("channel 0 is no longer stuck"))

        let predictions = dir.appendingPathComponent("p.csv").path
        let metrics = dir.appendingPathComponent("m.json").path
        let replay = try Self.run(["replay", file.path, "--predictions", predictions, "--metrics", metrics] + model)
        #expect(replay.status == 0, "\(replay.stderr)")
        for text in [
            "refused as the daemon would: all_channels_missing=1 nothing_to_carry=1 out_of_order=1",
            "missing cells carried forward: temp 2, load 4", "stuck: temp 1 episode over 20 rows",
        ] {
            #expect(replay.stdout.contains(text), "\(text): \(replay.stdout)")
        }
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: metrics))) as? [String: Any])
        #expect(json["stuck_episodes"] as? [String: Int] == ["temp": 1, "load": 0])
        #expect(json["stuck_rows"] as? [String: Int] == ["temp": 20, "load": 0])
        #expect(json["carried"] as? [String: Int] == ["temp": 2, "load": 4])
        let (header, lines) = try Self.predictions(predictions)
        #expect(header == "row,horizon,temp,load,temp_lower,temp_upper,load_lower,load_upper,anomaly,temp_anomaly,load_anomaly")
        var replayed: [String: PredictionLine] = [:]
        for line in lines { replayed["\(line.row)/\(line.horizon)"] = line }
        #expect(replayed.count == (accepted.count - 1) + (accepted.count - 2))
        #expect(lines.contains { !$0.bounds[0].isEmpty } && lines.contains { !$0.anomaly.isEmpty }, "bands and scores appear")

        for topic in ["sensor-json", "sensor-binary"] {
            let published = client.messages[topic, default: []]
            #expect(published.count == accepted.count, "\(topic): a forecast per accepted row")
            var compared = 0, scoredTargets = 0
            for (m, payload) in published.enumerated() {
                let steps = try Self.forecastTexts(payload)
                let lower = try Self.rowTexts(payload, key: "lower"), upper = try Self.rowTexts(payload, key: "upper")
                #expect(steps.count == 2)
                for h in 1...2 where m + h < accepted.count {
                    let key = "\(accepted[m + h])/\(h)"
                    let line = try #require(replayed[key])
                    #expect(line.values == steps[h - 1], "\(topic) seq \(m + 1), row \(key)")
                    // The band as published, value by value (a bound without a band is null, or
                    // the whole band is null), is the band replay wrote.
                    let bounds = (0..<2).flatMap { j in [lower?[h - 1][j] ?? "", upper?[h - 1][j] ?? ""] }
                    #expect(line.bounds == bounds, "\(topic) seq \(m + 1), row \(key): band")
                    compared += 1
                }
                // The score of the sample itself is on replay's horizon-1 line for its row.
                if m >= 1 {
                    #expect(replayed["\(accepted[m])/1"]?.anomaly == (try Self.anomalyText(payload)), "\(topic) seq \(m + 1): anomaly")
                    // And each target's, the daemon's `anomalies` (absent with no score).
                    let object = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
                    let texts = try Self.anomaliesTexts(payload)
                    #expect(replayed["\(accepted[m])/1"]?.anomalies == (texts ?? ["", ""]), "\(topic) seq \(m + 1): anomalies")
                    #expect((object["anomalies"] == nil) == (object["anomaly"] is NSNull))
                    if texts != nil { scoredTargets += 1 }
                }
                // Its carried and stuck channels, as the file has them.
                let object = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
                #expect(object["missing"] as? [Int] == missing(accepted[m]), "\(topic) row \(accepted[m]): missing")
                #expect(object["stuck"] as? [Int] == stuck(accepted[m]), "\(topic) row \(accepted[m]): stuck")
            }
            #expect(compared == replayed.count)
            #expect(scoredTargets >= 250, "\(topic): per-target scores compared on \(scoredTargets) samples")
        }
    }
}

extension ReplayCommandTests {
    // MARK: rnnd-nab detect

    @Test func nabDetectWritesResultsInNABsLayoutThatTheScorerReads() throws {
        // A corpus of one file: 400 hourly values of a daily cycle and noise, with one spike (row
        // 350) in its labelled window, replayed by the real binary as bench/nab.sh replays NAB.
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let start = 1_700_000_000, rows = 400
        var csv = "timestamp,value\n"
        for r in 0..<rows {
            let noise = Double((r * 7919) % 1000) / 1000 - 0.5
            let value = r == 350 ? 100 : 10 + 3 * sin(2 * Double.pi * Double(r) / 24) + noise
            csv += "\(csvTime(start + 3600 * r)),\(String(format: "%.6f", value))\n"
        }
        let window = [345, 355].map { "\"\(csvTime(start + 3600 * $0)).000000\"" }.joined(separator: ", ")
        for (path, text) in ["data/cat/spike.csv": csv, "labels/combined_windows.json": "{\"cat/spike.csv\": [[\(window)]]}"] {
            let url = dir.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        let results = dir.appendingPathComponent("results/rnnd").path
        var settings = NABDetectSettings(corpus: dir.path, output: results, rnnd: try Self.binary().path)
        settings.replayArguments = ["--model", "gru", "--hidden", "8"]  // a debug build's replay in seconds
        try NABDetect.run(settings, shouldStop: { false }, progress: { _ in })
        // NAB's name: its scorer finds the data file by removing the `<detector>_` prefix.
        let files = try FileManager.default.contentsOfDirectory(atPath: results + "/cat").filter { !$0.hasPrefix(".") }
        #expect(files == ["rnnd_spike.csv"])
        let lines = try String(contentsOfFile: results + "/cat/rnnd_spike.csv", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == rows + 1 && lines[0] == "timestamp,value,anomaly_score,label")
        let scorer = try NABCorpus(directory: dir.path).scorer(results: results)
        #expect(scorer.series.count == 1 && scorer.series[0].windows == [345...355])
        let best = scorer.optimise(.standard)
        let evaluation = scorer.evaluate(.standard, threshold: best.threshold).total
        #expect(evaluation.windowsDetected == 1 && evaluation.falsePositives == 0, "the spike found, nothing else: \(evaluation)")
        // Another detector's name (`--detector`) names the files.
        var named = settings
        named.detector = "mine"
        #expect(named.resultsPath("cat/spike.csv") == results + "/cat/mine_spike.csv")
    }
}

/// `2023-11-14 22:13:20` for Unix seconds (the file's time axis), computed here independently.
private func csvTime(_ seconds: Int) -> String {
    let date = Date(timeIntervalSince1970: TimeInterval(seconds))
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    return String(format: "%04ld-%02ld-%02ld %02ld:%02ld:%02ld", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
}
