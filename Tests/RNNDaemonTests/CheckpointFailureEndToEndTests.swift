import Foundation
@testable import RNNDaemon
@testable import RNNState
import RNNWire
import Testing

/// Checkpoints that cannot be written, through the real `rnnd` binary, on a file system that is
/// really full: a tmpfs of a few megabytes of its own (``SmallFilesystem``). The daemon keeps
/// forecasting, `/healthz` and the metrics say why, nothing committed is lost, streams count as
/// saved only once committed, and a final checkpoint that fails exits 74.
@Suite(
    .timeLimit(.minutes(3)), .serialized,
    .enabled(if: SmallFilesystem.canMount, "mounting a tmpfs of its own needs root (CAP_SYS_ADMIN)"))
struct CheckpointFailureEndToEndTests {
    typealias RunningDaemon = DaemonEndToEndTests.RunningDaemon

    /// A checkpoint every second, /healthz unhealthy after 2 s without one, 6 s to stop in.
    static func arguments(_ directory: String, interval: Int = 1, maxAge: Int = 2) -> [String] {
        ServiceEndToEndTests.model + [
            "--state-dir", directory, "--metrics-listen", "127.0.0.1:0", "--checkpoint-interval", "\(interval)",
            "--checkpoint-max-age", "\(maxAge)", "--stop-timeout", "6",
        ]
    }

    /// Sends a daemon samples and counts the forecasts that come back.
    final class Feeder {
        let client: ForecastClient
        private var sent: [String: Int] = [:]

        init(_ daemon: RunningDaemon) throws {
            let samplesIn = try daemon.await("samples in:"), forecastsOut = try daemon.await("forecasts out:")
            _ = try daemon.await("ready")
            client = try ForecastClient(samplesIn: samplesIn, forecastsOut: forecastsOut, warmup: #"{"v": 1}"#)
        }

        /// Sends samples `k` in `range` of every stream (value j of stream i at time k is
        /// sin(0.7 k + j) + i, `width` values), waits for every forecast, and returns the `seq` of
        /// each stream's latest.
        func feed(_ streams: [String], _ range: Range<Int>, width: Int = 1) throws -> [String: Int] {
            for k in range {
                for (i, stream) in streams.enumerated() {
                    let values = (0..<width).map { j in "\(sin(Double(k) * 0.7 + Double(j)) + Double(i))" }.joined(separator: ", ")
                    try client.send(stream, #"{"v": [\#(values)], "t": \#(1_700_000_000 + k)}"#)
                    sent[stream, default: 0] += 1
                }
            }
            try client.collect(until: { m in streams.allSatisfy { m[$0, default: []].count >= self.sent[$0]! } }, seconds: 20)
            var seqs: [String: Int] = [:]
            for stream in streams {
                let payloads = client.messages[stream, default: []]
                #expect(payloads.count == sent[stream], "\(stream): \(payloads.count) forecasts of \(sent[stream]!) samples")
                guard let last = payloads.last,
                    let object = try JSONSerialization.jsonObject(with: Data(last)) as? [String: Any]
                else { continue }
                seqs[stream] = object["seq"] as? Int
            }
            return seqs
        }
    }

    /// Polls `condition` every 50 ms until it holds or `seconds` pass; whether it held.
    static func eventually(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return try condition()
    }

    /// The records of the store in `directory`, by stream. With `copy`, the database files are
    /// copied elsewhere and the copy is read (the state directory is full, or no daemon runs);
    /// otherwise the store is read in place, read-only, as `rnnd checkpoint list` reads it under a
    /// running daemon.
    static func stored(_ directory: String, copy: Bool) throws -> [String: [UInt8]] {
        var path = directory
        if copy {
            path = ServiceEndToEndTests.temporaryDirectory()
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: "\(directory)/rnnd.sqlite\(suffix)") {
                try FileManager.default.copyItem(atPath: "\(directory)/rnnd.sqlite\(suffix)", toPath: "\(path)/rnnd.sqlite\(suffix)")
            }
        }
        defer { if copy { try? FileManager.default.removeItem(atPath: path) } }
        var records: [String: [UInt8]] = [:]
        try CheckpointStore(directory: path, create: false, readOnly: !copy).forEachRecord { id, raw in
            records[String(decoding: id, as: UTF8.self)] = Array(raw)
        }
        return records
    }

    /// Each record's `seq`, once it has passed every check a restore makes.
    static func seqs(_ records: [String: [UInt8]]) throws -> [String: Int] {
        try records.mapValues { try StreamRecord.decode($0).seq }
    }

    static func health(_ address: String) throws -> (status: Int, text: String) {
        let reply = try HTTPProbe.request("GET", "/healthz", at: address)
        return (reply.status, reply.text)
    }

    /// Every stream at `seq`.
    static func all(_ streams: [String], at seq: Int) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: streams.map { ($0, seq) })
    }

    @Test func aFinalCheckpointThatCannotBeWrittenExits74AndThePreviousOneRestoresWhole() throws {
        let disk = try SmallFilesystem(megabytes: 4)
        let directory = disk.path + "/state"
        let streams = ["plant/a", "plant/b", "plant/c", "plant/d"]

        // A first run learns 10 samples of each stream and stops: its final checkpoint commits.
        let first = try RunningDaemon(Self.arguments(directory))
        defer { if first.process.isRunning { kill(first.process.processIdentifier, SIGKILL) } }
        #expect(try Feeder(first).feed(streams, 0..<10) == Self.all(streams, at: 10))
        #expect(first.stop() == 0)
        let committed = try Self.stored(directory, copy: true)
        #expect(try Self.seqs(committed).filter { streams.contains($0.key) } == Self.all(streams, at: 10))

        // A second run learns 10 more, and finds the disk full when it stops: its final
        // checkpoint fails, is retried within --stop-timeout, and the daemon exits 74.
        let second = try RunningDaemon(Self.arguments(directory, interval: 3600, maxAge: 3600))
        defer { if second.process.isRunning { kill(second.process.processIdentifier, SIGKILL) } }
        #expect(try second.await("restored").hasPrefix("5 streams"))
        #expect(try Feeder(second).feed(streams, 10..<20) == Self.all(streams, at: 20))
        try disk.fill()
        let stopped = Date()
        let status = second.stop(seconds: 20)
        #expect(status == 74, "\(second.text)")
        #expect(Date().timeIntervalSince(stopped) < 6, "within --stop-timeout")
        #expect(MetricsEndToEndTests.logs(second, "stopped:"))
        let log = second.text
        #expect(log.contains("final checkpoint failed") && log.contains("disk_full") && log.contains("exiting 74"), "\(log)")
        #expect(log.components(separatedBy: "final checkpoint: worker").count - 1 >= 3, "retried:\n\(log)")

        // What was committed stays as it was, byte for byte.
        #expect(try Self.stored(directory, copy: true) == committed)

        // With room again, a restart restores every stream whole, as the first run left it: what
        // the second run learned is lost, as exit 74 said.
        try disk.free()
        let third = try RunningDaemon(Self.arguments(directory))
        defer { if third.process.isRunning { kill(third.process.processIdentifier, SIGKILL) } }
        #expect(try third.await("restored").hasPrefix("5 streams"))
        #expect(!third.text.contains("set aside"))
        #expect(try Feeder(third).feed(streams, 20..<22) == Self.all(streams, at: 12))
        #expect(third.stop() == 0)
    }

    /// A stream id beginning with `prefix` that the worker `worker` of two learns.
    static func stream(_ prefix: String, worker: Int) -> String {
        (0...).lazy.map { "\(prefix)/\($0)" }.first { id in
            workerIndex(hash: Array(id.utf8).withUnsafeBytes { streamHash($0) }, workers: 2) == worker
        }!
    }

    @Test func theFinalCheckpointCommitsEachWorkersStreamsOnTheirOwn() throws {
        let disk = try SmallFilesystem(megabytes: 8)
        let directory = disk.path + "/state"
        // A stream of 1 value (a record of 20 kB) on one worker, one of 64 (850 kB) on the other.
        let small = Self.stream("small", worker: 0), wide = Self.stream("wide", worker: 1)
        let first = try RunningDaemon(Self.arguments(directory))
        defer { if first.process.isRunning { kill(first.process.processIdentifier, SIGKILL) } }
        let feeder = try Feeder(first)
        #expect(try feeder.feed([small], 0..<10) == [small: 10])
        #expect(try feeder.feed([wide], 0..<10, width: 64) == [wide: 10])
        #expect(first.stop() == 0)

        // The second run learns 10 more of each; at stop there is room for the small stream's
        // commit (a few 16 kB pages of the write-ahead log) but not for the wide one's.
        let second = try RunningDaemon(Self.arguments(directory, interval: 3600, maxAge: 3600))
        defer { if second.process.isRunning { kill(second.process.processIdentifier, SIGKILL) } }
        let again = try Feeder(second)
        #expect(try again.feed([small], 10..<20) == [small: 20])
        #expect(try again.feed([wide], 10..<20, width: 64) == [wide: 20])
        try disk.fill()
        try disk.free(bytes: 240_000)
        #expect(second.stop(seconds: 20) == 74, "\(second.text)")
        #expect(MetricsEndToEndTests.logs(second, "stopped:"))
        #expect(second.text.contains("what the streams of worker 1 learned since their last commit is not saved"), "\(second.text)")
        #expect(second.text.contains("the other workers' "), "\(second.text)")

        // One worker's streams are committed, the other's are as the first run left them.
        let seqs = try Self.seqs(Self.stored(directory, copy: true))
        #expect(seqs[small] == 20 && seqs[wide] == 10, "\(seqs)")
        try disk.free()
        let third = try RunningDaemon(Self.arguments(directory))
        defer { if third.process.isRunning { kill(third.process.processIdentifier, SIGKILL) } }
        #expect(try third.await("restored").hasPrefix("3 streams"), "the warm-up stream and these two")
        #expect(!third.text.contains("set aside"))
        let last = try Feeder(third)
        #expect(try last.feed([small], 20..<21) == [small: 21])
        #expect(try last.feed([wide], 20..<21, width: 64) == [wide: 11])
        #expect(third.stop() == 0)
    }

    @Test func aFailingPeriodicCheckpointFlipsHealthzAndItsStreamsStayUnsavedUntilCommitted() throws {
        let disk = try SmallFilesystem(megabytes: 4)
        let directory = disk.path + "/state"
        let streams = ["line/a", "line/b", "line/c"]
        let daemon = try RunningDaemon(Self.arguments(directory))
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let address = try daemon.await("metrics on: http://")
        let feeder = try Feeder(daemon)
        #expect(try feeder.feed(streams, 0..<10) == Self.all(streams, at: 10))
        #expect(try Self.eventually(10) { try Self.seqs(Self.stored(directory, copy: false)).filter { streams.contains($0.key) } == Self.all(streams, at: 10) })
        #expect(try Self.health(address).status == 200)

        // The disk fills: checkpoints fail, the daemon forecasts on, and after 2 s without a
        // commit /healthz says why.
        try disk.fill()
        #expect(try feeder.feed(streams, 10..<15) == Self.all(streams, at: 15))
        var health = (status: 0, text: "")
        #expect(try Self.eventually(10) { health = try Self.health(address); return health.status == 503 }, "\(daemon.text)")
        #expect(health.text.hasPrefix("checkpoints failing since ") && health.text.contains("disk_full: SQLite error 13"), "\(health.text)")
        let failing = try MetricsEndToEndTests.scrape(address)
        #expect((failing.value("rnnd_checkpoints_failed_total", ["reason": "disk_full"]) ?? 0) >= 1)
        #expect((failing.value("rnnd_checkpoint_consecutive_failures") ?? 0) >= 1)
        #expect((failing.value("rnnd_checkpoint_age_seconds") ?? 0) >= 2)
        #expect(daemon.text.contains("checkpoint failed (disk_full"))

        // Room again: the next attempt, within a second, commits every stream that changed.
        try disk.free()
        #expect(try Self.eventually(5) { try Self.health(address).status == 200 }, "\(daemon.text)")
        let recovered = try MetricsEndToEndTests.scrape(address)
        #expect(recovered.value("rnnd_checkpoint_consecutive_failures") == 0)
        #expect(try Self.seqs(Self.stored(directory, copy: false)).filter { streams.contains($0.key) } == Self.all(streams, at: 15))

        // Full again, the streams learn 5 more samples and a checkpoint of them fails; the
        // daemon stops at once when the room comes back. The streams sent in the failed
        // checkpoint were never counted as saved: the final checkpoint writes them.
        try disk.fill()
        #expect(try feeder.feed(streams, 15..<20) == Self.all(streams, at: 20))
        func failed() throws -> Double {
            try MetricsEndToEndTests.scrape(address).value("rnnd_checkpoints_failed_total", ["reason": "disk_full"]) ?? 0
        }
        let before = try failed()
        #expect(try Self.eventually(10) { try failed() >= before + 2 }, "two failed attempts after the samples were learned")
        try disk.free()
        #expect(daemon.stop() == 0, "\(daemon.text)")
        #expect(try Self.seqs(Self.stored(directory, copy: true)).filter { streams.contains($0.key) } == Self.all(streams, at: 20))
    }

    @Test func aFullDiskLosesNothingCommittedAndOnceThereIsRoomEveryChangedStreamIsWritten() throws {
        // The store fills the file system itself: every checkpoint of 24 streams that all changed
        // grows the write-ahead log, until a commit finds no room.
        let disk = try SmallFilesystem(megabytes: 3)
        let directory = disk.path + "/state"
        let streams = (0..<24).map { "cell/\($0)" }
        let daemon = try RunningDaemon(Self.arguments(directory))
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let address = try daemon.await("metrics on: http://")
        let feeder = try Feeder(daemon)
        var k = 0
        func diskFullFailures() throws -> Double {
            try MetricsEndToEndTests.scrape(address).value("rnnd_checkpoints_failed_total", ["reason": "disk_full"]) ?? 0
        }
        // A sample of every stream a second, each forecast received, until checkpoints fail.
        let deadline = Date().addingTimeInterval(60)
        while try diskFullFailures() == 0, Date() < deadline {
            #expect(try feeder.feed(streams, k..<k + 1) == Self.all(streams, at: k + 1))
            k += 1
            Thread.sleep(forTimeInterval: 0.5)
        }
        try #require(try diskFullFailures() > 0, "the disk never filled (\(disk.available) bytes free):\n\(daemon.text)")
        // The last commit, whole: every record passes the checks of a restore.
        let committed = try Self.stored(directory, copy: true)
        let committedSeqs = try Self.seqs(committed)
        #expect(streams.allSatisfy { committedSeqs[$0] != nil }, "\(committedSeqs)")

        // Full, the daemon forecasts every sample, /healthz and the metrics say why.
        for _ in 0..<3 {
            #expect(try feeder.feed(streams, k..<k + 1) == Self.all(streams, at: k + 1))
            k += 1
        }
        var health = (status: 0, text: "")
        #expect(try Self.eventually(10) { health = try Self.health(address); return health.status == 503 })
        #expect(health.text.contains("disk_full: SQLite error 13: database or disk is full"), "\(health.text)")
        #expect((try MetricsEndToEndTests.scrape(address).value("rnnd_checkpoint_consecutive_failures") ?? 0) >= 1)
        // Nothing that was committed is lost: the store holds it still, byte for byte.
        #expect(try Self.stored(directory, copy: true) == committed)

        // Room again (the file system grown): the next checkpoint writes every changed stream.
        try disk.resize(megabytes: 64)
        #expect(try Self.eventually(5) { try Self.health(address).status == 200 }, "\(daemon.text)")
        #expect(try Self.seqs(Self.stored(directory, copy: false)).filter { streams.contains($0.key) } == Self.all(streams, at: k))
        #expect(daemon.stop() == 0)

        // And a restart continues every stream from there.
        let again = try RunningDaemon(Self.arguments(directory))
        defer { if again.process.isRunning { kill(again.process.processIdentifier, SIGKILL) } }
        #expect(try again.await("restored").hasPrefix("\(streams.count + 1) streams"))
        #expect(try Feeder(again).feed(streams, k..<k + 1) == Self.all(streams, at: k + 1))
        #expect(again.stop() == 0)
    }
}
