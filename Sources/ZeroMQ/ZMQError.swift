internal import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a ZeroMQ operation failed: the errno code, the C function that reported it, and libzmq's
/// text for the code.
///
/// Sending, receiving and polling never throw for `EAGAIN` or `ETERM`: those come back as the
/// `.wouldBlock` and `.terminated` outcomes of ``ZMQSendResult``, ``ZMQReceiveResult``,
/// ``ZMQFramesResult`` and ``ZMQPollResult``. Everywhere else (creating a socket, bind, connect,
/// options) a context that was shut down throws ``terminated(function:)``, so a service can
/// tell an orderly stop from a fault with `catch ZMQError.terminated`.
///
/// `EINTR` is retried and never seen here. `ENOTSOCK` and `EFAULT` mean a closed or invalid
/// socket or context reached libzmq, a programmer error, and stop the process.
public enum ZMQError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The context was shut down (`ETERM`): an orderly stop, not a fault.
    case terminated(function: String)
    /// A libzmq function failed with errno `code`.
    case failed(code: Int32, function: String)
    /// An endpoint is not `@transport://address` (bind) or `>transport://address` (connect).
    case invalidEndpoint(String, reason: String)

    /// The errno value: `ETERM` for ``terminated(function:)``, `EINVAL` for an invalid endpoint.
    public var code: Int32 {
        switch self {
        case .terminated: ETERM
        case .failed(let code, _): code
        case .invalidEndpoint: EINVAL
        }
    }

    /// The C function that failed (`zmq_bind`, ...), or the Swift API that rejected the input.
    public var function: String {
        switch self {
        case .terminated(let function), .failed(_, let function): function
        case .invalidEndpoint: "ZMQEndpoint(parsing:)"
        }
    }

    /// libzmq's text for ``code`` (`zmq_strerror`), or what is wrong with an endpoint.
    public var message: String {
        switch self {
        case .terminated, .failed: String(cString: zmq_strerror(code))
        case .invalidEndpoint(let endpoint, let reason): "invalid endpoint \"\(endpoint)\": \(reason)"
        }
    }

    public var description: String {
        switch self {
        case .terminated, .failed: "\(function): \(message) (errno \(code))"
        case .invalidEndpoint: message
        }
    }
}

// MARK: - The C boundary

/// What a send, receive or poll came back with once `EINTR` was retried.
enum IOStatus {
    case done(Int32)
    case wouldBlock
    case terminated

    var isDone: Bool {
        if case .done = self { true } else { false }
    }
}

/// Runs a libzmq I/O call, reading errno right after it: retries `EINTR`, maps `EAGAIN` to
/// `.wouldBlock` and `ETERM` to `.terminated`, throws for everything else.
@inline(__always)
func ioCall(_ function: StaticString, _ body: () -> Int32) throws(ZMQError) -> IOStatus {
    while true {
        let result = body()
        if result >= 0 { return .done(result) }
        let code = zmq_errno()
        switch code {
        case EINTR: continue
        case EAGAIN: return .wouldBlock
        case ETERM: return .terminated
        default: throw failure(code, function)
        }
    }
}

/// Runs a libzmq call that is not I/O (bind, connect, options), retrying `EINTR`; any failure,
/// `ETERM` included, throws.
@inline(__always)
@discardableResult
func call(_ function: StaticString, _ body: () -> Int32) throws(ZMQError) -> Int32 {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = zmq_errno()
        if code == EINTR { continue }
        throw failure(code, function)
    }
}

/// The error for errno `code` from `function`; stops the process on programmer errors.
func failure(_ code: Int32, _ function: StaticString) -> ZMQError {
    switch code {
    case ETERM:
        return .terminated(function: "\(function)")
    case ENOTSOCK, EFAULT:
        preconditionFailure(
            "\(function): \(String(cString: zmq_strerror(code))): a closed or invalid socket or context reached libzmq"
        )
    default:
        return .failed(code: code, function: "\(function)")
    }
}
