// `rnnd feed` (docs/replay.md): a CSV file published as samples (docs/protocol.md), without
// losing the first ones to ZeroMQ's slow joiner. The command line is Sources/rnnd/Feed.swift.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

import RNNBasics
import RNNKeys
import RNNWire
import ZeroMQ


/// How `rnnd feed` publishes.
public struct FeedSettings: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        /// `{"v":[...],"t":...}`
        case json
        /// The binary v1 layout: float32 values, float64 time.
        case binary
    }

    public enum Pace: Sendable, Equatable {
        /// As fast as the subscriber takes them (blocking sends, nothing dropped).
        case asFastAsPossible
        /// `n` samples per second.
        case rate(Double)
        /// Spaced as the time axis says, `speedup` times faster.
        case realtime(speedup: Double)
    }

    /// `@` binds, `>` connects.
    public var endpoint = ">tcp://127.0.0.1:5556"
    /// The stream id, the first frame of every sample.
    public var topic: String
    public var format = Format.json
    public var pace = Pace.asFastAsPossible
    /// At most this many samples.
    public var limit: Int?
    /// How long to wait for a subscriber of the topic before giving up.
    public var waitSeconds = 10.0
    /// How long queued samples may take to leave once everything is sent.
    public var lingerSeconds = 30.0
    /// The keys for a daemon whose sockets are CURVE servers; nil sends in the clear.
    public var curve: CurveClientKeys?

    public init(topic: String) { self.topic = topic }
}

/// Why a feed stopped.
public enum FeedError: Error, CustomStringConvertible, Sendable {
    /// No subscriber of the topic within the wait.
    case noSubscriber(endpoint: String, seconds: Double, heard: [String])
    case socket(ZMQError)
    case interrupted(sent: Int)

    public var description: String {
        switch self {
        case .noSubscriber(let endpoint, let seconds, let heard):
            var text = "no subscriber of this topic within \(seconds) s on \(endpoint)"
            if heard.isEmpty {
                text += " (is the daemon running, and on this endpoint? With CURVE, are the server key and this client's key the daemon's? --wait-seconds waits longer)"
            } else {
                text += "; subscribers asked only for the prefixes " + heard.map { "\"\($0)\"" }.joined(separator: ", ")
            }
            return text
        case .socket(let error): return "\(error)"
        case .interrupted(let sent): return "interrupted after \(sent) samples"
        }
    }

    /// 69 (EX_UNAVAILABLE) without a subscriber or on a socket error, 130 when interrupted.
    public var exitCode: Int32 {
        switch self {
        case .noSubscriber, .socket: 69
        case .interrupted: 130
        }
    }
}

/// Publishes samples on an XPUB socket: it waits for a subscription that matches the topic
/// before the first sample (so none is lost to a late join), sends with a high-water mark of
/// 100000 messages and `ZMQ_XPUB_NODROP` so that a full queue blocks the sender instead of
/// dropping, and lingers at the end until the queued samples are out.
public struct Feeder {
    public var settings: FeedSettings

    public init(settings: FeedSettings) { self.settings = settings }

    /// What a feed did.
    public struct Result: Sendable {
        public var sent: Int
        public var seconds: Double
    }

    /// Sends `samples` in order; `shouldStop` is polled between samples and while waiting.
    public func run(_ samples: CSVSamples, shouldStop: () -> Bool = { false }) throws(FeedError) -> Result {
        let s = settings
        let count = min(samples.count, s.limit ?? .max)
        do {
            let context = try ZMQContext()
            let clock = ContinuousClock()
            var started = clock.now
            var sent = 0
            do {
                let socket = try ZMQSocket(context, type: .xpub)
                try socket.useCurve(s.curve)
                // The daemon sends only subscriptions: a byte and a stream id prefix.
                try socket.setMaxMessageSize(1024)
                try socket.setSendHighWaterMark(100_000)
                try socket.setOption(.xpubNoDrop, 1)
                try socket.setLinger(.milliseconds(Int64(s.lingerSeconds * 1000)))
                try socket.setReceiveTimeout(.milliseconds(50))
                try socket.setSendTimeout(.milliseconds(100))
                try socket.attach(s.endpoint)
                try waitForSubscriber(socket, shouldStop: shouldStop)

                let topic = Array(s.topic.utf8)
                var payload: [UInt8] = []
                payload.reserveCapacity(64 + 32 * samples.width)
                started = clock.now
                let firstTime = samples.hasTime && count > 0 ? samples.time[0] : 0
                for i in 0..<count {
                    if shouldStop() {
                        try socket.setLinger(.zero)
                        throw FeedError.interrupted(sent: sent)
                    }
                    switch s.pace {
                    case .asFastAsPossible: break
                    case .rate(let rate): sleep(until: started + .seconds(Double(i) / rate), clock: clock, shouldStop: shouldStop)
                    case .realtime(let speedup):
                        let offset = (samples.time[i] - firstTime) / speedup
                        sleep(until: started + .seconds(offset), clock: clock, shouldStop: shouldStop)
                    }
                    encode(samples, i, into: &payload)
                    // A full queue blocks the send (XPUB_NODROP); the timeout only lets a stop in.
                    sending: while true {
                        let result = try topic.withUnsafeBytes { t in
                            try payload.withUnsafeBytes { p in try socket.sendMultipart([t, p]) }
                        }
                        switch result {
                        case .sent: sent += 1; break sending
                        case .wouldBlock:
                            if shouldStop() {
                                try socket.setLinger(.zero)
                                throw FeedError.interrupted(sent: sent)
                            }
                        case .terminated: throw FeedError.interrupted(sent: sent)
                        }
                    }
                }
            }
            // The socket is closed here; the context's end waits for the queued samples (linger).
            return Result(sent: sent, seconds: Replayer.seconds(clock.now - started))
        } catch let error as FeedError {
            throw error
        } catch let error as ZMQError {
            throw .socket(error)
        } catch {
            throw .socket(.failed(code: EINVAL, function: "\(error)"))
        }
    }

    /// Reads subscription messages until one's prefix matches the topic.
    private func waitForSubscriber(_ socket: borrowing ZMQSocket, shouldStop: () -> Bool) throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(settings.waitSeconds)
        let topic = Array(settings.topic.utf8)
        var heard: [String] = []
        while clock.now < deadline {
            if shouldStop() { throw FeedError.interrupted(sent: 0) }
            guard case .frames(let frames) = try socket.receiveFrames(), let message = frames.first,
                let kind = message.first
            else { continue }
            guard kind == 1 else { continue }  // 0 is an unsubscription
            let prefix = message.dropFirst()
            if topic.starts(with: prefix) { return }
            heard.append(String(decoding: prefix, as: UTF8.self))
        }
        throw FeedError.noSubscriber(endpoint: settings.endpoint, seconds: settings.waitSeconds, heard: heard)
    }

    /// The payload of sample `i` (docs/protocol.md). JSON values are the file's numbers in the
    /// shortest text that reads back as the same Double, so the daemon takes exactly the float32
    /// `rnnd replay` takes. A missing cell is `null` (JSON) or NaN (binary): the daemon carries it
    /// forward as replay does (docs/protocol.md).
    func encode(_ samples: CSVSamples, _ i: Int, into payload: inout [UInt8]) {
        payload.removeAll(keepingCapacity: true)
        let values = samples.sample(i)
        switch settings.format {
        case .json:
            payload += #"{"v":["#.utf8
            for (k, v) in values.enumerated() {
                if k > 0 { payload.append(UInt8(ascii: ",")) }
                payload += v.isNaN ? Array("null".utf8) : Array(v.description.utf8)
            }
            payload.append(UInt8(ascii: "]"))
            if let t = samples.timestamp(i) {
                payload += #","t":"#.utf8
                payload += t.description.utf8
            }
            payload.append(UInt8(ascii: "}"))
        case .binary:
            let t = samples.timestamp(i)
            payload.append(WireLimits.binaryMarker)
            payload.append(t == nil ? 0 : 1)
            let n = UInt16(values.count)
            payload += [UInt8(n & 0xFF), UInt8(n >> 8)]
            if let t { withUnsafeBytes(of: t.bitPattern.littleEndian) { payload += $0 } }
            for v in values { withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { payload += $0 } }
        }
    }

    private func sleep(until instant: ContinuousClock.Instant, clock: ContinuousClock, shouldStop: () -> Bool) {
        while !shouldStop() {
            let left = instant - clock.now
            if left <= .zero { return }
            let (seconds, attoseconds) = min(left, .milliseconds(100)).components
            var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
            _ = nanosleep(&request, nil)
        }
    }
}
