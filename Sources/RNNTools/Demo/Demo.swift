// `rnnd demo` (README.md): the real daemon as a child process, fed two bundled sensor series over
// loopback, its forecasts received, matched to the values they forecast and scored against
// persistence while they stream. The view is DemoView.swift; the command line is
// Sources/rnnd/Demo.swift.

import Foundation
import RNNBasics
import RNNWire
import Synchronization
import ZeroMQ

/// A bundled series the demo streams, under `data/` (data/README.md).
public struct DemoSeries: Sendable, Equatable {
    /// The stream id the samples are sent under.
    public var stream: String
    /// The CSV file, relative to the data directory.
    public var file: String
    /// What the values are, in a few words.
    public var what: String

    public static let bundled = [
        DemoSeries(stream: "nab/nyc_taxi", file: "nab/nyc_taxi.csv", what: "NYC taxi passengers per half hour"),
        DemoSeries(
            stream: "nab/machine_temperature", file: "nab/machine_temperature_system_failure.csv",
            what: "industrial machine temperature, every 5 minutes"),
    ]

    /// The stream of the probe samples that tell the demo its subscription is live; never scored.
    static let probeStream = "demo/probe"

    /// The directories `rnnd demo` looks in for `data/`, in order: the current directory's
    /// `data/`, then the package's `data/` seen from each executable path given (an executable
    /// built by SwiftPM lives in `.build/release/` or `.build/<triple>/release/`).
    public static func candidateDirectories(currentDirectory: String, executables: [String]) -> [String] {
        var found = [currentDirectory + "/data"]
        for executable in executables where executable.contains("/") {
            let directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
            for up in ["../..", "../../.."] {
                found.append(directory.appendingPathComponent(up + "/data").standardizedFileURL.path)
            }
        }
        var seen = Set<String>()
        return found.filter { seen.insert($0).inserted }
    }

    /// The first of `directories` that holds every bundled file.
    public static func locate(in directories: [String]) -> String? {
        directories.first { directory in
            bundled.allSatisfy { FileManager.default.isReadableFile(atPath: directory + "/" + $0.file) }
        }
    }
}

/// What `rnnd demo` does.
public struct DemoSettings: Sendable {
    /// Samples (rows) sent per stream, at most a file's rows.
    public var samples = 10_320
    /// Samples per second per stream.
    public var rate = 180.0
    /// The scores of the live view cover the latest `recent` forecasts of each stream.
    public var recent = 500
    /// The daemon's `--model` and `--hidden` (`rnnd run`'s defaults).
    public var cell = "lstm"
    public var hidden = 64
    /// The `rnnd` binary run as the daemon.
    public var executable: String
    /// Where `nab/...` are.
    public var dataDirectory: String
    /// Redraw a view on a terminal (ANSI), or print a progress line every few seconds.
    public var live = false
    /// Columns of the terminal; longer lines are cut.
    public var columns = 100

    public init(executable: String, dataDirectory: String) {
        self.executable = executable
        self.dataDirectory = dataDirectory
    }

    /// The daemon's command line after the executable.
    func daemonArguments(stateDirectory: String) -> [String] {
        [
            "run", "--sub", "@tcp://127.0.0.1:*", "--pub", "@tcp://127.0.0.1:*", "--state-dir", stateDirectory,
            // Info: the log says where the sockets were bound. It is read, not shown.
            "--log-level", "info", "--model", cell, "--hidden", "\(hidden)",
        ]
    }
}

/// Why the demo could not run or did not finish well.
public enum DemoError: Error, CustomStringConvertible, Sendable {
    case data(CSVError)
    case system(String)
    case daemon(String)

    public var description: String {
        switch self {
        case .data(let error): error.description
        case .system(let message), .daemon(let message): message
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .data(let error): error.exitCode
        case .system: 71  // EX_OSERR
        case .daemon: 1
        }
    }
}

/// One stream's samples as the demo sends them, and which of them the daemon accepts.
struct DemoStream: Sendable {
    let series: DemoSeries
    let samples: CSVSamples
    /// Rows sent: the first `count` samples.
    let count: Int
    /// The samples (indices below `count`) the daemon accepts, by its documented policy
    /// (docs/protocol.md): a time not later than the stream's latest is refused, and so is a
    /// missing value with nothing to carry forward. A forecast's
    /// `seq` counts these, so forecast `seq` was made after `accepted[seq - 1]` and forecasts
    /// `accepted[seq]`.
    let accepted: [Int]
    /// Refused samples per reason.
    let refused: [String: Int]

    init(series: DemoSeries, dataDirectory: String, limit: Int) throws(DemoError) {
        do throws(CSVError) {
            samples = try CSVTable(path: dataDirectory + "/" + series.file).samples(columns: ["value"])
        } catch {
            throw .data(error)
        }
        self.series = series
        count = min(limit, samples.count)
        var accepted: [Int] = [], refused: [String: Int] = [:]
        var policy = StreamPolicy(width: samples.width)
        var channels = ChannelWatch(width: samples.width)
        var sample = [Float](repeating: 0, count: samples.width)
        var values = samples.values
        for i in 0..<count {
            let row = samples.sample(i)
            if let problem = StreamPolicy.valueProblem(row) {
                refused[problem.rawValue, default: 0] += 1
                continue
            }
            // The daemon's reference clock is its host's: the demo's files lie in the past.
            let now = Date().timeIntervalSince1970
            for (j, x) in row.enumerated() { sample[j] = Float(x) }
            let time = samples.timestamp(i), width = row.count
            let verdict = sample.withUnsafeMutableBufferPointer {
                policy.admit(width: width, time: time, now: now, values: $0.baseAddress!, channels: &channels)
            }
            if let refusal = verdict.refusal {
                refused[refusal.rawValue, default: 0] += 1
                continue
            }
            // A missing value is scored as the value carried forward, as replay scores it.
            for j in 0..<samples.width where row[row.startIndex + j].isNaN {
                values[i * samples.width + j] = values[accepted.last! * samples.width + j]
            }
            accepted.append(i)
        }
        self.values = values
        self.accepted = accepted
        self.refused = refused
    }

    /// The samples' values, a missing one carried forward from the previous accepted sample.
    let values: [Double]

    /// The value of accepted sample `k`.
    func value(_ k: Int) -> Double { values[accepted[k] * samples.width] }
}

/// What the demo has seen of one stream.
struct DemoStreamScore: Sendable {
    /// Rows sent.
    var sent = 0
    /// Forecasts received that matched a sent sample by seq and t.
    var forecasts = 0
    /// Forecasts that did not (a wrong seq or t, or a seq seen already).
    var unmatched = 0
    var lastSeq = 0
    /// Per scored forecast, in seq order: model − actual and persistence − actual.
    var modelErrors: [Double] = []
    var persistenceErrors: [Double] = []
    /// The latest matched forecast: the sample it was made after, and what it forecasts, with its band.
    var latestTime: Double?
    var latestValue: Double?
    var latestForecast: Double?
    var latestBand: (lower: Double, upper: Double)?
    /// The band published with the previous forecast, which the next sample falls in or not.
    var pendingBand: (lower: Double, upper: Double)?
    /// Scored forecasts that had a band, and of those, how many held their value.
    var banded = 0
    var covered = 0
    /// Samples whose anomaly score was at least `DemoStreamScore.alarm`, and the latest such.
    var anomalies = 0
    var latestAnomaly: (time: Double, score: Double)?

    /// The anomaly score the demo counts as an alarm.
    static let alarm = 0.5
}

/// The model's and persistence's errors over a set of forecasts.
struct DemoErrors: Sendable {
    var count = 0
    var model = (squares: 0.0, absolutes: 0.0)
    var persistence = (squares: 0.0, absolutes: 0.0)

    init(_ score: DemoStreamScore, _ range: Range<Int>) {
        for i in range {
            let m = score.modelErrors[i], p = score.persistenceErrors[i]
            model.squares += m * m
            model.absolutes += abs(m)
            persistence.squares += p * p
            persistence.absolutes += abs(p)
        }
        count = range.count
    }

    var modelMSE: Double? { count > 0 ? model.squares / Double(count) : nil }
    var persistenceMSE: Double? { count > 0 ? persistence.squares / Double(count) : nil }
    var modelMAE: Double? { count > 0 ? model.absolutes / Double(count) : nil }
    var persistenceMAE: Double? { count > 0 ? persistence.absolutes / Double(count) : nil }
    /// `1 − MSE(model) / MSE(persistence)`, as in `rnnd replay`.
    var skill: Double? {
        guard let m = modelMSE, let p = persistenceMSE, p > 0 else { return nil }
        return 1 - m / p
    }
}

/// The demo's shared state: written by the sender and receiver threads, read by the view.
final class DemoBoard: Sendable {
    let streams: [DemoStream]
    let scores: Mutex<[DemoStreamScore]>
    let probeSeen = Atomic<Bool>(false)
    let probesSent = Atomic<Int>(0)
    let sendingDone = Atomic<Bool>(false)
    let stopThreads = Atomic<Bool>(false)
    let threadFailure = Mutex<String?>(nil)
    /// When the first row was sent.
    let feedStarted = Mutex<ContinuousClock.Instant?>(nil)

    init(streams: [DemoStream]) {
        self.streams = streams
        scores = Mutex(Array(repeating: DemoStreamScore(), count: streams.count))
    }

    var snapshot: [DemoStreamScore] { scores.withLock { $0 } }

    func fail(_ message: String) { threadFailure.withLock { if $0 == nil { $0 = message } } }

    /// All forecasts of the samples sent have arrived.
    var complete: Bool {
        scores.withLock { scores in zip(streams, scores).allSatisfy { $1.forecasts >= $0.accepted.count } }
    }

    /// Matches a forecast message to the sample it was made after and the one it forecasts.
    func received(_ payload: [UInt8]) {
        guard let message = JSONValue.parse(payload), case .string(let stream)? = message["stream"] else { return }
        if stream == DemoSeries.probeStream {
            probeSeen.store(true, ordering: .relaxed)
            return
        }
        guard let j = streams.firstIndex(where: { $0.series.stream == stream }) else { return }
        let s = streams[j]
        let seq = message["seq"]?.double.map { Int($0) } ?? 0
        let t = message["t"]?.double
        func first(_ key: String) -> Double? {
            guard case .array(let steps)? = message[key], case .array(let row)? = steps.first else { return nil }
            return row.first?.double
        }
        let forecast = first("forecast")
        let band = first("lower").flatMap { lower in first("upper").map { (lower, $0) } }
        let anomaly = message["anomaly"]?.double
        scores.withLock { scores in
            guard seq == scores[j].lastSeq + 1, seq <= s.accepted.count, let forecast,
                t == s.samples.timestamp(s.accepted[seq - 1])
            else {
                scores[j].unmatched += 1
                return
            }
            scores[j].lastSeq = seq
            scores[j].forecasts += 1
            scores[j].latestTime = t
            scores[j].latestValue = s.value(seq - 1)
            scores[j].latestForecast = forecast
            // The sample this message answers fell in the band published before it, or not.
            if let previous = scores[j].pendingBand {
                scores[j].banded += 1
                let value = s.value(seq - 1)
                if value >= previous.lower && value <= previous.upper { scores[j].covered += 1 }
            }
            scores[j].latestBand = band
            scores[j].pendingBand = band
            if let anomaly, anomaly >= DemoStreamScore.alarm, let t {
                scores[j].anomalies += 1
                scores[j].latestAnomaly = (t, anomaly)
            }
            // The forecast of accepted sample `seq`, when that sample is among those sent.
            if seq < s.accepted.count {
                let actual = s.value(seq)
                scores[j].modelErrors.append(forecast - actual)
                scores[j].persistenceErrors.append(s.value(seq - 1) - actual)
            }
        }
    }
}

/// `rnnd demo`: starts the daemon, feeds it, watches its forecasts, prints a summary, stops it.
public struct DemoRunner: Sendable {
    public var settings: DemoSettings
    let streams: [DemoStream]

    /// Reads the bundled files.
    public init(settings: DemoSettings) throws(DemoError) {
        self.settings = settings
        var streams: [DemoStream] = []
        for series in DemoSeries.bundled {
            streams.append(try DemoStream(series: series, dataDirectory: settings.dataDirectory, limit: settings.samples))
        }
        self.streams = streams
    }

    /// Runs the demo, writing the view and the summary through `write`; returns the exit status:
    /// 0 when the daemon ran and stopped well and every forecast came back, 1 when not, 130 when
    /// `shouldStop()` turned true first (SIGINT). The daemon is stopped and its state directory
    /// removed in every case.
    public func run(shouldStop: @escaping @Sendable () -> Bool, write: @escaping (String) -> Void) -> Int32 {
        let s = settings
        var template = Array("\(FileManager.default.temporaryDirectory.path)/rnnd-demo-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            write("rnnd demo: cannot create a temporary directory: \(String(cString: strerror(errno)))\n")
            return 71
        }
        let stateDirectory = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }

        let child: ChildProcess
        do throws(DemoError) {
            child = try ChildProcess(executable: s.executable, arguments: s.daemonArguments(stateDirectory: stateDirectory))
        } catch {
            write("rnnd demo: \(error)\n")
            return error.exitCode
        }
        let board = DemoBoard(streams: streams)
        let view = DemoView(settings: s, streams: streams, pid: child.pid, stateDirectory: stateDirectory)
        var outcome = Outcome.finished

        // The daemon's endpoints, from its log.
        var endpoints: (samples: String, forecasts: String)?
        let startDeadline = Date().addingTimeInterval(60)
        while endpoints == nil {
            if let samples = child.line(after: "samples in:"), let forecasts = child.line(after: "forecasts out:"),
                child.line(after: "ready") != nil
            {
                endpoints = (samples, forecasts)
            } else if shouldStop() {
                outcome = .interrupted
                break
            } else if child.exited() != nil || Date() > startDeadline {
                outcome = .failed("the daemon did not start")
                break
            } else {
                usleep(20_000)
            }
        }

        var seconds = 0.0
        if let endpoints {
            view.endpoints = endpoints
            (outcome, seconds) = watch(board: board, child: child, view: view, endpoints: endpoints, shouldStop: shouldStop, write: write)
        }

        // Stop the daemon: SIGTERM, as systemd does; it finishes the samples in flight and exits.
        let status = child.stop(seconds: 30)
        let log = child.log
        let daemonLine = log.split(separator: "\n").last { $0.contains("stopped:") }.map {
            String($0[$0.range(of: "stopped:")!.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        try? FileManager.default.removeItem(atPath: stateDirectory)
        let removed = !FileManager.default.fileExists(atPath: stateDirectory)

        var failures: [String] = []
        if case .failed(let why) = outcome { failures.append(why) }
        if !ChildProcess.succeeded(status) { failures.append("the daemon (pid \(child.pid)) ended with \(ChildProcess.describe(status))") }
        write(view.summary(
            board.snapshot, seconds: seconds, interrupted: outcome == .interrupted,
            probes: board.probesSent.load(ordering: .relaxed), daemonLine: daemonLine,
            daemonStatus: ChildProcess.describe(status), stateRemoved: removed, failures: failures))
        if !failures.isEmpty {
            let tail = log.split(separator: "\n", omittingEmptySubsequences: false).suffix(30).joined(separator: "\n")
            write("\nrnnd demo: the daemon's log (last lines):\n\(tail)\n")
            return 1
        }
        return outcome == .interrupted ? 130 : 0
    }

    enum Outcome: Equatable {
        case finished, interrupted
        case failed(String)
    }

    /// Feeds and watches until every forecast is in, the user stops, or something fails;
    /// returns how it ended and the seconds of feeding.
    private func watch(
        board: DemoBoard, child: ChildProcess, view: DemoView, endpoints: (samples: String, forecasts: String),
        shouldStop: @escaping @Sendable () -> Bool, write: (String) -> Void
    ) -> (Outcome, Double) {
        let context: ZMQContext
        do {
            context = try ZMQContext()
        } catch {
            return (.failed("ZeroMQ: \(error)"), 0)
        }
        defer { context.shutdown() }
        let clock = ContinuousClock()
        let threads = DispatchGroup()
        func start(_ name: String, _ body: @escaping @Sendable () throws -> Void) {
            threads.enter()
            let thread = Thread {
                do { try body() } catch { board.fail("\(name): \(error)") }
                threads.leave()
            }
            thread.name = name
            thread.start()
        }
        let rate = settings.rate
        start("rnnd-demo-sub") { try receive(board: board, context: context, endpoint: endpoints.forecasts) }
        start("rnnd-demo-pub") {
            try feed(board: board, context: context, endpoint: endpoints.samples, rate: rate)
        }

        if !settings.live { write(view.header.joined(separator: "\n") + "\n") }
        var outcome = Outcome.finished
        var sentAll: ContinuousClock.Instant?
        var lastDraw: ContinuousClock.Instant?
        var lastProgress = 0
        while true {
            let now = clock.now
            let elapsed = board.feedStarted.withLock { $0 }.map { DemoRunner.seconds(now - $0) } ?? 0
            if let failure = board.threadFailure.withLock({ $0 }) {
                outcome = .failed(failure)
                break
            }
            if shouldStop() {
                outcome = .interrupted
                break
            }
            if let status = child.exited() {
                outcome = .failed("the daemon exited while the demo ran (\(ChildProcess.describe(status)))")
                break
            }
            if board.sendingDone.load(ordering: .relaxed) {
                if sentAll == nil { sentAll = now }
                if board.complete { break }
                // Every sample is sent; the forecasts have this long to come back.
                if let sentAll, now - sentAll > .seconds(60) {
                    outcome = .failed("not every forecast came back within 60 s of the last sample")
                    break
                }
            }
            let snapshot = board.snapshot
            view.note(snapshot, at: elapsed)
            if settings.live {
                if lastDraw.map({ now - $0 >= .milliseconds(250) }) ?? true {
                    write(view.frame(snapshot, elapsed: elapsed))
                    lastDraw = now
                }
            } else if Int(elapsed / 5) > lastProgress {
                lastProgress = Int(elapsed / 5)
                write(view.progress(snapshot, elapsed: elapsed))
            }
            usleep(50_000)
        }
        board.stopThreads.store(true, ordering: .relaxed)
        _ = threads.wait(timeout: .now() + 10)
        let elapsed = board.feedStarted.withLock { $0 }.map { DemoRunner.seconds(clock.now - $0) } ?? 0
        if settings.live { write(view.frame(board.snapshot, elapsed: elapsed, final: true)) }
        return (outcome, elapsed)
    }

    /// The sender: an XPUB that waits for the daemon's subscription (no sample lost to a late
    /// join), sends probe samples until a forecast of one comes back (so the forecast
    /// subscription is live too), then every stream's rows at `rate` per second each.
    private func feed(
        board: DemoBoard, context: ZMQContext, endpoint: String, rate: Double
    ) throws {
        let socket = try ZMQSocket(context, type: .xpub)
        try socket.setSendHighWaterMark(100_000)
        try socket.setOption(.xpubNoDrop, 1)
        try socket.setLinger(.milliseconds(2000))
        try socket.setReceiveTimeout(.milliseconds(50))
        try socket.setSendTimeout(.milliseconds(100))
        try socket.connect(endpoint)
        let clock = ContinuousClock()
        var deadline = clock.now + .seconds(30)
        subscribed: while true {
            if board.stopThreads.load(ordering: .relaxed) { return }
            guard clock.now < deadline else { throw DemoError.daemon("the daemon did not subscribe to the samples within 30 s") }
            if case .frames(let frames) = try socket.receiveFrames(), frames.first?.first == 1 { break subscribed }
        }
        deadline = clock.now + .seconds(30)
        while !board.probeSeen.load(ordering: .relaxed) {
            if board.stopThreads.load(ordering: .relaxed) { return }
            guard clock.now < deadline else { throw DemoError.daemon("no forecast of a probe sample came back within 30 s") }
            if case .sent = try socket.sendMultipart([Array(DemoSeries.probeStream.utf8), Array(#"{"v":0}"#.utf8)]) {
                board.probesSent.add(1, ordering: .relaxed)
            }
            _ = try socket.receiveFrames()  // waits up to 50 ms
            Thread.sleep(forTimeInterval: 0.05)
        }

        let feeders = streams.map { Feeder(settings: FeedSettings(topic: $0.series.stream)) }
        let topics = streams.map { Array($0.series.stream.utf8) }
        var payload: [UInt8] = []
        let rows = streams.map(\.count).max() ?? 0
        let begin = clock.now
        board.feedStarted.withLock { $0 = begin }
        for i in 0..<rows {
            let due = begin + .seconds(Double(i) / rate)
            while clock.now < due {
                if board.stopThreads.load(ordering: .relaxed) { return }
                Thread.sleep(forTimeInterval: min(0.05, DemoRunner.seconds(due - clock.now)))
            }
            for (j, stream) in streams.enumerated() where i < stream.count {
                feeders[j].encode(stream.samples, i, into: &payload)
                sending: while true {
                    switch try socket.sendMultipart([topics[j], payload]) {
                    case .sent: break sending
                    case .wouldBlock: if board.stopThreads.load(ordering: .relaxed) { return }
                    case .terminated: return
                    }
                }
                board.scores.withLock { $0[j].sent += 1 }
            }
        }
        board.sendingDone.store(true, ordering: .relaxed)
        while !board.stopThreads.load(ordering: .relaxed) { Thread.sleep(forTimeInterval: 0.05) }
        if !board.complete { try socket.setLinger(.zero) }
    }

    /// The receiver: every forecast the daemon publishes, matched and scored on the board.
    private func receive(board: DemoBoard, context: ZMQContext, endpoint: String) throws {
        let socket = try ZMQSocket(context, type: .sub)
        try socket.setReceiveHighWaterMark(1_000_000)
        try socket.setReceiveTimeout(.milliseconds(100))
        try socket.subscribe("")
        try socket.connect(endpoint)
        while !board.stopThreads.load(ordering: .relaxed) {
            switch try socket.receiveFrames() {
            case .frames(let frames) where frames.count == 2: board.received(frames[1])
            case .frames, .wouldBlock: continue
            case .terminated: return
            }
        }
    }

    static func seconds(_ d: Duration) -> Double {
        let (s, a) = d.components
        return Double(s) + Double(a) * 1e-18
    }
}
