import Foundation
import Testing
import ZeroMQ

/// The real `rnnd` binary with two subscribers on its forecasts socket: one that connects,
/// subscribes, then never reads again, and one that reads. The stalled one loses forecasts past
/// its queue; the reading one gets every forecast of every stream, in order (docs/protocol.md,
/// "Slow subscribers").
@Suite(.timeLimit(.minutes(2)))
struct SlowConsumerEndToEndTests {
    typealias RunningDaemon = DaemonEndToEndTests.RunningDaemon

    /// A forecast's stream (its topic frame) and `seq`, read from the front of its JSON (the
    /// encoder writes `{"stream":...,"seq":N,`), or nil for a message that is not a forecast.
    static func streamAndSeq(_ frames: [[UInt8]]) -> (stream: String, seq: Int)? {
        guard frames.count == 2 else { return nil }
        let key = Array(#""seq":"#.utf8), payload = frames[1]
        guard let start = payload.indices.first(where: { payload[$0...].starts(with: key) }) else { return nil }
        let digits = payload[(start + key.count)...].prefix { (0x30...0x39).contains($0) }
        guard let seq = Int(String(decoding: digits, as: UTF8.self)) else { return nil }
        return (String(decoding: frames[0], as: UTF8.self), seq)
    }

    /// Reads forecasts from `sub` into `seqs` (by stream) until `done` holds, or nothing
    /// arrives for `quiet` seconds.
    static func read(_ sub: borrowing ZMQSocket, into seqs: inout [String: [Int]], quiet: Double, until done: ([String: [Int]]) -> Bool) throws {
        var last = Date()
        while !done(seqs) && Date().timeIntervalSince(last) < quiet {
            guard case .frames(let frames) = try sub.receiveFrames(), let f = streamAndSeq(frames) else { continue }
            seqs[f.stream, default: []].append(f.seq)
            last = Date()
        }
    }

    @Test func aStalledSubscriberCostsAReadingOneNoForecast() throws {
        let subscriberHWM = 1000
        let daemon = try RunningDaemon([
            "--sub", "@tcp://127.0.0.1:*", "--pub", "@tcp://127.0.0.1:*", "--workers", "2",
            "--model", "gru", "--hidden", "4", "--window", "4", "--horizon", "1",
            "--subscriber-hwm", "\(subscriberHWM)",
        ])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let samplesIn = try daemon.await("samples in:")
        let forecastsOut = try daemon.await("forecasts out:")
        _ = try daemon.await("ready")

        let context = try ZMQContext()
        let pub = try ZMQSocket(context, type: .pub)
        try pub.setSendHighWaterMark(100_000)
        try pub.connect(samplesIn)
        let reading = try ZMQSocket(context, type: .sub)
        try reading.subscribe("")
        try reading.setReceiveHighWaterMark(100_000)
        try reading.setReceiveTimeout(.milliseconds(100))
        try reading.connect(forecastsOut)
        // The stalled subscriber holds almost nothing itself (a small queue, a small kernel
        // buffer): what it does not read waits in rnnd's queue for it, up to the high-water mark.
        let stalled = try ZMQSocket(context, type: .sub)
        try stalled.subscribe("")
        try stalled.setReceiveHighWaterMark(10)
        try stalled.setOption(.receiveBuffer, 4096)
        try stalled.setReceiveTimeout(.milliseconds(100))
        try stalled.connect(forecastsOut)

        // Past the slow joiner: warm-up samples until both subscribers have had a forecast, so
        // both are subscribed. From then on the stalled one reads nothing until the end.
        var got: [String: [Int]] = [:], stalledGot: [String: [Int]] = [:]
        let warmupDeadline = Date().addingTimeInterval(10)
        while (got["warmup"] == nil || stalledGot["warmup"] == nil) && Date() < warmupDeadline {
            #expect(try pub.sendMultipart([Array("warmup".utf8), Array(#"{"v": 1}"#.utf8)]) == .sent)
            try Self.read(reading, into: &got, quiet: 0.1) { $0["warmup"] != nil }
            try Self.read(stalled, into: &stalledGot, quiet: 0.1) { $0["warmup"] != nil }
        }
        try #require(got["warmup"] != nil && stalledGot["warmup"] != nil, "both subscribers get forecasts")
        got = [:]
        stalledGot = [:]

        // 50,000 samples over 50 streams, in chunks of 1,000 that the reading subscriber takes
        // in full before the next is sent: rnnd's own queues never fill, so a forecast missing
        // here is one the stalled subscriber cost. (Once one is missing, the rest go on with a
        // short wait, to count how many more are.)
        let streams = (0..<50).map { "s\($0)" }, rounds = 1000, roundsPerChunk = 20
        func received(_ seqs: [String: [Int]]) -> Int { streams.reduce(0) { $0 + seqs[$1, default: []].count } }
        var sent = 0
        for first in stride(from: 0, to: rounds, by: roundsPerChunk) {
            for i in first..<(first + roundsPerChunk) {
                for (k, stream) in streams.enumerated() {
                    let v = sin(Double(i) * 0.1 + Double(k))
                    #expect(try pub.sendMultipart([Array(stream.utf8), Array(#"{"v": \#(v)}"#.utf8)]) == .sent)
                    sent += 1
                }
            }
            let short = received(got) < sent - streams.count * roundsPerChunk
            try Self.read(reading, into: &got, quiet: short ? 0.3 : 3) { received($0) >= sent }
        }
        let total = received(got)
        #expect(total == streams.count * rounds, "the reading subscriber got \(total) of \(sent) forecasts")
        for stream in streams {
            let seqs = got[stream, default: []], complete = seqs.elementsEqual(1...rounds)
            #expect(complete, "\(stream): every forecast once, in order; got \(seqs.count), first missing \(seqs.enumerated().first { $0.element != $0.offset + 1 }.map { $0.offset + 1 } ?? seqs.count + 1)")
        }

        // The stalled subscriber reads again: it had room for a part of the forecasts only (its
        // queue in rnnd, and the kernel's socket buffers: about 14,000 here), so its queue did
        // overflow; what it kept is in order, the rest are gaps in `seq`.
        try Self.read(stalled, into: &stalledGot, quiet: 1) { _ in false }
        let kept = received(stalledGot)
        #expect(kept >= subscriberHWM && kept < sent, "the stalled subscriber kept \(kept) of \(sent)")
        #expect(streams.allSatisfy { s in stalledGot[s, default: []].elementsEqual(stalledGot[s, default: []].sorted()) })
        print("slow consumer: the reading subscriber got \(total) of \(sent) forecasts; the stalled one kept \(kept)")

        #expect(daemon.stop() == 0)
        let summary = try daemon.await("stopped:")
        print("slow consumer: \(summary)")
        let learned = DaemonEndToEndTests.counter("learned", in: summary)
        #expect(learned.map { $0 > sent } == true && DaemonEndToEndTests.counter("forecasts", in: summary) == learned,
                "every forecast learned went to the socket: \(summary)")
    }
}
