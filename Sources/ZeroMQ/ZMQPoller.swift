internal import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Readiness of a socket in a ``ZMQPoller``.
public struct ZMQPollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// A message can be received without blocking (`ZMQ_POLLIN`).
    public static let readable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// A message can be sent without blocking (`ZMQ_POLLOUT`).
    public static let writable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLOUT))
}

/// What ``ZMQPoller/poll(timeout:)`` came back with.
public enum ZMQPollResult: Equatable, Sendable {
    /// `count` sockets are ready; ``ZMQPoller/events(at:)`` says which and for what.
    case ready(Int)
    /// The timeout passed with no socket ready.
    case timedOut
    /// The context of one of the sockets was shut down.
    case terminated
}

/// Waits on several sockets at once, all owned by the calling thread.
///
/// The poller keeps the sockets' handles, not the sockets: every socket added must outlive the
/// poller's last ``poll(timeout:)`` (a closed socket there is a programmer error that stops the
/// process). Build it once and poll it in a loop; polling allocates nothing.
public struct ZMQPoller {
    private var items: [zmq_pollitem_t] = []

    public init() {}

    /// The number of sockets added.
    public var count: Int { items.count }

    /// Adds `socket`, waiting for `events`; returns its index for ``events(at:)``.
    @discardableResult
    public mutating func add(_ socket: borrowing ZMQSocket, events: ZMQPollEvents = .readable) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: -1, events: events.rawValue, revents: 0))
        return items.count - 1
    }

    /// What the socket at `index` was ready for in the last poll.
    public func events(at index: Int) -> ZMQPollEvents {
        ZMQPollEvents(rawValue: items[index].revents)
    }

    /// Waits until at least one socket is ready for what it was added with, or `timeout` passes;
    /// nil waits forever, zero only looks. Rounded up to whole milliseconds.
    ///
    /// The corresponding C function is `zmq_poll`.
    public mutating func poll(timeout: Duration?) throws(ZMQError) -> ZMQPollResult {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + $0 }
        var wait = milliseconds(timeout, "poll timeout")
        let count = Int32(items.count)
        while true {
            let result = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, count, Int(wait)) }
            if result > 0 { return .ready(Int(result)) }
            if result == 0 { return .timedOut }
            let code = zmq_errno()
            guard code == EINTR else {
                let error = failure(code, "zmq_poll")
                if case .terminated = error { return .terminated }
                throw error
            }
            if let deadline {  // a signal interrupted the wait: wait out the rest
                let left = clock.now.duration(to: deadline)
                wait = left > .zero ? milliseconds(left, "poll timeout") : 0
            }
        }
    }
}
