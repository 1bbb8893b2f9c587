// What the daemon's threads share: the start-up handshake, rate-limited logging.

import Foundation
import Logging
import RNNBasics
import RNNCore
import RNNMetrics
import RNNState
import RNNWire
import Synchronization
import ZeroMQ

/// 1, 10, 100, ...
func isPowerOfTen(_ n: Int) -> Bool {
    var n = n
    while n >= 10, n % 10 == 0 { n /= 10 }
    return n == 1
}

/// The stream counts logged at info as the daemon grows: 1, 10, 100, ... streams, each once in
/// the daemon's life. Once is the point: a daemon held at its `max_streams` (10,000 by default)
/// by a churn of stream ids comes back to that count with every new id, one stream unloaded for
/// it, and logged the milestone each time (18,754 lines of "1000 streams" for the 20,000 ids of
/// `twentyThousandStreamIDsThroughAThousand`, at `max_streams = 1000`).
final class StreamMilestones: Sendable {
    private let highest = Atomic<Int>(0)

    /// Whether `count` streams is a milestone not reached before: a power of ten above every
    /// one reached so far. True once for each, whichever worker reaches it.
    func reached(_ count: Int) -> Bool {
        guard isPowerOfTen(count) else { return false }
        var seen = highest.load(ordering: .relaxed)
        while count > seen {
            let (exchanged, found) = highest.compareExchange(expected: seen, desired: count, ordering: .relaxed)
            if exchanged { return true }
            seen = found
        }
        return false
    }
}

/// Start-up handshake between a service thread and `run()`: the thread reports whether its
/// sockets are bound before the next one starts.
final class StartupGate: Sendable {
    private let result = Mutex<String??>(nil)
    private let semaphore = DispatchSemaphore(value: 0)

    /// Reports the start-up's outcome once; false when it was reported already (the error
    /// then happened later, while running).
    func report(error: String?) -> Bool {
        let first = result.withLock { state in
            guard state == nil else { return false }
            state = .some(error)
            return true
        }
        if first { semaphore.signal() }
        return first
    }

    func wait() -> String? {
        semaphore.wait()
        return result.withLock { $0 } ?? nil
    }
}

/// Warnings about bad input, at most one per reason per second from each thread, with the
/// number suppressed in between, so a flood cannot fill the journal.
struct RateLimitedLog {
    let logger: Logger
    private var last: [String: ContinuousClock.Instant] = [:]
    private var suppressed: [String: Int] = [:]

    init(logger: Logger) { self.logger = logger }

    mutating func warning(reason: String, message: String, stream: UnsafeRawBufferPointer?) {
        log(.warning, reason: reason, message: message, stream: stream)
    }

    mutating func notice(reason: String, message: String, stream: UnsafeRawBufferPointer?) {
        log(.notice, reason: reason, message: message, stream: stream)
    }

    private mutating func log(_ level: Logger.Level, reason: String, message: String, stream: UnsafeRawBufferPointer?) {
        let now = ContinuousClock.now
        if let previous = last[reason], now - previous < .seconds(1) {
            suppressed[reason, default: 0] += 1
            return
        }
        last[reason] = now
        var metadata: Logger.Metadata = ["reason": "\(reason)"]
        if let stream { metadata["stream"] = "\(printable(stream))" }
        if let n = suppressed.removeValue(forKey: reason), n > 0 { metadata["suppressed"] = "\(n)" }
        logger.log(level: level, "\(message)", metadata: metadata)
    }

    /// The stream id as text when it is UTF-8, else in hex.
    private func printable(_ id: UnsafeRawBufferPointer) -> String {
        if validateStreamID(id) == nil { return String(decoding: id, as: UTF8.self) }
        return "0x" + id.prefix(64).map { String(format: "%02x", $0) }.joined()
    }
}

/// This host's clock, Unix seconds: the reference of the streams' future-time check
/// (``StreamPolicy``). The corresponding C function is `clock_gettime(CLOCK_REALTIME)`.
func wallClockSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}
