import Foundation
@testable import RNNDaemon
@testable import RNNState
@testable import RNNTools
@testable import RNNWire
import Synchronization
import Testing
import ZeroMQ

/// Scale-out through the real binaries (docs/scaling.md): a proxy for samples and one for
/// forecasts, two `rnnd run --shard` instances between them, one publisher and one subscriber.
@Suite(.timeLimit(.minutes(3)))
struct ScalingEndToEndTests {
    typealias RunningDaemon = DaemonEndToEndTests.RunningDaemon

    /// A running `rnnd proxy`, its stderr collected.
    static func proxy(_ arguments: [String]) throws -> RunningDaemon {
        try RunningDaemon(arguments, command: "proxy")
    }

    /// The publisher and the subscriber, at the two proxies. Forecast topics carry the prefix of
    /// the instance that made them (`i0/`, `i1/`), so that the test sees who forecast what.
    final class Client {
        /// The sockets; this client warms up per instance (`warmUp`) and reads seqs itself.
        let sockets: ForecastClient
        /// Forecasts received: instance → stream → the seq of each, in arrival order.
        var seqs: [String: [String: [Int]]] = [:]

        init(samplesIn: String, forecastsOut: String) throws {
            sockets = try ForecastClient(samplesIn: samplesIn, forecastsOut: forecastsOut, warmup: nil)
        }

        func send(_ stream: String, _ v: Double, t: Double) throws {
            try sockets.send(stream, #"{"v": \#(v), "t": \#(t)}"#)
        }

        /// Receives forecasts until `done` holds, or `seconds` pass.
        func collect(seconds: Double, until done: ([String: [String: [Int]]]) -> Bool) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while !done(seqs) && Date() < deadline {
                guard case .frames(let frames) = try sockets.sub.receiveFrames(), frames.count == 2 else { continue }
                let topic = String(decoding: frames[0], as: UTF8.self)
                let object = try #require(try JSONSerialization.jsonObject(with: Data(frames[1])) as? [String: Any])
                let stream = try #require(object["stream"] as? String), seq = try #require(object["seq"] as? Int)
                let instance = String(topic.prefix { $0 != "/" })
                #expect(topic == instance + "/" + stream)
                seqs[instance, default: [:]][stream, default: []].append(seq)
            }
        }

        /// Sends each warm-up stream (`instance` → stream id) until a forecast of it comes back
        /// from its instance: every connection along the way is then up (the slow joiners).
        func warmUp(_ streams: [String: String], t: inout Double) throws {
            let deadline = Date().addingTimeInterval(20)
            func arrived(_ s: [String: [String: [Int]]]) -> Bool { streams.allSatisfy { s[$0.key]?[$0.value] != nil } }
            while !arrived(seqs) && Date() < deadline {
                for stream in streams.values { try send(stream, 1, t: t) }
                t += 1
                try collect(seconds: 0.2, until: arrived)
            }
            try #require(arrived(seqs), "no forecast of \(streams) came back: \(seqs.mapValues(\.keys))")
            for (instance, stream) in streams { seqs[instance]?[stream] = nil }
        }
    }

    static func shard(of stream: String) -> Int {
        StreamShard.index(hash: StreamShard.hash(of: Array(stream.utf8)), count: 2)
    }

    @Test func twoShardsBehindProxiesForecastEveryStreamOnceAndARestartContinues() throws {
        // The proxies, on free ports: their log says which.
        let samples = try Self.proxy(["--frontend", "@tcp://127.0.0.1:*", "--backend", "@tcp://127.0.0.1:*"])
        let forecasts = try Self.proxy(["--frontend", "@tcp://127.0.0.1:*", "--backend", "@tcp://127.0.0.1:*"])
        let samplesIn = try samples.await("frontend:"), samplesOut = try samples.await("backend:")
        let forecastsIn = try forecasts.await("frontend:"), forecastsOut = try forecasts.await("backend:")
        _ = try samples.await("ready")
        _ = try forecasts.await("ready")

        let directories = [ServiceEndToEndTests.temporaryDirectory(), ServiceEndToEndTests.temporaryDirectory()]
        defer { for d in directories { try? FileManager.default.removeItem(atPath: d) } }
        func instance(_ i: Int, shard: String? = nil, sub: String = ">" + samplesOut, pub: String = ">" + forecastsIn) throws -> RunningDaemon {
            try RunningDaemon([
                "--sub", sub, "--pub", pub, "--shard", shard ?? "\(i)/2", "--forecast-topic-prefix", "i\(i)/",
                "--state-dir", directories[i], "--model", "gru", "--hidden", "8", "--window", "4", "--workers", "2",
            ])
        }
        var instances = [try instance(0), try instance(1)]
        defer { for d in instances where d.process.isRunning { kill(d.process.processIdentifier, SIGKILL) } }
        for d in instances { _ = try d.await("ready") }

        let streams = (0..<100).map { "sensor-\(String(format: "%03d", $0))" }
        let owner = Dictionary(uniqueKeysWithValues: streams.map { ($0, Self.shard(of: $0)) })
        let warmups = Dictionary(uniqueKeysWithValues: (0..<2).map { i in ("i\(i)", (0...).lazy.map { "warmup-\($0)" }.first { Self.shard(of: $0) == i }!) })
        let client = try Client(samplesIn: samplesIn, forecastsOut: forecastsOut)
        var warmT = 1_600_000_000.0
        try client.warmUp(warmups, t: &warmT)

        // 20 samples of each of 100 streams, through the proxies.
        func send(rounds: Range<Int>) throws {
            for round in rounds {
                for (k, stream) in streams.enumerated() {
                    try client.send(stream, sin(Double(round) * 0.5 + Double(k)), t: 1_700_000_000 + Double(round))
                }
            }
        }
        func received(_ s: [String: [String: [Int]]], _ stream: String) -> Int {
            s.values.reduce(0) { $0 + ($1[stream]?.count ?? 0) }
        }
        try send(rounds: 0..<20)
        try client.collect(seconds: 30) { s in streams.allSatisfy { received(s, $0) >= 20 } }

        // Every stream forecast by exactly one instance, its shard's, every seq once: none twice,
        // none missing.
        for stream in streams {
            let by = client.seqs.filter { $0.value[stream] != nil }.map(\.key)
            #expect(by == ["i\(owner[stream]!)"], "\(stream) (shard \(owner[stream]!)) forecast by \(by)")
            #expect(client.seqs["i\(owner[stream]!)"]?[stream] == Array(1...20), "\(stream)")
        }
        let counts = (0..<2).map { i in streams.count { owner[$0] == i } }
        #expect(counts.allSatisfy { $0 >= 30 }, "the hash splits 100 streams roughly in half: \(counts)")

        // Instance 1 stops (its checkpoint at stop holds its streams and its warm-up) and comes
        // back on its state directory: its streams go on from their checkpoints.
        #expect(instances[1].stop() == 0)
        #expect(instances[1].text.contains("checkpoint: \(counts[1] + 1) streams"), "\(instances[1].text)")
        let stopped1 = try instances[1].await("stopped:")
        #expect(stopped1.contains("other_shard="), "\(stopped1)")
        instances[1] = try instance(1)
        #expect(try instances[1].await("] restored").hasPrefix("\(counts[1] + 1) streams"), "\(instances[1].text)")
        _ = try instances[1].await("ready")
        try client.warmUp(["i1": warmups["i1"]!], t: &warmT)

        try send(rounds: 20..<30)
        try client.collect(seconds: 30) { s in streams.allSatisfy { received(s, $0) >= 30 } }
        for stream in streams {
            let by = client.seqs.filter { $0.value[stream] != nil }.map(\.key)
            #expect(by == ["i\(owner[stream]!)"], "\(stream) forecast by \(by)")
            #expect(client.seqs["i\(owner[stream]!)"]?[stream] == Array(1...30), "\(stream): seq continues after the restart")
        }

        // Every sample reached both instances, and each learned only its own.
        var learned = 0, otherShard = 0
        for (i, d) in instances.enumerated() {
            #expect(d.stop() == 0)
            let line = try d.await("stopped:")
            func counter(_ key: String) -> Int {
                line.split(whereSeparator: { $0 == " " || $0 == "{" || $0 == "," || $0 == "}" })
                    .first { $0.hasPrefix(key + "=") }.flatMap { Int($0.dropFirst(key.count + 1)) } ?? 0
            }
            learned += counter("learned")
            otherShard += counter("other_shard")
            #expect(counter("learned") >= counts[i] * (i == 1 ? 10 : 30), "instance \(i): \(line)")
            #expect(!d.text.contains("warning"), "instance \(i) warned:\n\(d.text)")
        }
        #expect(otherShard >= counts[0] * 10 + counts[1] * 30, "the other instance's samples of the last ten rounds at least")

        // A store that holds another shard's streams: left alone, said once.
        let swapped = try instance(1, shard: "0/2", sub: "@tcp://127.0.0.1:*", pub: "@tcp://127.0.0.1:*")
        defer { if swapped.process.isRunning { kill(swapped.process.processIdentifier, SIGKILL) } }
        #expect(try swapped.await("] restored").hasPrefix("0 streams"), "\(swapped.text)")
        _ = try swapped.await("stored streams not restored")
        #expect(swapped.text.contains("\(counts[1] + 1) stored streams not restored: other shards than 0/2 own them"), "\(swapped.text)")
        #expect(swapped.stop() == 0)
        #expect(try CheckpointStore(directory: directories[1], create: false).list().count == counts[1] + 1, "the records are kept")

        #expect(samples.stop() == 0, "\(samples.text)")
        #expect(forecasts.stop() == 0, "\(forecasts.text)")
        #expect(samples.text.contains("stopped"))
    }

    /// docs/scaling.md's re-sharding: from 2 shards to 3 with `checkpoint export --shard` and
    /// `import`, every stream ends in exactly one new store, its new owner's, and goes on there.
    @Test func reshardingMovesEveryStreamToItsNewOwnerOnce() throws {
        let root = try ReplayCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        func path(_ name: String) -> String { root.appendingPathComponent(name).path }
        func rnnd(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try ReplayCommandTests.run(arguments)
        }
        func stored(_ directory: String) throws -> Set<String> {
            Set(try CheckpointStore(directory: directory, create: false).list().map { String(decoding: $0.id, as: UTF8.self) })
        }

        // 30 streams learned by one instance: split into 2 shards (a re-sharding from 1 to 2).
        let streams = (0..<30).map { "line-\($0)/flow" }
        let first = try RunningDaemon(ServiceEndToEndTests.model + ["--state-dir", path("one")])
        defer { if first.process.isRunning { kill(first.process.processIdentifier, SIGKILL) } }
        _ = try ServiceEndToEndTests.exchange(
            first, ServiceEndToEndTests.series(streams: streams, count: 5), expected: Dictionary(uniqueKeysWithValues: streams.map { ($0, 5) }))
        #expect(first.stop() == 0)
        let all = try stored(path("one"))
        #expect(all == Set(streams + ["warmup"]))
        for i in 0..<2 {
            let export = try rnnd(["checkpoint", "export", "--shard", "\(i)/2", "--out", path("two-\(i).out"), "--state-dir", path("one")])
            #expect(export.status == 0, "\(export.stderr)")
            let imported = try rnnd(["checkpoint", "import", path("two-\(i).out"), "--state-dir", path("old-\(i)")])
            #expect(imported.status == 0, "\(imported.stderr)")
        }

        // From 2 to 3: every new shard's streams from every old store, into a new store each.
        for j in 0..<3 {
            for i in 0..<2 {
                let export = try rnnd(["checkpoint", "export", "--shard", "\(j)/3", "--out", path("x-\(j)"), "--state-dir", path("old-\(i)")])
                #expect(export.status == 0, "\(export.stderr)")
                #expect(export.stdout.hasPrefix("exported "), "\(export.stdout)")
            }
            let imported = try rnnd(["checkpoint", "import", path("x-\(j)"), "--state-dir", path("new-\(j)")])
            #expect(imported.status == 0, "\(imported.stderr)")
        }
        var seen = Set<String>()
        for j in 0..<3 {
            let mine = try stored(path("new-\(j)"))
            #expect(mine == all.filter { Self.shard(of: $0, count: 3) == j }, "new shard \(j)")
            #expect(mine.isDisjoint(with: seen))
            seen.formUnion(mine)
        }
        #expect(seen == all, "none lost")

        // Importing twice is refused whole; a file of another shard is left out with --shard.
        let again = try rnnd(["checkpoint", "import", path("x-0"), "--state-dir", path("new-0")])
        #expect(again.status == 73 && again.stderr.contains("stored already") && again.stderr.contains("nothing was imported"), "\(again.stderr)")
        let filtered = try rnnd(["checkpoint", "import", path("x-0"), path("x-1"), "--shard", "1/3", "--replace", "--state-dir", path("new-1")])
        #expect(filtered.status == 0 && filtered.stdout.contains("of other shards than 1/3 left out"), "\(filtered.stdout)\(filtered.stderr)")
        #expect(try stored(path("new-1")) == all.filter { Self.shard(of: $0, count: 3) == 1 })

        // The instance of the new shard that owns "warmup" (ForecastClient warms up on that
        // stream) restores exactly its streams and goes on with them.
        let k = Self.shard(of: "warmup", count: 3)
        let ownStreams = streams.filter { Self.shard(of: $0, count: 3) == k }
        let next = try RunningDaemon(ServiceEndToEndTests.model + ["--shard", "\(k)/3", "--state-dir", path("new-\(k)")])
        defer { if next.process.isRunning { kill(next.process.processIdentifier, SIGKILL) } }
        let ownCount = try stored(path("new-\(k)")).count
        #expect(try next.await("] restored").hasPrefix("\(ownCount) streams"), "\(next.text)")
        let samples = Array(ServiceEndToEndTests.series(streams: ownStreams, count: 6).suffix(ownStreams.count))
        let forecasts = try ServiceEndToEndTests.exchange(next, samples, expected: Dictionary(uniqueKeysWithValues: ownStreams.map { ($0, 1) }))
        for stream in ownStreams {
            #expect(forecasts[stream].map { Array($0.keys) } == [6], "\(stream): seq goes on from the old shard's checkpoint")
        }
        #expect(next.stop() == 0)
        #expect(!next.text.contains("not restored"), "\(next.text)")
    }

    static func shard(of stream: String, count: Int) -> Int {
        StreamShard.index(hash: StreamShard.hash(of: Array(stream.utf8)), count: count)
    }

    @Test func badProxyFlagsExit64AndABusyAddressExits69() throws {
        let bad = try Self.proxy(["--frontend", "tcp://127.0.0.1:5556", "--backend", "@tcp://127.0.0.1:*"])
        bad.waitUntilExit()
        #expect(bad.process.terminationStatus == 64)
        #expect(bad.text.contains("--frontend: \"tcp://127.0.0.1:5556\": an endpoint starts with '@' (bind) or '>' (connect)"))

        let first = try Self.proxy(["--frontend", "@tcp://127.0.0.1:*", "--backend", "@tcp://127.0.0.1:*"])
        let taken = try first.await("frontend:")
        let second = try Self.proxy(["--frontend", "@" + taken, "--backend", "@tcp://127.0.0.1:*"])
        second.waitUntilExit()
        #expect(second.process.terminationStatus == 69)
        #expect(second.text.contains("Address already in use"))
        #expect(first.stop() == 0)

        let tooLarge = try Self.proxy(["--frontend", "@tcp://127.0.0.1:*", "--backend", "@tcp://127.0.0.1:*", "--max-message-bytes", "8"])
        tooLarge.waitUntilExit()
        Thread.sleep(forTimeInterval: 0.1)  // the last of its stderr
        #expect(tooLarge.process.terminationStatus == 64)
        #expect(tooLarge.text.contains("--max-message-bytes: must be from 16 to 67108864 (64 MiB), got 8"))
    }

    /// A frame over `--max-message-bytes` costs its publisher the connection and is never
    /// forwarded; the publisher reconnects, and what it sends next goes through.
    @Test func theProxyDropsFramesOverItsLimit() throws {
        let proxy = try Self.proxy(["--frontend", "@tcp://127.0.0.1:*", "--backend", "@tcp://127.0.0.1:*", "--max-message-bytes", "1000"])
        defer { if proxy.process.isRunning { kill(proxy.process.processIdentifier, SIGKILL) } }
        let frontend = try proxy.await("frontend:"), backend = try proxy.await("backend:")
        _ = try proxy.await("ready")
        let client = try ForecastClient(samplesIn: frontend, forecastsOut: backend, warmup: nil)
        // Past the slow joiner: through the proxy and back.
        try client.send("warmup", "x")
        try client.collect(until: { $0["warmup"] != nil }, seconds: 0.2)
        let deadline = Date().addingTimeInterval(10)
        while client.messages["warmup"] == nil && Date() < deadline {
            try client.send("warmup", "x")
            try client.collect(until: { $0["warmup"] != nil }, seconds: 0.2)
        }
        try #require(client.messages["warmup"] != nil)

        try client.send("big", String(repeating: "x", count: 2000))
        let resent = Date().addingTimeInterval(10)
        while client.messages["small"] == nil && Date() < resent {
            try client.send("small", "y")  // sent until the publisher has reconnected
            try client.collect(until: { $0["small"] != nil }, seconds: 0.2)
        }
        #expect(client.messages["small"] != nil)
        #expect(client.messages["big"] == nil, "the frame over the limit was not forwarded")
        #expect(proxy.stop() == 0)
    }
}
