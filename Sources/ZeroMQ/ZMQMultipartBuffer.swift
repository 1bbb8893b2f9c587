/// Caller-owned storage for ``ZMQSocket/receiveMultipart(into:flags:)``: allocated once, reused
/// for every message, so receiving allocates nothing.
///
/// The frames of a message are packed one after another into `capacity` bytes; at most
/// `maxFrames` of them are kept. Frame views are valid until the next receive into this buffer.
public struct ZMQMultipartBuffer: ~Copyable {
    /// The most frames a message may have.
    public let maxFrames: Int
    /// The most bytes all frames of a message may have together.
    public let capacity: Int
    /// The frames held: the whole message after `.message`, the leading frames that fitted after
    /// `.truncated`, none after `.wouldBlock` or `.terminated`.
    public internal(set) var count: Int = 0

    let storage: UnsafeMutableRawPointer
    let starts: UnsafeMutablePointer<Int>
    let lengths: UnsafeMutablePointer<Int>

    public init(maxFrames: Int, capacity: Int) {
        precondition(maxFrames >= 1, "ZMQMultipartBuffer: maxFrames must be at least 1")
        precondition(capacity >= 0, "ZMQMultipartBuffer: capacity must not be negative")
        self.maxFrames = maxFrames
        self.capacity = capacity
        storage = .allocate(byteCount: max(capacity, 1), alignment: 16)
        starts = .allocate(capacity: maxFrames)
        lengths = .allocate(capacity: maxFrames)
    }

    deinit {
        storage.deallocate()
        starts.deallocate()
        lengths.deallocate()
    }

    /// The bytes of frame `index`, valid until the next receive into this buffer.
    public func frame(_ index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < count, "ZMQMultipartBuffer: frame \(index) of \(count)")
        return UnsafeRawBufferPointer(start: storage + starts[index], count: lengths[index])
    }

    /// A copy of frame `index`.
    public func bytes(_ index: Int) -> [UInt8] {
        Array(frame(index))
    }
}
