internal import CZeroMQ

/// Events of a socket's connections that a monitor reports (zmq_socket_monitor(3)).
public struct ZMQMonitorEvents: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// A connection to a peer is up (`ZMQ_EVENT_CONNECTED`).
    public static let connected = Self(rawValue: UInt16(ZMQ_EVENT_CONNECTED))
    /// A peer connected to a bound address (`ZMQ_EVENT_ACCEPTED`).
    public static let accepted = Self(rawValue: UInt16(ZMQ_EVENT_ACCEPTED))
    /// A connection was closed or broken (`ZMQ_EVENT_DISCONNECTED`).
    public static let disconnected = Self(rawValue: UInt16(ZMQ_EVENT_DISCONNECTED))
    /// The handshake failed for a reason libzmq does not detail, such as the peer leaving
    /// during it (`ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL`).
    public static let handshakeFailedNoDetail = Self(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
    /// The handshake (security included) succeeded (`ZMQ_EVENT_HANDSHAKE_SUCCEEDED`).
    public static let handshakeSucceeded = Self(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
    /// The handshake failed on a protocol error; the event's value is a ``ZMQProtocolError``
    /// (`ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL`).
    public static let handshakeFailedProtocol = Self(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL))
    /// The ZAP handler refused the peer; the event's value is its status code, such as 400
    /// (`ZMQ_EVENT_HANDSHAKE_FAILED_AUTH`).
    public static let handshakeFailedAuth = Self(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
    /// The monitored socket was closed: the last event (`ZMQ_EVENT_MONITOR_STOPPED`).
    public static let monitorStopped = Self(rawValue: UInt16(ZMQ_EVENT_MONITOR_STOPPED))

    /// Every failed handshake.
    public static let handshakeFailures: Self = [.handshakeFailedNoDetail, .handshakeFailedProtocol, .handshakeFailedAuth]
}

/// The value of a ``ZMQMonitorEvents/handshakeFailedProtocol`` event: what was wrong.
public struct ZMQProtocolError: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The peer uses another security mechanism, e.g. none (NULL) against a CURVE server
    /// (`ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH`).
    public static let mechanismMismatch = Self(rawValue: UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH))
    /// A CURVE box did not decrypt: the client encrypted to another server key, or the data is
    /// not CURVE (`ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC`).
    public static let cryptographic = Self(rawValue: UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC))

    /// libzmq's name of the error, such as `ZMTP_MECHANISM_MISMATCH`.
    public var description: String {
        switch rawValue {
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_UNSPECIFIED): "ZMTP_UNSPECIFIED"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND): "ZMTP_UNEXPECTED_COMMAND"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_SEQUENCE): "ZMTP_INVALID_SEQUENCE"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE): "ZMTP_KEY_EXCHANGE"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_UNSPECIFIED): "ZMTP_MALFORMED_COMMAND_UNSPECIFIED"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_MESSAGE): "ZMTP_MALFORMED_COMMAND_MESSAGE"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_HELLO): "ZMTP_MALFORMED_COMMAND_HELLO"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_INITIATE): "ZMTP_MALFORMED_COMMAND_INITIATE"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_ERROR): "ZMTP_MALFORMED_COMMAND_ERROR"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_READY): "ZMTP_MALFORMED_COMMAND_READY"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_WELCOME): "ZMTP_MALFORMED_COMMAND_WELCOME"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_METADATA): "ZMTP_INVALID_METADATA"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC): "ZMTP_CRYPTOGRAPHIC"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH): "ZMTP_MECHANISM_MISMATCH"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED): "ZAP_UNSPECIFIED"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZAP_MALFORMED_REPLY): "ZAP_MALFORMED_REPLY"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZAP_BAD_REQUEST_ID): "ZAP_BAD_REQUEST_ID"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZAP_BAD_VERSION): "ZAP_BAD_VERSION"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZAP_INVALID_STATUS_CODE): "ZAP_INVALID_STATUS_CODE"
        case UInt32(ZMQ_PROTOCOL_ERROR_ZAP_INVALID_METADATA): "ZAP_INVALID_METADATA"
        default: "protocol error 0x" + String(rawValue, radix: 16)
        }
    }
}

/// One message of a monitor socket: the event, its value and the endpoint it happened on (for
/// a bound socket, the address it is bound to, not the peer's).
public struct ZMQMonitorEvent: Hashable, Sendable {
    /// One of ``ZMQMonitorEvents``.
    public var event: ZMQMonitorEvents
    /// The event's value: a ``ZMQProtocolError`` raw value, a ZAP status code, a file descriptor
    /// or an errno code, depending on the event.
    public var value: UInt32
    public var endpoint: String

    public init(event: ZMQMonitorEvents, value: UInt32, endpoint: String) {
        self.event = event
        self.value = value
        self.endpoint = endpoint
    }

    /// The event in the two frames of a monitor message (zmq_socket_monitor(3)): 16 bits of
    /// event and 32 of value in the host's byte order, then the endpoint; nil for anything else.
    public init?(frames: [[UInt8]]) {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let first = frames[0]
        event = ZMQMonitorEvents(rawValue: first.withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) })
        value = first.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self) }
        endpoint = String(decoding: frames[1], as: UTF8.self)
    }
}

extension ZMQSocket {
    /// Reports `events` of this socket's connections, as ``ZMQMonitorEvent`` messages, on a
    /// PAIR socket that libzmq binds at `address` (an `inproc://` address in the same context);
    /// a PAIR socket connected there, owned by any thread, reads them. Call it before binding or
    /// connecting, so that no connection is missed.
    ///
    /// The corresponding C function is `zmq_socket_monitor`.
    public func monitor(_ address: String, events: ZMQMonitorEvents) throws(ZMQError) {
        try call("zmq_socket_monitor") { zmq_socket_monitor(handle, address, Int32(events.rawValue)) }
    }
}
