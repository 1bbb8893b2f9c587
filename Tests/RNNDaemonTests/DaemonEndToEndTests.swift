import Foundation
import RNNCore
import Synchronization
import Testing
import ZeroMQ

/// The real `rnnd` binary, driven as a user would: samples over tcp loopback from a publisher,
/// forecasts read by a subscriber, every kind of bad input mixed in, stopped with SIGTERM.
@Suite(.timeLimit(.minutes(1)))
struct DaemonEndToEndTests {
    /// A running `rnnd run`, its stderr collected, its endpoints read from its log.
    final class LogBuffer: Sendable {
        let text = Mutex<String>("")
        /// Whether the process's stderr was read to its end.
        let ended = Mutex<Bool>(false)
    }

    final class RunningDaemon: @unchecked Sendable {
        let process: Process
        let log = LogBuffer()
        /// The state directory made for it (nil: `arguments` named one), removed with it.
        private let ownState: String?

        /// Starts `rnnd run arguments` (or another `command`, such as `proxy`); `run` in a new
        /// state directory unless `arguments` names one (each daemon locks its state directory;
        /// tests run in parallel).
        init(_ arguments: [String], command: String = "run", environment: [String: String] = [:]) throws {
            process = Process()
            process.executableURL = try ReplayCommandTests.binary()
            ownState = command != "run" || arguments.contains("--state-dir") ? nil : ServiceEndToEndTests.temporaryDirectory()
            process.arguments = [command] + (ownState.map { ["--state-dir", $0] } ?? []) + arguments
            if !environment.isEmpty {
                process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            }
            let pipe = Pipe()
            process.standardError = pipe
            process.standardOutput = FileHandle.nullDevice
            let log = self.log
            pipe.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                if data.isEmpty {
                    handle.readabilityHandler = nil
                    log.ended.withLock { $0 = true }
                } else {
                    log.text.withLock { $0 += String(decoding: data, as: UTF8.self) }
                }
            }
            try process.run()
        }

        var text: String { log.text.withLock { $0 } }

        /// Waits until the log has a line containing `marker`; returns what follows it on that line.
        func await(_ marker: String, seconds: Double = 10) throws -> String {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let line = text.split(separator: "\n").first(where: { $0.contains(marker) }) {
                    return String(line[line.range(of: marker)!.upperBound...]).trimmingCharacters(in: .whitespaces)
                }
                if !process.isRunning { break }
                Thread.sleep(forTimeInterval: 0.02)
            }
            throw DaemonTestError.timeout("no '\(marker)' in the log:\n\(text)")
        }

        func stop(seconds: Double = 10) -> Int32? {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                return nil
            }
            drain()
            return process.terminationStatus
        }

        /// A daemon a test left running (it failed, or did not need to stop it) is killed.
        deinit { ReplayCommandTests.end(process, removing: ownState) }

        /// Waits for the process to exit and for its log to be read to the end.
        func waitUntilExit() {
            process.waitUntilExit()
            drain()
        }

        /// Waits (up to 5 s) until the exited process's stderr is read to its end: its last lines
        /// can still be on their way to `text` when it has exited (a test read an empty log once).
        private func drain() {
            let deadline = Date().addingTimeInterval(5)
            while !log.ended.withLock({ $0 }) && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        }
    }

    enum DaemonTestError: Error { case timeout(String) }

    /// The counter `name` in a `stopped:` line, among the others or the refusals (`refused={...}`).
    static func counter(_ name: String, in summary: String) -> Int? {
        for token in summary.split(whereSeparator: { " {},".contains($0) }) where token.hasPrefix(name + "=") {
            return Int(token.dropFirst(name.count + 1))
        }
        return nil
    }

    func send(_ socket: borrowing ZMQSocket, _ frames: [[UInt8]]) throws {
        #expect(try socket.sendMultipart(frames) == .sent)
    }

    func json(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The forecast messages of `stream` received so far, decoded.
    func collect(_ sub: borrowing ZMQSocket, into forecasts: inout [String: [[String: Any]]], until done: ([String: [[String: Any]]]) -> Bool, seconds: Double = 10) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline, !done(forecasts) {
            guard case .frames(let frames) = try sub.receiveFrames() else { continue }
            #expect(frames.count == 2)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(frames[1])) as? [String: Any])
            let stream = try #require(object["stream"] as? String)
            #expect(String(decoding: frames[0], as: UTF8.self) == stream)
            forecasts[stream, default: []].append(object)
        }
    }

    @Test func forecastsGoodStreamsRefusesBadInputAndStopsCleanly() throws {
        let daemon = try RunningDaemon([
            "--sub", "@tcp://127.0.0.1:*", "--pub", "@tcp://127.0.0.1:*", "--workers", "2",
            "--model", "gru", "--hidden", "8", "--window", "4", "--horizon", "2", "--log-level", "info",
            "--max-message-bytes", "1024", "--max-inputs", "4", "--max-streams", "4",
        ])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let samplesIn = try daemon.await("samples in:")
        let forecastsOut = try daemon.await("forecasts out:")
        _ = try daemon.await("ready")

        let context = try ZMQContext()
        let pub = try ZMQSocket(context, type: .pub)
        try pub.connect(samplesIn)
        let sub = try ZMQSocket(context, type: .sub)
        try sub.subscribe("")
        try sub.setReceiveTimeout(.milliseconds(100))
        try sub.connect(forecastsOut)

        // Slow joiner: warm up on a stream of its own until its forecasts come back.
        var forecasts: [String: [[String: Any]]] = [:]
        var warmups = 0
        let warmupDeadline = Date().addingTimeInterval(10)
        while forecasts["warmup", default: []].isEmpty && Date() < warmupDeadline {
            try send(pub, [json("warmup"), json(#"{"v": \#(warmups)}"#)])
            warmups += 1
            try collect(sub, into: &forecasts, until: { !$0["warmup", default: []].isEmpty }, seconds: 0.2)
        }
        try #require(!forecasts["warmup", default: []].isEmpty, "no forecast came back")

        // Three good streams of 20 samples, with every kind of bad input in between.
        let streams = ["plant/a", "plant/b", "température/c"]
        let bad: [[[UInt8]]] = [
            [json("plant/a"), json("not json")],                       // malformed_json
            [json("plant/a"), json(#"{"value": 1}"#)],                 // missing_value
            [json("plant/b"), json(#"{"v": 1e39}"#)],                  // non_finite_value
            [json("plant/b"), json(#"{"v": "high"}"#)],                // value_not_numeric
            [json("plant/a"), json(#"{"v": [1, 2]}"#)],                // width_changed
            [json("plant/a"), []],                                     // empty_payload
            [Array(repeating: 0x61, count: 256), json(#"{"v": 1}"#)],  // topic_too_long
            [[0x70, 0xFF], json(#"{"v": 1}"#)],                        // topic_not_utf8
            [json("plant/a"), json(#"{"v": 1}"#), json("extra")],      // wrong_frame_count
            [json("plant/b"), [0x01, 0x00, 0x01]],                     // malformed_binary
            [json("plant/c"), json(#"{"v": 1, "t": "noon"}"#)],        // bad_timestamp
            [[], json(#"{"v": 1}"#)],                                  // empty_topic
            [json("plant/a"), json(#"{"v": 1, "pad": "\#(String(repeating: "x", count: 2000))"}"#)],  // payload_too_large
            [json("plant/b"), json(#"{"v": [1, 2, 3, 4, 5]}"#)],       // too_many_values (--max-inputs 4)
        ]
        for i in 0..<20 {
            for (k, stream) in streams.enumerated() {
                let t = 1_700_000_000 + Double(i)
                try send(pub, [json(stream), json(#"{"v": \#(Double(k) + sin(Double(i))), "t": \#(t), "unit": "bar"}"#)])
            }
            if i < bad.count { try send(pub, bad[i]) }
            if i == 12 {  // timestamps: one from the past, one repeated, on plant/b (latest t = ...12)
                try send(pub, [json("plant/b"), json(#"{"v": 1, "t": 1699999999}"#)])  // out_of_order
                try send(pub, [json("plant/b"), json(#"{"v": 1, "t": 1700000012}"#)])  // duplicate_timestamp
            }
        }
        try collect(sub, into: &forecasts, until: { f in streams.allSatisfy { f[$0, default: []].count >= 20 } })
        for stream in streams {
            let got = forecasts[stream, default: []]
            #expect(got.count == 20, "\(stream): \(got.count) forecasts")
            #expect(got.compactMap { $0["seq"] as? Int } == Array(1...20), "\(stream): every sample once, in order")
            for f in got {
                #expect(f["horizon"] as? Int == 2)
                let rows = f["forecast"] as? [[Double]] ?? []
                #expect(rows.count == 2 && rows.allSatisfy { $0.count == 1 && $0[0].isFinite })
            }
            #expect(got.last?["t"] as? Double == 1_700_000_019)
            #expect((got.last?["updates"] as? Int ?? 0) > 0, "\(stream) learned")
        }
        #expect(forecasts.keys.allSatisfy { ["warmup"] + streams ~= $0 }, "no forecast for a refused message: \(forecasts.keys)")

        // Four streams are in memory (--max-streams 4): a fifth makes its worker unload its least
        // recently used one, saved, and is served (too_many_streams: QuietStreamsEndToEndTests).
        // A sample of plant/a after it, loaded again if it was the one unloaded, goes on.
        try send(pub, [json("plant/extra"), json(#"{"v": 1}"#)])
        try send(pub, [json("plant/a"), json(#"{"v": 1, "t": 1700000020}"#)])
        try collect(sub, into: &forecasts, until: { $0["plant/a", default: []].count >= 21 && $0["plant/extra"] != nil })
        #expect(forecasts["plant/a", default: []].count == 21)
        #expect(forecasts["plant/extra", default: []].count == 1)

        #expect(daemon.stop() == 0, "exit status after SIGTERM")
        let summary = try daemon.await("stopped:")
        for reason in [
            "malformed_json", "missing_value", "non_finite_value", "value_not_numeric", "width_changed",
            "empty_payload", "topic_too_long", "topic_not_utf8", "wrong_frame_count", "malformed_binary",
            "bad_timestamp", "out_of_order", "duplicate_timestamp", "empty_topic", "payload_too_large",
            "too_many_values",
        ] {
            #expect(summary.contains("\(reason)=1"), "\(reason) counted once: \(summary)")
        }
        // Every good sample was learned: the 60 and the warm-ups that reached the daemon (the
        // first of those can be lost to the slow joiner, never more than were sent).
        let learned = try #require(Self.counter("learned", in: summary))
        #expect(learned >= 63 && learned <= 62 + warmups, "\(summary)")
        #expect(daemon.text.contains("topic_not_utf8") && daemon.text.contains("0x70ff"), "refusals are logged with the stream id")
    }

    /// Bands, anomaly scores and drifts as a subscriber and an operator see them: a stream that
    /// behaves for 700 samples (with one spike), then changes its regime.
    @Test func bandsAnomaliesAndDriftsReachSubscribersAndTheLog() throws {
        let daemon = try RunningDaemon([
            "--sub", "@tcp://127.0.0.1:*", "--pub", "@tcp://127.0.0.1:*", "--workers", "1",
            "--model", "gru", "--hidden", "8", "--window", "8",
        ])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let client = try ForecastClient(samplesIn: try daemon.await("samples in:"), forecastsOut: try daemon.await("forecasts out:"))
        var rng = SplitMix64(seed: 8)
        let count = 1200
        for i in 0..<count {
            let calm = sin(Double(i) * 0.3) + 0.05 * rng.normal() + (i == 400 ? 3 : 0)
            let changed = 6 + 3 * sin(Double(i) * 0.9) + 0.5 * rng.normal()
            try client.send("drifty", #"{"v": \#(i < 700 ? calm : changed), "t": \#(1_700_000_000 + 60 * i)}"#)
        }
        try client.collect(until: { $0["drifty", default: []].count >= count }, seconds: 30)
        let messages = try client.messages["drifty", default: []].map {
            try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])
        }
        try #require(messages.count == count)
        for (i, m) in messages.enumerated() {
            #expect(m["seq"] as? Int == i + 1)
            let forecast = try #require((m["forecast"] as? [[Double]])?.first?.first)
            if i >= Forecaster.bandWarmup + 1 {
                let lower = try #require((m["lower"] as? [[Double]])?.first?.first, "seq \(i + 1) has a band")
                let upper = try #require((m["upper"] as? [[Double]])?.first?.first)
                #expect(lower <= forecast && forecast <= upper)
            }
            if i < Forecaster.anomalyWarmup {
                #expect(m["anomaly"] is NSNull, "seq \(i + 1): no score in the warm-up")
            } else {
                let score = try #require(m["anomaly"] as? Double, "seq \(i + 1) has a score")
                #expect(score >= 0 && score <= 1)
            }
        }
        #expect((messages[400]["anomaly"] as? Double ?? 0) > 0.8, "the spike: \(messages[400]["anomaly"] ?? "none")")
        #expect(daemon.stop() == 0)
        let summary = try daemon.await("stopped:")
        let drifts = try #require(summary.split(separator: " ").first { $0.hasPrefix("drifts=") }.flatMap { Int($0.dropFirst(7)) })
        #expect(drifts >= 1, "the change of regime is counted: \(summary)")
        let line = try #require(daemon.text.split(separator: "\n").first { $0.contains("drift:") }, "and logged:\n\(daemon.text)")
        #expect(line.contains("notice") && line.contains("drifty"), "\(line)")
    }

    /// A vector stream with a dead channel: every channel is still forecast, the carried channels
    /// are named in the forecast (`missing`), counted, and a sample with nothing to carry or with
    /// every value missing is refused under its own reason; a scalar `null` is still refused.
    @Test func aNullChannelIsCarriedForwardNamedAndCounted() throws {
        let daemon = try RunningDaemon([
            "--sub", "@tcp://127.0.0.1:*", "--pub", "@tcp://127.0.0.1:*", "--workers", "1",
            "--model", "gru", "--hidden", "4", "--window", "4", "--metrics-listen", "127.0.0.1:0",
        ])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let client = try ForecastClient(samplesIn: try daemon.await("samples in:"), forecastsOut: try daemon.await("forecasts out:"))
        let address = try daemon.await("metrics on: http://")
        // Sample k's values; nil is null. Sample 0 has nothing to carry, sample 15 nothing at all.
        func values(_ k: Int) -> [Double?] {
            switch k {
            case 0: [nil, 1, 2]
            case 5: [10.5, nil, 12.5]
            case 10: [nil, nil, 22.5]
            case 15: [nil, nil, nil]
            default: [Double(k) + 0.5, Double(k) + 1.5, Double(k) + 2.5]
            }
        }
        for k in 0..<20 {
            let v = values(k).map { $0.map { "\($0)" } ?? "null" }.joined(separator: ",")
            try client.send("vec", #"{"v": [\#(v)], "t": \#(1_700_000_000 + 60 * k)}"#)
        }
        try client.send("scalar", #"{"v": null}"#)
        try client.collect(until: { $0["vec", default: []].count >= 18 }, seconds: 20)
        let messages = try client.messages["vec", default: []].map {
            try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])
        }
        let accepted = (1..<20).filter { $0 != 15 }
        try #require(messages.count == accepted.count, "a forecast for every sample but the two refused")
        for (m, k) in zip(messages, accepted) {
            #expect(m["t"] as? Double == Double(1_700_000_000 + 60 * k))
            let rows = try #require(m["forecast"] as? [[Double]])
            #expect(rows.count == 1 && rows[0].count == 3 && rows[0].allSatisfy(\.isFinite), "sample \(k): every channel forecast")
            let expected: [Int]? = switch k {
            case 5: [1]
            case 10: [0, 1]
            default: nil
            }
            #expect(m["missing"] as? [Int] == expected, "sample \(k): \(m["missing"] ?? "no missing key")")
            #expect(m["stuck"] == nil)
        }
        let metrics = try MetricsEndToEndTests.settled(address)
        #expect(metrics.value("rnnd_missing_values_total") == 3)
        #expect(metrics.value("rnnd_stream_missing_values", ["stream": "vec"]) == 3, "and per stream")
        #expect(metrics.value("rnnd_stream_stuck_channels", ["stream": "vec"]) == 0)
        #expect(metrics.value("rnnd_samples_refused_total", ["reason": "nothing_to_carry"]) == 1)
        #expect(metrics.value("rnnd_samples_refused_total", ["reason": "all_channels_missing"]) == 1)
        #expect(metrics.value("rnnd_samples_refused_total", ["reason": "value_not_numeric"]) == 1)
        #expect(metrics.value("rnnd_stuck_channels") == 0 && metrics.value("rnnd_stuck_episodes_total") == 0)
        #expect(daemon.stop() == 0)
        let summary = try daemon.await("stopped:")
        #expect(Self.counter("missing_values", in: summary) == 3, "\(summary)")
    }

    /// `queue_capacity` bounds what waits for a worker: a flood into a slow model is dropped and
    /// counted as `worker_queue_full`, and everything received is accounted for.
    @Test func aFullWorkerQueueDropsAndCountsSamples() throws {
        let daemon = try RunningDaemon([
            "--sub", "@tcp://127.0.0.1:*", "--pub", "@tcp://127.0.0.1:*", "--workers", "1", "--queue-capacity", "1",
            "--model", "lstm", "--hidden", "128", "--window", "64",
        ])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let client = try ForecastClient(samplesIn: try daemon.await("samples in:"), forecastsOut: try daemon.await("forecasts out:"), warmup: #"{"v": 1}"#)
        for i in 0..<2000 { try client.send("flood", #"{"v": \#(i % 7)}"#) }
        _ = try daemon.await("worker 0's queue is full")
        // What was received is learned or dropped by now; a stop would drop what is still unread.
        try client.collect(until: { _ in false }, seconds: 1)
        #expect(daemon.stop(seconds: 30) == 0)
        let summary = try daemon.await("stopped:")
        let received = Self.counter("received", in: summary), learned = Self.counter("learned", in: summary)
        let dropped = try #require(Self.counter("worker_queue_full", in: summary), "\(summary)")
        #expect(dropped > 0)
        #expect(received == learned.map { $0 + dropped }, "every sample learned or counted: \(summary)")
    }

    @Test func badConfigurationExitsBeforeBinding() throws {
        let daemon = try RunningDaemon(["--sub", "tcp://nowhere", "--workers", "2"])
        let deadline = Date().addingTimeInterval(10)
        while daemon.process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(!daemon.process.isRunning)
        #expect(daemon.process.terminationStatus == 64)
    }
}

private func ~= (list: [String], element: String) -> Bool { list.contains(element) }
