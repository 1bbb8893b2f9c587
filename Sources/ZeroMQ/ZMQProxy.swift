internal import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// libzmq's built-in proxy: forwards every message between two sockets, in both directions.
///
/// With an XSUB frontend (publishers connect to it) and an XPUB backend (subscribers connect to
/// it) it is the publish-subscribe forwarder: messages flow from the frontend to the backend,
/// subscriptions from the backend's subscribers flow up through the frontend to the publishers,
/// so publishers still filter what they send.
///
/// The proxy runs on the calling thread, which must own all three sockets (they are bound or
/// connected, and their options set, before the call), and returns only once their context is
/// shut down (``ZMQContext/shutdown()``, from any thread): that is how it is stopped.
public enum ZMQProxy {
    /// Forwards messages between `frontend` and `backend` until the context is shut down; then
    /// returns normally. Throws for anything but an orderly stop, such as sockets libzmq cannot
    /// proxy.
    ///
    /// The corresponding C function is `zmq_proxy`.
    public static func run(frontend: borrowing ZMQSocket, backend: borrowing ZMQSocket) throws(ZMQError) {
        try run(frontend.handle, backend.handle, nil)
    }

    /// ``run(frontend:backend:)``, and every message received on either side is also sent to
    /// `capture` (a PUB, PUSH, DEALER or PAIR socket): with XSUB/XPUB, the messages from the
    /// frontend, and the subscription messages (`0x01` or `0x00` followed by the prefix) that
    /// arrive on the backend. A capture socket that cannot send ends the proxy with an error.
    ///
    /// The corresponding C function is `zmq_proxy`.
    public static func run(
        frontend: borrowing ZMQSocket, backend: borrowing ZMQSocket, capture: borrowing ZMQSocket
    ) throws(ZMQError) {
        try run(frontend.handle, backend.handle, capture.handle)
    }

    private static func run(
        _ frontend: UnsafeMutableRawPointer, _ backend: UnsafeMutableRawPointer, _ capture: UnsafeMutableRawPointer?
    ) throws(ZMQError) {
        while true {
            // zmq_proxy returns only on an error; ETERM is the stop it waits for.
            if zmq_proxy(frontend, backend, capture) == 0 { return }
            let code = zmq_errno()
            switch code {
            case ETERM: return
            case EINTR: continue  // only its wait between messages is interrupted: go on
            default: throw failure(code, "zmq_proxy")
            }
        }
    }
}
