internal import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A libzmq context: the I/O threads and the registry of sockets.
///
/// Unlike its sockets, a context is thread-safe, so one instance is shared by every thread of the
/// process. Each ``ZMQSocket`` holds a strong reference to its context, so the context is
/// terminated (`zmq_ctx_term`) only after the last of its sockets was closed; with the sockets'
/// default linger of zero that never waits.
public final class ZMQContext: Sendable {
    /// libzmq's context handle; contexts are thread-safe and the handle never changes.
    nonisolated(unsafe) let handle: UnsafeMutableRawPointer

    /// A new context with `ioThreads` background I/O threads (one is enough below about a
    /// gigabyte per second of traffic).
    ///
    /// The corresponding C functions are `zmq_ctx_new` and `zmq_ctx_set(ZMQ_IO_THREADS)`.
    public init(ioThreads: Int = 1) throws(ZMQError) {
        precondition(ioThreads >= 0, "ZMQContext: ioThreads must not be negative")
        guard let handle = zmq_ctx_new() else { throw failure(zmq_errno(), "zmq_ctx_new") }
        if ioThreads != Int(ZMQ_IO_THREADS_DFLT) {
            guard zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(clamping: ioThreads)) == 0 else {
                let error = failure(zmq_errno(), "zmq_ctx_set")
                zmq_ctx_term(handle)
                throw error
            }
        }
        self.handle = handle
    }

    /// Starts an orderly stop: every blocking call on this context's sockets, in any thread,
    /// returns at once with a `.terminated` outcome, and any later call on them does too (or
    /// throws ``ZMQError/terminated(function:)``); no new socket can be created. The sockets must
    /// still be dropped, by the threads that own them. Calling it again does nothing.
    ///
    /// The corresponding C function is `zmq_ctx_shutdown`.
    public func shutdown() {
        // Its only error is EFAULT, for a handle that is not a context.
        if zmq_ctx_shutdown(handle) != 0 { _ = failure(zmq_errno(), "zmq_ctx_shutdown") }
    }

    /// The corresponding C function is `zmq_ctx_term`; it runs once every socket has been closed.
    deinit {
        while zmq_ctx_term(handle) != 0 {
            let code = zmq_errno()
            if code != EINTR { _ = failure(code, "zmq_ctx_term"); return }
        }
    }
}
