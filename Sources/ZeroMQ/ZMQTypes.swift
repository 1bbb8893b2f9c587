internal import CZeroMQ

/// The ZeroMQ socket types (zmq_socket(3) describes each pattern).
public enum ZMQSocketType: Sendable, CaseIterable {
    case pub, sub, xpub, xsub, push, pull, pair, req, rep, dealer, router

    var rawValue: Int32 {
        switch self {
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .xpub: ZMQ_XPUB
        case .xsub: ZMQ_XSUB
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .pair: ZMQ_PAIR
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        }
    }
}

/// Flags for sending and receiving.
public struct ZMQFlags: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Do not block: return `.wouldBlock` when nothing can be sent or received now (`ZMQ_DONTWAIT`).
    public static let dontWait = ZMQFlags(rawValue: ZMQ_DONTWAIT)
    /// More frames of the same message follow this one (`ZMQ_SNDMORE`); sending only.
    public static let sendMore = ZMQFlags(rawValue: ZMQ_SNDMORE)
}

/// An integer socket option for ``ZMQSocket/setOption(_:_:)`` and ``ZMQSocket/option(_:)``.
///
/// The named ones are the `int`-valued options of zmq_setsockopt(3); `init(rawValue:)` takes any
/// other `ZMQ_…` number whose value is a C `int`.
public struct ZMQSocketOption: RawRepresentable, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Messages queued per peer before sends block or drop (`ZMQ_SNDHWM`; 0 = no limit).
    public static let sendHighWaterMark = Self(rawValue: ZMQ_SNDHWM)
    /// Messages queued per peer before the peer is pushed back (`ZMQ_RCVHWM`; 0 = no limit).
    public static let receiveHighWaterMark = Self(rawValue: ZMQ_RCVHWM)
    /// Milliseconds unsent messages are kept after close (`ZMQ_LINGER`; -1 = until sent).
    public static let linger = Self(rawValue: ZMQ_LINGER)
    /// Milliseconds a receive blocks (`ZMQ_RCVTIMEO`; -1 = forever).
    public static let receiveTimeout = Self(rawValue: ZMQ_RCVTIMEO)
    /// Milliseconds a send blocks (`ZMQ_SNDTIMEO`; -1 = forever).
    public static let sendTimeout = Self(rawValue: ZMQ_SNDTIMEO)
    /// Milliseconds before the first reconnection attempt (`ZMQ_RECONNECT_IVL`).
    public static let reconnectInterval = Self(rawValue: ZMQ_RECONNECT_IVL)
    /// Upper bound of the reconnection back-off in milliseconds (`ZMQ_RECONNECT_IVL_MAX`).
    public static let reconnectIntervalMax = Self(rawValue: ZMQ_RECONNECT_IVL_MAX)
    /// The kernel's listen backlog (`ZMQ_BACKLOG`).
    public static let backlog = Self(rawValue: ZMQ_BACKLOG)
    /// The kernel's send buffer in bytes (`ZMQ_SNDBUF`; -1 = the OS default).
    public static let sendBuffer = Self(rawValue: ZMQ_SNDBUF)
    /// The kernel's receive buffer in bytes (`ZMQ_RCVBUF`; -1 = the OS default).
    public static let receiveBuffer = Self(rawValue: ZMQ_RCVBUF)
    /// Queue messages only to completed connections (`ZMQ_IMMEDIATE`, 0 or 1).
    public static let immediate = Self(rawValue: ZMQ_IMMEDIATE)
    /// Allow IPv6 on tcp endpoints (`ZMQ_IPV6`, 0 or 1).
    public static let ipv6 = Self(rawValue: ZMQ_IPV6)
    /// TCP keep-alive (`ZMQ_TCP_KEEPALIVE`: -1 = the OS default, 0 = off, 1 = on).
    public static let tcpKeepalive = Self(rawValue: ZMQ_TCP_KEEPALIVE)
    /// Keep only the newest message (`ZMQ_CONFLATE`, 0 or 1).
    public static let conflate = Self(rawValue: ZMQ_CONFLATE)
    /// Pass every subscription up an XPUB socket, duplicates too (`ZMQ_XPUB_VERBOSE`, 0 or 1).
    public static let xpubVerbose = Self(rawValue: ZMQ_XPUB_VERBOSE)
    /// XPUB returns `EAGAIN` (would block) instead of silently dropping a message when a
    /// subscriber's queue is full (`ZMQ_XPUB_NODROP`), so the sender can count the drop.
    public static let xpubNoDrop = Self(rawValue: ZMQ_XPUB_NODROP)
    /// ROUTER fails with `EHOSTUNREACH` instead of dropping unroutable messages (`ZMQ_ROUTER_MANDATORY`).
    public static let routerMandatory = Self(rawValue: ZMQ_ROUTER_MANDATORY)
    /// Milliseconds allowed for the ZMTP handshake (`ZMQ_HANDSHAKE_IVL`; 0 = no limit).
    public static let handshakeInterval = Self(rawValue: ZMQ_HANDSHAKE_IVL)
    /// Milliseconds between ZMTP heartbeats (`ZMQ_HEARTBEAT_IVL`; 0 = off).
    public static let heartbeatInterval = Self(rawValue: ZMQ_HEARTBEAT_IVL)
    /// Milliseconds without traffic after a heartbeat before the peer is dropped (`ZMQ_HEARTBEAT_TIMEOUT`).
    public static let heartbeatTimeout = Self(rawValue: ZMQ_HEARTBEAT_TIMEOUT)
    /// Read only: the socket type's libzmq number (`ZMQ_TYPE`).
    public static let type = Self(rawValue: ZMQ_TYPE)
    /// Read only: `ZMQ_POLLIN`/`ZMQ_POLLOUT` bits of what can be done now (`ZMQ_EVENTS`).
    public static let events = Self(rawValue: ZMQ_EVENTS)
    /// Read only: more frames of the current message follow (`ZMQ_RCVMORE`).
    public static let receiveMore = Self(rawValue: ZMQ_RCVMORE)
}

/// What a send came back with.
public enum ZMQSendResult: Equatable, Sendable {
    /// libzmq queued the message (PUB drops it silently when a subscriber's queue is full).
    case sent
    /// `.dontWait` was given and the message cannot be queued now, or the send timeout expired;
    /// nothing of the message was queued.
    case wouldBlock
    /// The context was shut down.
    case terminated
}

/// What ``ZMQSocket/receiveMultipart(into:flags:)`` came back with.
public enum ZMQReceiveResult: Equatable, Sendable {
    /// The buffer holds the whole message, `frames` frames.
    case message(frames: Int)
    /// The message had more frames than the buffer's `maxFrames` or more bytes than its
    /// `capacity`: it was received whole and discarded, and the buffer holds only its leading
    /// frames that fitted (often just the topic). `frames` and `bytes` are the message's totals.
    case truncated(frames: Int, bytes: Int)
    /// Nothing arrived: `.dontWait` was given, or the receive timeout expired.
    case wouldBlock
    /// The context was shut down.
    case terminated
}

/// What ``ZMQSocket/receiveFrames(flags:)`` came back with.
public enum ZMQFramesResult: Equatable, Sendable {
    /// A message, one array per frame.
    case frames([[UInt8]])
    /// Nothing arrived: `.dontWait` was given, or the receive timeout expired.
    case wouldBlock
    /// The context was shut down.
    case terminated

    /// The frames, or nil for `.wouldBlock` and `.terminated`.
    public var frames: [[UInt8]]? {
        if case .frames(let frames) = self { frames } else { nil }
    }
}

/// Milliseconds for a libzmq timeout option: nil is -1 (forever), rounded up, capped at `Int32.max`.
func milliseconds(_ duration: Duration?, _ what: StaticString) -> Int32 {
    guard let duration else { return -1 }
    precondition(duration >= .zero, "\(what) must not be negative")
    let (seconds, attoseconds) = duration.components
    let ms = seconds.multipliedReportingOverflow(by: 1000)
    if ms.overflow { return .max }
    let (total, overflow) = ms.partialValue.addingReportingOverflow((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    return overflow ? .max : Int32(clamping: total)
}
