import Foundation
import RNNDaemon
@testable import RNNKeys
import Testing
import ZeroMQ

/// A test's publisher of samples and subscriber of forecasts, attached to a running daemon and
/// past the slow joiner: a `warmup` stream is sent until its forecast comes back, so that every
/// later sample reaches the daemon and every forecast reaches this subscriber. With `warmup`
/// nil, only the sockets are set up, for a caller that warms up its own way. With keys, the
/// publisher and the subscriber are CURVE clients of a daemon with CURVE.
final class ForecastClient {
    let context: ZMQContext
    let pub: ZMQSocket
    let sub: ZMQSocket
    /// Forecast payloads received, by topic (stream id), in arrival order.
    private(set) var messages: [String: [[UInt8]]] = [:]
    /// How many forecasts `messages` holds, all streams together: kept as they arrive, so that a
    /// test waiting for thousands of streams' forecasts does not count them again at each one
    /// (with 20,000 streams that recount took a core the daemon under test needed).
    private(set) var received = 0

    init(
        samplesIn: String, forecastsOut: String, warmup: String? = #"{"v": [1, 2, 3]}"#,
        publisherKeys: CurveClientKeys? = nil, subscriberKeys: CurveClientKeys? = nil
    ) throws {
        context = try ZMQContext()
        sub = try ZMQSocket(context, type: .sub)
        if let keys = subscriberKeys { try sub.makeCurveClient(serverKey: keys.serverKey, keyPair: keys.keyPair) }
        try sub.subscribe("")
        try sub.setReceiveHighWaterMark(100_000)
        try sub.setReceiveTimeout(.milliseconds(100))
        try sub.connect(forecastsOut)
        pub = try ZMQSocket(context, type: .pub)
        if let keys = publisherKeys { try pub.makeCurveClient(serverKey: keys.serverKey, keyPair: keys.keyPair) }
        try pub.setSendHighWaterMark(100_000)
        try pub.connect(samplesIn)
        guard let warmup else { return }
        let deadline = Date().addingTimeInterval(10)
        while messages["warmup"] == nil && Date() < deadline {
            try send("warmup", warmup)
            try collect(until: { $0["warmup"] != nil }, seconds: 0.2)
        }
        try #require(messages["warmup"] != nil, "no forecast came back")
        received -= messages["warmup"]?.count ?? 0
        messages["warmup"] = nil
    }

    func send(_ stream: String, _ payload: String) throws {
        #expect(try pub.sendMultipart([Array(stream.utf8), Array(payload.utf8)]) == .sent)
    }

    /// Receives forecasts until `done` holds for what was received, or `seconds` pass.
    func collect(until done: ([String: [[UInt8]]]) -> Bool, seconds: Double) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !done(messages) && Date() < deadline {
            guard case .frames(let frames) = try sub.receiveFrames(), frames.count == 2 else { continue }
            messages[String(decoding: frames[0], as: UTF8.self), default: []].append(frames[1])
            received += 1
        }
    }
}
