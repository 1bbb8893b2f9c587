internal import CZeroMQ

/// A ZeroMQ socket, owned by one thread for its whole life and closed when it goes away.
///
/// libzmq sockets are not thread-safe, so this type is neither copyable nor `Sendable`: create it
/// on the thread that uses it. Closing happens in `deinit`. The linger period starts at zero (libzmq's own
/// default is to wait forever for unsent messages, which would hang shutdown); a socket whose last
/// messages must get out calls ``setLinger(_:)`` first.
///
/// Every method but `deinit` may fail with ``ZMQError/terminated(function:)`` (or return a
/// `.terminated` outcome) once the context was shut down.
public struct ZMQSocket: ~Copyable {
    let handle: UnsafeMutableRawPointer
    /// Keeps the context, and so its `zmq_ctx_term`, alive until this socket has been closed.
    public let context: ZMQContext
    public let type: ZMQSocketType

    /// A new socket of `type` in `context`, with linger 0.
    ///
    /// The corresponding C function is `zmq_socket`.
    public init(_ context: ZMQContext, type: ZMQSocketType) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw failure(zmq_errno(), "zmq_socket")
        }
        var zero: Int32 = 0
        if zmq_setsockopt(handle, ZMQ_LINGER, &zero, MemoryLayout<Int32>.size) != 0 {
            let error = failure(zmq_errno(), "zmq_setsockopt")
            zmq_close(handle)
            throw error
        }
        self.handle = handle
        self.context = context
        self.type = type
    }

    /// The corresponding C function is `zmq_close`.
    deinit {
        // Its only error is ENOTSOCK, for a handle that is not a socket.
        if zmq_close(handle) != 0 { _ = failure(zmq_errno(), "zmq_close") }
    }

    // MARK: Endpoints

    /// Accepts connections on `address` (`tcp://127.0.0.1:5556`, `tcp://127.0.0.1:*` for a port
    /// the system picks, `ipc:///path`, `inproc://name`).
    ///
    /// The corresponding C function is `zmq_bind`.
    public func bind(_ address: String) throws(ZMQError) {
        try call("zmq_bind") { zmq_bind(handle, address) }
    }

    /// Connects to `address`; libzmq connects in the background and reconnects when the peer goes.
    ///
    /// The corresponding C function is `zmq_connect`.
    public func connect(_ address: String) throws(ZMQError) {
        try call("zmq_connect") { zmq_connect(handle, address) }
    }

    /// Stops accepting on an address bound before (for a wildcard port, the ``lastEndpoint``).
    ///
    /// The corresponding C function is `zmq_unbind`.
    public func unbind(_ address: String) throws(ZMQError) {
        try call("zmq_unbind") { zmq_unbind(handle, address) }
    }

    /// Drops a connection made by ``connect(_:)``.
    ///
    /// The corresponding C function is `zmq_disconnect`.
    public func disconnect(_ address: String) throws(ZMQError) {
        try call("zmq_disconnect") { zmq_disconnect(handle, address) }
    }

    /// Binds or connects as `endpoint` says.
    public func attach(_ endpoint: ZMQEndpoint) throws(ZMQError) {
        switch endpoint.action {
        case .bind: try bind(endpoint.address)
        case .connect: try connect(endpoint.address)
        }
    }

    /// Binds `@transport://address` or connects `>transport://address` (``ZMQEndpoint``).
    public func attach(_ endpoint: String) throws(ZMQError) {
        try attach(ZMQEndpoint(parsing: endpoint))
    }

    /// The address the socket was last bound to, with a wildcard port resolved
    /// (`tcp://127.0.0.1:41234`); empty when it never was.
    ///
    /// The corresponding C function is `zmq_getsockopt(ZMQ_LAST_ENDPOINT)`.
    public var lastEndpoint: String {
        get throws(ZMQError) {
            // The longest is an ipc path: sun_path holds 108 bytes, "ipc://" adds 6.
            var text = [UInt8](repeating: 0, count: 256)
            var size = text.count
            try call("zmq_getsockopt") {
                text.withUnsafeMutableBytes { zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, $0.baseAddress, &size) }
            }
            let end = text[..<min(size, text.count)].firstIndex(of: 0) ?? min(size, text.count)
            return String(decoding: text[..<end], as: UTF8.self)
        }
    }

    // MARK: Options

    /// Sets an `int`-valued option.
    ///
    /// The corresponding C function is `zmq_setsockopt`.
    public func setOption(_ option: ZMQSocketOption, _ value: Int32) throws(ZMQError) {
        var value = value
        try call("zmq_setsockopt") { zmq_setsockopt(handle, option.rawValue, &value, MemoryLayout<Int32>.size) }
    }

    /// Reads an `int`-valued option.
    ///
    /// The corresponding C function is `zmq_getsockopt`.
    public func option(_ option: ZMQSocketOption) throws(ZMQError) -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        try call("zmq_getsockopt") { zmq_getsockopt(handle, option.rawValue, &value, &size) }
        return value
    }

    /// At most `messages` queued per peer for sending (0 = no limit; libzmq's default is 1000).
    /// Past it PUB and ROUTER drop, the others block or return `.wouldBlock`. Applies to
    /// connections made after the call.
    ///
    /// The corresponding C function is `zmq_setsockopt(ZMQ_SNDHWM)`.
    public func setSendHighWaterMark(_ messages: Int) throws(ZMQError) {
        try setOption(.sendHighWaterMark, Int32(clamping: messages))
    }

    /// At most `messages` queued per peer on the receiving side (0 = no limit; default 1000).
    /// Applies to connections made after the call.
    ///
    /// The corresponding C function is `zmq_setsockopt(ZMQ_RCVHWM)`.
    public func setReceiveHighWaterMark(_ messages: Int) throws(ZMQError) {
        try setOption(.receiveHighWaterMark, Int32(clamping: messages))
    }

    /// How long unsent messages are kept once the socket is closed; nil waits until they are
    /// sent, which can hang shutdown if the peer is gone. Sockets of this type start at zero.
    ///
    /// The corresponding C function is `zmq_setsockopt(ZMQ_LINGER)`.
    public func setLinger(_ linger: Duration?) throws(ZMQError) {
        try setOption(.linger, milliseconds(linger, "linger"))
    }

    /// How long a blocking receive waits before returning `.wouldBlock`; nil waits forever
    /// (the default). Rounded up to whole milliseconds.
    ///
    /// The corresponding C function is `zmq_setsockopt(ZMQ_RCVTIMEO)`.
    public func setReceiveTimeout(_ timeout: Duration?) throws(ZMQError) {
        try setOption(.receiveTimeout, milliseconds(timeout, "receive timeout"))
    }

    /// How long a blocking send waits before returning `.wouldBlock`; nil waits forever
    /// (the default). Rounded up to whole milliseconds.
    ///
    /// The corresponding C function is `zmq_setsockopt(ZMQ_SNDTIMEO)`.
    public func setSendTimeout(_ timeout: Duration?) throws(ZMQError) {
        try setOption(.sendTimeout, milliseconds(timeout, "send timeout"))
    }

    /// The largest inbound frame, in bytes; nil is no limit (the default). A peer that sends a
    /// larger one is disconnected and the frame's message is never delivered; other peers are not
    /// affected, and a connecting peer reconnects. Applies to connections made after the call, so
    /// set it before ``bind(_:)`` or ``connect(_:)``.
    ///
    /// The corresponding C function is `zmq_setsockopt(ZMQ_MAXMSGSIZE)`.
    public func setMaxMessageSize(_ bytes: Int?) throws(ZMQError) {
        if let bytes { precondition(bytes >= 0, "maximum message size must not be negative") }
        var value = Int64(bytes ?? -1)
        try call("zmq_setsockopt") { zmq_setsockopt(handle, ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size) }
    }

    /// The largest inbound frame in bytes, or nil for no limit.
    ///
    /// The corresponding C function is `zmq_getsockopt(ZMQ_MAXMSGSIZE)`.
    public var maxMessageSize: Int? {
        get throws(ZMQError) {
            var value: Int64 = 0
            var size = MemoryLayout<Int64>.size
            try call("zmq_getsockopt") { zmq_getsockopt(handle, ZMQ_MAXMSGSIZE, &value, &size) }
            return value < 0 ? nil : Int(value)
        }
    }

    /// Receives messages whose first frame starts with `prefix` (SUB and XSUB); the empty prefix
    /// receives everything. Subscriptions add up; a SUB socket starts with none.
    ///
    /// The corresponding C function is `zmq_setsockopt(ZMQ_SUBSCRIBE)`.
    public func subscribe(_ prefix: some Collection<UInt8> = [UInt8]()) throws(ZMQError) {
        try setBytes(ZMQ_SUBSCRIBE, prefix)
    }

    /// Receives messages whose first frame starts with the UTF-8 bytes of `prefix`.
    public func subscribe(_ prefix: String) throws(ZMQError) {
        try setBytes(ZMQ_SUBSCRIBE, prefix.utf8)
    }

    /// Removes one earlier ``subscribe(_:)-(Collection<UInt8>)`` of the same prefix.
    ///
    /// The corresponding C function is `zmq_setsockopt(ZMQ_UNSUBSCRIBE)`.
    public func unsubscribe(_ prefix: some Collection<UInt8> = [UInt8]()) throws(ZMQError) {
        try setBytes(ZMQ_UNSUBSCRIBE, prefix)
    }

    /// Removes one earlier subscription to the UTF-8 bytes of `prefix`.
    public func unsubscribe(_ prefix: String) throws(ZMQError) {
        try setBytes(ZMQ_UNSUBSCRIBE, prefix.utf8)
    }

    /// Sets a binary or string option.
    ///
    /// The corresponding C function is `zmq_setsockopt`.
    func setBytes(_ option: Int32, _ bytes: some Collection<UInt8>) throws(ZMQError) {
        let array = Array(bytes)
        try call("zmq_setsockopt") { array.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) } }
    }

    // MARK: Sending

    /// Sends one frame; with `.sendMore` in `flags` more frames of the same message follow.
    ///
    /// The corresponding C function is `zmq_send`.
    public func send(_ frame: UnsafeRawBufferPointer, flags: ZMQFlags = []) throws(ZMQError) -> ZMQSendResult {
        switch try ioCall("zmq_send", { zmq_send(handle, frame.baseAddress, frame.count, flags.rawValue) }) {
        case .done: .sent
        case .wouldBlock: .wouldBlock
        case .terminated: .terminated
        }
    }

    /// Sends `frames` as one multipart message, `ZMQ_SNDMORE` on all but the last (and on the
    /// last too when `flags` has `.sendMore`). Nothing here allocates: pass a reused collection.
    ///
    /// With `.dontWait` only the first frame can return `.wouldBlock`, and then nothing was sent:
    /// once libzmq takes the first frame of a message it takes the rest (its high-water mark counts
    /// whole messages), so the other frames are sent without `.dontWait`.
    ///
    /// The corresponding C function is `zmq_send`.
    public func sendMultipart<Frames: Collection<UnsafeRawBufferPointer>>(
        _ frames: Frames, flags: ZMQFlags = []
    ) throws(ZMQError) -> ZMQSendResult {
        precondition(!frames.isEmpty, "a ZeroMQ message has at least one frame")
        var index = frames.startIndex
        var first = true
        while index != frames.endIndex {
            let frame = frames[index]
            frames.formIndex(after: &index)
            var partFlags = index == frames.endIndex ? flags : flags.union(.sendMore)
            if !first { partFlags.remove(.dontWait) }
            var result = try send(frame, flags: partFlags)
            while result == .wouldBlock && !first {
                result = try send(frame, flags: partFlags)  // only a send timeout gets here
            }
            if result != .sent { return result }
            first = false
        }
        return .sent
    }

    /// Sends `frames` as one multipart message, as ``sendMultipart(_:flags:)-(Frames,_)`` does; a
    /// convenience for tests and tools.
    public func sendMultipart(_ frames: [[UInt8]], flags: ZMQFlags = []) throws(ZMQError) -> ZMQSendResult {
        precondition(!frames.isEmpty, "a ZeroMQ message has at least one frame")
        for index in frames.indices {
            var partFlags = index == frames.count - 1 ? flags : flags.union(.sendMore)
            if index > 0 { partFlags.remove(.dontWait) }
            var status = IOStatus.wouldBlock
            repeat {
                status = try ioCall("zmq_send") {
                    frames[index].withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, partFlags.rawValue) }
                }
                if case .terminated = status { return .terminated }
                if case .wouldBlock = status, index == 0 { return .wouldBlock }
            } while !status.isDone  // only a send timeout repeats; the message must be completed
        }
        return .sent
    }

    // MARK: Receiving

    /// Receives one multipart message into `buffer`, reusing its storage: no allocation here.
    ///
    /// A message larger than the buffer (more than `maxFrames` frames or `capacity` bytes in
    /// all) is still received whole, so the next call starts at the next message, and comes back
    /// as `.truncated` with the leading frames that fitted in `buffer`.
    ///
    /// The corresponding C function is `zmq_recv`, with `zmq_getsockopt(ZMQ_RCVMORE)` between frames.
    public func receiveMultipart(into buffer: inout ZMQMultipartBuffer, flags: ZMQFlags = []) throws(ZMQError)
        -> ZMQReceiveResult
    {
        buffer.count = 0
        var used = 0, frames = 0, bytes = 0
        var fits = true
        var partFlags = flags.intersection(.dontWait).rawValue
        while true {
            let room = fits && frames < buffer.maxFrames ? buffer.capacity - used : 0
            let size: Int
            switch try ioCall("zmq_recv", { zmq_recv(handle, buffer.storage + used, room, partFlags) }) {
            case .done(let n): size = Int(n)
            case .terminated: buffer.count = 0; return .terminated
            case .wouldBlock:
                if frames == 0 { return .wouldBlock }
                continue  // the rest of a message arrives with its first frame; not reached
            }
            if fits && frames < buffer.maxFrames && size <= room {
                buffer.starts[frames] = used
                buffer.lengths[frames] = size
                buffer.count = frames + 1
                used += size
            } else {
                fits = false
            }
            frames += 1
            bytes += size
            guard let more = try receiveMore() else { buffer.count = 0; return .terminated }
            if !more { break }
            partFlags = 0
        }
        return fits ? .message(frames: frames) : .truncated(frames: frames, bytes: bytes)
    }

    /// Receives one multipart message as arrays of bytes; a convenience for tests and tools
    /// (it allocates per frame).
    ///
    /// The corresponding C functions are `zmq_msg_recv` and `zmq_msg_more`.
    public func receiveFrames(flags: ZMQFlags = []) throws(ZMQError) -> ZMQFramesResult {
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        zmq_msg_init(message)  // cannot fail
        defer {
            zmq_msg_close(message)
            message.deallocate()
        }
        var frames: [[UInt8]] = []
        var partFlags = flags.intersection(.dontWait).rawValue
        while true {
            switch try ioCall("zmq_msg_recv", { zmq_msg_recv(message, handle, partFlags) }) {
            case .done: break
            case .terminated: return .terminated
            case .wouldBlock:
                if frames.isEmpty { return .wouldBlock }
                continue
            }
            frames.append(Array(UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message))))
            if zmq_msg_more(message) == 0 { return .frames(frames) }
            partFlags = 0
        }
    }

    /// Whether more frames of the message being received follow; nil once the context is shut down.
    private func receiveMore() throws(ZMQError) -> Bool? {
        var more: Int32 = 0
        var size = MemoryLayout<Int32>.size
        switch try ioCall("zmq_getsockopt", { zmq_getsockopt(handle, ZMQ_RCVMORE, &more, &size) }) {
        case .done: return more != 0
        case .terminated: return nil
        case .wouldBlock: preconditionFailure("zmq_getsockopt(ZMQ_RCVMORE) cannot block")
        }
    }
}

@available(*, unavailable, message: "libzmq sockets are not thread-safe: create a socket on the thread that uses it")
extension ZMQSocket: Sendable {}
