import Foundation
@testable import RNNDaemon
@testable import RNNState
import Synchronization
import Testing
import ZeroMQ

/// The real `rnnd` binary as a service: restarts that forget nothing, kill -9 during
/// checkpoints, damaged checkpoints, and systemd's notifications.
@Suite(.timeLimit(.minutes(2)))
struct ServiceEndToEndTests {
    typealias RunningDaemon = DaemonEndToEndTests.RunningDaemon

    /// Free ports chosen by the system: the tests run in parallel.
    static let ports = ["--sub", "@tcp://127.0.0.1:*", "--pub", "@tcp://127.0.0.1:*"]
    static let model = ports + ["--model", "gru", "--hidden", "8", "--window", "4", "--workers", "2", "--log-level", "info"]

    static func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-test-\(UUID())").path
    }

    /// A sample: stream, value, time.
    typealias Sample = (stream: String, v: Double, t: Double)

    /// Forecasts by stream and seq: the `forecast` rows as published.
    typealias Forecasts = [String: [Int: [[Double]]]]

    /// Connects to `daemon`, gets past the slow joiner on a `warmup` stream, sends `samples` and
    /// collects every forecast of their streams (`expected` per stream).
    static func exchange(_ daemon: RunningDaemon, _ samples: [Sample], expected: [String: Int]) throws -> Forecasts {
        let samplesIn = try daemon.await("samples in:"), forecastsOut = try daemon.await("forecasts out:")
        _ = try daemon.await("ready")
        let client = try ForecastClient(samplesIn: samplesIn, forecastsOut: forecastsOut, warmup: #"{"v": 1}"#)
        for s in samples { try client.send(s.stream, #"{"v": \#(s.v), "t": \#(s.t)}"#) }
        try client.collect(until: { m in expected.allSatisfy { m[$0.key, default: []].count >= $0.value } }, seconds: 20)
        var forecasts: Forecasts = [:]
        for (stream, payloads) in client.messages {
            for payload in payloads {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
                let seq = try #require(object["seq"] as? Int)
                forecasts[stream, default: [:]][seq] = try #require(object["forecast"] as? [[Double]])
            }
        }
        for (stream, count) in expected {
            #expect(forecasts[stream, default: [:]].count == count, "\(stream): \(forecasts[stream, default: [:]].count) of \(count) forecasts")
        }
        return forecasts
    }

    static func series(streams: [String], count: Int) -> [Sample] {
        var samples: [Sample] = []
        for i in 0..<count {
            for (k, stream) in streams.enumerated() {
                let v: Double = Double(k) + sin(Double(i) * 0.7) + 0.1 * Double(i % 5)
                samples.append((stream, v, 1_700_000_000 + Double(i)))
            }
        }
        return samples
    }

    @Test func aRestartContinuesExactlyAsIfUninterrupted() throws {
        let streams = ["plant/a", "plant/b", "plant/c"]
        let samples = Self.series(streams: streams, count: 60)
        let all = Dictionary(uniqueKeysWithValues: streams.map { ($0, 60) })

        // Uninterrupted.
        let straight = try RunningDaemon(Self.model)
        defer { if straight.process.isRunning { kill(straight.process.processIdentifier, SIGKILL) } }
        let expected = try Self.exchange(straight, samples, expected: all)
        #expect(straight.stop() == 0)

        // Stopped after 25 samples of each stream, restarted on the same state directory.
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try RunningDaemon(Self.model + ["--state-dir", directory])
        defer { if first.process.isRunning { kill(first.process.processIdentifier, SIGKILL) } }
        let before = try Self.exchange(first, Array(samples.prefix(25 * streams.count)), expected: Dictionary(uniqueKeysWithValues: streams.map { ($0, 25) }))
        #expect(first.stop() == 0)
        #expect(first.text.contains("checkpoint: 4 streams"), "the three streams and the warm-up one, at stop:\n\(first.text)")

        let second = try RunningDaemon(Self.model + ["--state-dir", directory])
        defer { if second.process.isRunning { kill(second.process.processIdentifier, SIGKILL) } }
        #expect(try second.await("restored").hasPrefix("4 streams"))
        let after = try Self.exchange(second, Array(samples.dropFirst(25 * streams.count)), expected: Dictionary(uniqueKeysWithValues: streams.map { ($0, 35) }))
        #expect(second.stop() == 0)

        for stream in streams {
            #expect(before[stream].map { Array($0.keys).sorted() } == Array(1...25))
            #expect(after[stream].map { Array($0.keys).sorted() } == Array(26...60), "seq continues after the restart")
            for seq in 1...60 {
                let got = seq <= 25 ? before[stream]?[seq] : after[stream]?[seq]
                #expect(got == expected[stream]?[seq], "\(stream) seq \(seq): the forecast of an uninterrupted run")
            }
        }
    }

    @Test func killedDuringCheckpointsItRestartsAndLosesAtMostOneInterval() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let streams = 100
        // Adam, not the default Adafactor: its two moments make the records larger and so the
        // checkpoints longer, for the odd rounds' kills to land inside one.
        let arguments = Self.ports + ["--model", "elman", "--hidden", "32", "--window", "8", "--update-every", "8",
                         "--optimizer", "adam", "--lr", "0.001", "--workers", "2",
                         "--checkpoint-interval", "1", "--log-level", "debug", "--state-dir", directory]
        let context = try ZMQContext()
        var t = 1_700_000_000.0
        var rng = SystemRandomNumberGenerator()
        var restoredCounts: [Int] = [], duringCheckpoint = 0
        for round in 0..<8 {
            let daemon = try RunningDaemon(arguments)
            defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
            let restored = try daemon.await("restored")
            restoredCounts.append(Int(restored.prefix { $0.isNumber }) ?? -1)
            #expect(!daemon.text.contains("set aside"), "round \(round): nothing damaged:\n\(daemon.text)")
            let pub = try ZMQSocket(context, type: .pub)
            try pub.setSendHighWaterMark(100_000)
            try pub.connect(try daemon.await("samples in:"))
            _ = try daemon.await("ready")
            Thread.sleep(forTimeInterval: 0.2)  // the slow joiner
            // Every stream gets samples five times a second. Even rounds: SIGKILL at a random
            // moment after the first committed checkpoint; odd rounds: just after a checkpoint
            // starts, while its records are being written. A checkpoint of these 100 streams
            // (3.5 MB) took 17 to 29 ms in a debug build here, so odd rounds watch the log every
            // millisecond between sends and kill within a few of the start.
            let earliest = Date().addingTimeInterval(Double.random(in: 1.3...2.6, using: &rng))
            let deadline = Date().addingTimeInterval(20)
            func started() -> Int { daemon.text.components(separatedBy: "checkpoint: started").count - 1 }
            func committed() -> Int { daemon.text.components(separatedBy: "] checkpoint: ").count - 1 - started() }
            var startsSeen = 0
            sending: while Date() < deadline {
                for s in 0..<streams {
                    _ = try pub.sendMultipart([Array("s\(s)".utf8), Array(#"{"v": \#(sin(t + Double(s))), "t": \#(t)}"#.utf8)])
                }
                t += 1
                let next = Date().addingTimeInterval(0.2)
                if round % 2 == 1, startsSeen > 0 {
                    while Date() < next {
                        if started() > startsSeen { break sending }
                        Thread.sleep(forTimeInterval: 0.001)
                    }
                    continue
                }
                Thread.sleep(until: next)
                guard committed() >= 1 else { continue }
                if round % 2 == 0 {
                    if Date() >= earliest { break }
                } else {
                    startsSeen = started()
                }
            }
            if round % 2 == 1 {
                Thread.sleep(forTimeInterval: Double.random(in: 0...0.003, using: &rng))
                if started() > committed() { duringCheckpoint += 1 }
            }
            kill(daemon.process.processIdentifier, SIGKILL)
            let killed = Date().timeIntervalSince1970
            let exitDeadline = Date().addingTimeInterval(5)
            while daemon.process.isRunning && Date() < exitDeadline { Thread.sleep(forTimeInterval: 0.01) }

            // What a restart will find: the last committed checkpoint, whole and recent.
            let store = try CheckpointStore(directory: directory, create: false)
            let last = try #require(try store.lastCheckpoint(), "round \(round): a checkpoint was committed")
            #expect(killed - last.at < 1 + 2, "round \(round): the last checkpoint is \(killed - last.at) s old")
            var records = 0
            try store.forEachRecord { _, raw in
                records += 1
                #expect(throws: Never.self) { _ = try StreamRecord.decode(raw) }
            }
            #expect(records == streams, "round \(round)")
        }
        #expect(restoredCounts.first == 0)
        #expect(restoredCounts.dropFirst().allSatisfy { $0 == streams }, "\(restoredCounts)")
        #expect(duringCheckpoint >= 1, "at least one kill landed inside a checkpoint")
    }

    @Test func damagedCheckpointsAreSetAsideAndTheDaemonStarts() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let streams = ["a", "b", "c", "d"]
        let first = try RunningDaemon(Self.model + ["--state-dir", directory])
        defer { if first.process.isRunning { kill(first.process.processIdentifier, SIGKILL) } }
        _ = try Self.exchange(first, Self.series(streams: streams, count: 10), expected: Dictionary(uniqueKeysWithValues: streams.map { ($0, 10) }))
        #expect(first.stop() == 0)

        // Damage three records: truncated, a flipped bit, a format no rnnd wrote (0).
        do {
            let store = try CheckpointStore(directory: directory, create: false)
            func record(_ id: String) throws -> [UInt8] { try #require(try store.record(id: Array(id.utf8))) }
            let a = try record("a"), b = try record("b"), c = try record("c")
            var flipped = b
            flipped[b.count / 3] ^= 0x04
            var newer = Array(c.dropLast(8))
            newer[8] = 0
            newer += withUnsafeBytes(of: newer.withUnsafeBytes { xxh64($0) }) { Array($0) }
            try store.transaction { writer in
                try writer.put(id: Array("a".utf8), record: Array(a.prefix(a.count - 100)), savedAt: 0)
                try writer.put(id: Array("b".utf8), record: flipped, savedAt: 0)
                try writer.put(id: Array("c".utf8), record: newer, savedAt: 0)
            }
        }
        let second = try RunningDaemon(Self.model + ["--state-dir", directory])
        defer { if second.process.isRunning { kill(second.process.processIdentifier, SIGKILL) } }
        #expect(try second.await("restored").hasPrefix("2 streams"), "d and the warm-up stream")
        let log = second.text
        for (stream, reason) in [("a", "checksum_mismatch"), ("b", "checksum_mismatch"), ("c", "unsupported_version")] {
            #expect(log.contains("checkpoint set aside") && log.contains("reason=\(reason)") && log.contains("stream=\(stream)"), "\(stream): \(reason)\n\(log)")
        }
        // The damaged streams start afresh (seq 1), the sound one goes on (seq 11).
        let later = Self.series(streams: streams, count: 11).suffix(4)
        let forecasts = try Self.exchange(second, Array(later), expected: Dictionary(uniqueKeysWithValues: streams.map { ($0, 1) }))
        #expect(forecasts["a"]?.keys.first == 1 && forecasts["b"]?.keys.first == 1 && forecasts["c"]?.keys.first == 1)
        #expect(forecasts["d"]?.keys.first == 11)
        #expect(second.stop() == 0)
        let aside = try CheckpointStore(directory: directory, create: false).setAsideList()
        #expect(aside.map { String(decoding: $0.id, as: UTF8.self) }.sorted() == ["a", "b", "c"], "kept, not deleted")

        // A database file that is not one at all: moved aside, the daemon starts afresh.
        try Data("not a database, not at all".utf8).write(to: URL(fileURLWithPath: directory + "/rnnd.sqlite"))
        try? FileManager.default.removeItem(atPath: directory + "/rnnd.sqlite-wal")
        let fresh = try RunningDaemon(Self.model + ["--state-dir", directory])
        defer { if fresh.process.isRunning { kill(fresh.process.processIdentifier, SIGKILL) } }
        #expect(try fresh.await("restored").hasPrefix("0 streams"))
        #expect(fresh.text.contains("damaged") && fresh.text.contains("moved to"))
        #expect(fresh.stop() == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(files.contains { $0.hasPrefix("rnnd.sqlite.damaged-") })
    }

    /// Every stored record, by stream id, as the store holds it.
    static func storedRecords(_ directory: String) throws -> [String: [UInt8]] {
        let store = try CheckpointStore(directory: directory, readOnly: true)
        var records: [String: [UInt8]] = [:]
        try store.forEachRecord { id, raw in records[String(decoding: id, as: UTF8.self)] = Array(raw) }
        return records
    }

    /// Waits for a daemon that exits on its own; its exit status.
    static func exitStatus(_ daemon: RunningDaemon, seconds: Double = 10) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while daemon.process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        return daemon.process.isRunning ? nil : daemon.process.terminationStatus
    }

    @Test func aShapeChangeDoesNotDeleteState() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let streams = ["a", "b", "c"]
        let first = try RunningDaemon(Self.model + ["--state-dir", directory])
        defer { if first.process.isRunning { kill(first.process.processIdentifier, SIGKILL) } }
        _ = try Self.exchange(first, Self.series(streams: streams, count: 10), expected: Dictionary(uniqueKeysWithValues: streams.map { ($0, 10) }))
        #expect(first.stop() == 0)
        // Stream c's record as a newer rnnd would write it (the next format): usable by that rnnd.
        do {
            let store = try CheckpointStore(directory: directory, create: false)
            var newer = Array(try #require(try store.record(id: Array("c".utf8))).dropLast(8))
            newer[8] = UInt8(StreamRecord.formatVersion) + 1
            newer += withUnsafeBytes(of: newer.withUnsafeBytes { xxh64($0) }) { Array($0) }
            try store.put(id: Array("c".utf8), record: newer, savedAt: 0)
        }
        let stored = try Self.storedRecords(directory)
        #expect(stored.keys.sorted() == ["a", "b", "c", "warmup"])

        // Another hidden size: the daemon refuses to start (78), says what differs, for how many
        // streams, which setting and how to go on; the store stays as it was.
        let refused = try RunningDaemon(Self.model + ["--hidden", "9", "--state-dir", directory])
        defer { if refused.process.isRunning { kill(refused.process.processIdentifier, SIGKILL) } }
        #expect(Self.exitStatus(refused) == 78, "\(refused.text)")
        for part in ["hidden 8 → 9 (3 streams)", "record format \(StreamRecord.formatVersion + 1), written by a newer rnnd (1 stream)", "model.hidden (--hidden)",
                     "on_model_change = \"keep\"", "\"fresh\"", "Nothing was started"] {
            #expect(refused.text.contains(part), "\(part):\n\(refused.text)")
        }
        #expect(try Self.storedRecords(directory) == stored)
        #expect(try CheckpointStore(directory: directory, readOnly: true).setAsideList().isEmpty)

        // keep: the daemon starts; those streams are not loaded and their samples are refused, a
        // new stream is served, and their records stay byte for byte.
        let kept = try RunningDaemon(Self.model + ["--hidden", "9", "--on-model-change", "keep", "--state-dir", directory])
        defer { if kept.process.isRunning { kill(kept.process.processIdentifier, SIGKILL) } }
        _ = try kept.await("restored 0 streams")
        #expect(kept.text.contains("4 stored streams not restored, their records kept as they are"), "\(kept.text)")
        let client = try ForecastClient(samplesIn: try kept.await("samples in:"), forecastsOut: try kept.await("forecasts out:"), warmup: nil)
        _ = try kept.await("ready")
        // Later than the series, and in the past: a time ahead of the host's clock is refused.
        var t = Date().timeIntervalSince1970.rounded(.down) - 86_400
        let deadline = Date().addingTimeInterval(10)
        while client.messages["new"] == nil && Date() < deadline {
            try client.send("new", #"{"v": 1, "t": \#(t)}"#)
            t += 1
            try client.collect(until: { $0["new"] != nil }, seconds: 0.2)
        }
        for stream in streams { try client.send(stream, #"{"v": 1, "t": \#(t)}"#) }
        try client.send("new", #"{"v": 2, "t": \#(t + 1)}"#)
        try client.collect(until: { $0["new", default: []].count >= 2 }, seconds: 5)
        #expect(client.messages["new"] != nil && streams.allSatisfy { client.messages[$0] == nil })
        #expect(kept.stop() == 0)
        let stopped = try #require(kept.text.split(separator: "\n").last { $0.contains("stopped:") })
        #expect(DaemonEndToEndTests.counter("model_changed", in: String(stopped)) == 3, "\(stopped)")
        let afterKeep = try Self.storedRecords(directory)
        #expect(afterKeep.filter { $0.key != "new" } == stored, "the kept records are untouched")
        #expect(afterKeep["new"] != nil)

        // The configuration back, with fresh: a and b continue where they stopped; c (a newer
        // rnnd's) and new (hidden 9) are set aside, not deleted, and start afresh.
        let back = try RunningDaemon(Self.model + ["--on-model-change", "fresh", "--state-dir", directory])
        defer { if back.process.isRunning { kill(back.process.processIdentifier, SIGKILL) } }
        #expect(try back.await("restored").hasPrefix("3 streams"), "\(back.text)")
        #expect(back.text.contains("2 stored streams set aside and started afresh"), "\(back.text)")
        let later = Self.series(streams: streams, count: 11).suffix(3)
        let forecasts = try Self.exchange(back, Array(later), expected: Dictionary(uniqueKeysWithValues: streams.map { ($0, 1) }))
        #expect(forecasts["a"]?.keys.first == 11 && forecasts["b"]?.keys.first == 11, "a and b go on")
        #expect(forecasts["c"]?.keys.first == 1)
        #expect(back.stop() == 0)
        let aside = try CheckpointStore(directory: directory, readOnly: true).setAsideList()
        #expect(aside.map { "\(String(decoding: $0.id, as: UTF8.self)) \($0.reason)" }.sorted() == ["c unsupported_version", "new model_changed"])
    }

    @Test func systemdHearsReadyWatchdogReloadAndStopping() throws {
        let receiver = try SystemdNotifierTests.Receiver(abstract: false)
        let config = Self.temporaryDirectory() + ".toml"
        try "[model]\nlr = 0.001\n".write(toFile: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: config) }
        let daemon = try RunningDaemon(
            Self.model + ["--config", config],
            environment: ["NOTIFY_SOCKET": receiver.notifySocket, "WATCHDOG_USEC": "1000000"])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        // A stale WATCHDOG_PID from the test runner would be wrong: the daemon's own pid is not
        // known before it starts, so WATCHDOG_PID is left unset (as sd_watchdog_enabled allows).
        // Before READY, the restore asks for more time (it is quick here: once).
        var beforeReady: [String] = []
        var next = try #require(receiver.receiveText())
        while !next.hasPrefix("READY=1"), beforeReady.count < 10 {
            beforeReady.append(next)
            next = try #require(receiver.receiveText())
        }
        #expect(beforeReady.first == "EXTEND_TIMEOUT_USEC=30000000" && beforeReady.allSatisfy { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") }, "\(beforeReady)")
        let ready = next
        #expect(ready.hasPrefix("READY=1\nSTATUS=") && ready.contains("streams"), "\(ready)")
        var watchdogs = 0
        for _ in 0..<6 where receiver.receiveText() == "WATCHDOG=1" { watchdogs += 1 }
        #expect(watchdogs >= 4, "pings at a quarter of the 1 s interval")

        try "[model]\nlr = 0.01\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(daemon.process.processIdentifier, SIGHUP)
        var seen: [String] = []
        while let text = receiver.receiveText(), seen.count < 10 {
            seen.append(text)
            if text.hasPrefix("READY=1") { break }
        }
        let reloading = try #require(seen.firstIndex { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") }, "\(seen)")
        #expect(seen.lastIndex { $0.hasPrefix("READY=1") }.map { $0 > reloading } == true, "\(seen)")
        _ = try daemon.await("SIGHUP: applied")
        #expect(daemon.text.contains("model.lr: 0.001 → 0.01"))

        kill(daemon.process.processIdentifier, SIGTERM)
        var stopping = false
        while let text = receiver.receiveText() {
            if text == "STOPPING=1" { stopping = true; break }
        }
        #expect(stopping)
        #expect(daemon.stop() == 0)
    }
}
