// Sharding the streams over several rnnd instances (docs/scaling.md), and routing them to the
// workers inside one instance.
//
// Both start from the FNV-1a hash of the stream id (`streamHash`, Records.swift), mixed by
// splitmix64's finalizer (a bijection whose every output bit depends on every input bit: FNV-1a's
// own low bits depend only on the low bits of each byte, so `FNV-1a % 4` put `sensor-A` and
// `sensor-a` on one shard always). The shard is part of the protocol, the same on every host and
// in every version, so that instances, `rnnd checkpoint export --shard` and anything an operator
// writes agree on which instance owns a stream: shard = mix(hash XOR 0x9E3779B97F4A7C15) % N.
// The worker inside an instance is private to it and comes from mix(hash), without the constant:
// the two mixes are unrelated, so every shard's streams spread over all the instance's workers
// and over all the slots of their stream tables.

/// Shard `index` of `count`: the streams whose id hashes to it, `shardHash(streamHash(id)) % count == index`.
///
/// Written `I/N` (`0/2`, `1/2`) on the command line and in the configuration file.
public struct StreamShard: Hashable, Sendable, CustomStringConvertible {
    /// The most shards a partition may have.
    public static let maxCount = 65_536

    /// The refusal reason of a sample whose stream another shard owns (docs/protocol.md).
    public static let otherShardReason = "other_shard"

    /// 0 ..< count.
    public let index: Int
    /// N, 1 ... ``maxCount``.
    public let count: Int

    public init?(index: Int, count: Int) {
        guard (1...Self.maxCount).contains(count), (0..<count).contains(index) else { return nil }
        self.index = index
        self.count = count
    }

    /// Parses `I/N`: two decimal numbers, `0 ≤ I < N ≤ 65536`. Nil when `text` is not that;
    /// ``problem(_:)`` says why.
    public init?(parsing text: String) {
        guard Self.problem(text) == nil, let slash = text.firstIndex(of: "/"),
            let index = Int(text[..<slash]), let count = Int(text[text.index(after: slash)...])
        else { return nil }
        self.init(index: index, count: count)
    }

    /// What is wrong with `text` as a shard, in words an operator can act on, or nil.
    public static func problem(_ text: String) -> String? {
        let expected = "expected \"I/N\", shard I of N with 0 ≤ I < N (\"0/2\" and \"1/2\" split the streams in two)"
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2,
            parts.allSatisfy({ !$0.isEmpty && $0.count <= 6 && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let index = Int(parts[0]), let count = Int(parts[1])
        else { return "\(expected), got \"\(text)\"" }
        if !(1...maxCount).contains(count) { return "the number of shards must be from 1 to \(maxCount), got \"\(text)\"" }
        if index >= count {
            return "shard \(index) of \(count) does not exist: they are numbered from 0, \"0/\(count)\" to \"\(count - 1)/\(count)\"; got \"\(text)\""
        }
        return nil
    }

    /// The stream id's hash: FNV-1a, 64 bits, over its bytes (docs/protocol.md, "Sharding").
    public static func hash(of id: some Sequence<UInt8>) -> UInt64 {
        Array(id).withUnsafeBytes { streamHash($0) }
    }

    /// The value a stream's shard is read from: the stream hash XOR 0x9E3779B97F4A7C15 (the
    /// golden-ratio constant, so that it differs from the worker placement's mix), through
    /// splitmix64's finalizer.
    @inline(__always)
    public static func shardHash(_ hash: UInt64) -> UInt64 {
        placementHash(hash ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The shard of N that owns the stream with this (stream) hash.
    @inline(__always)
    public static func index(hash: UInt64, count: Int) -> Int {
        Int(shardHash(hash) % UInt64(count))
    }

    /// Whether this shard owns the stream with this (stream) hash.
    @inline(__always)
    public func owns(hash: UInt64) -> Bool {
        Self.index(hash: hash, count: count) == index
    }

    /// Whether this shard owns the stream `id`.
    public func owns(id: some Sequence<UInt8>) -> Bool {
        owns(hash: Self.hash(of: id))
    }

    public var description: String { "\(index)/\(count)" }
}

/// The bits a stream is placed by inside an instance (its worker, its slot in a worker's stream
/// table): the stream hash through splitmix64's finalizer, a bijection whose every output bit
/// depends on every input bit. FNV-1a alone is weak in places: its low k bits depend only on the
/// low k bits of each byte (what `hash % N` would read for N a power of two), and its middle
/// bits barely change with the last byte of the id (`s0001`, `s0002`, ... would share a worker).
@inline(__always)
package func placementHash(_ hash: UInt64) -> UInt64 {
    var z = hash
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// The worker, of `workers`, that learns the stream with this hash: from the high half of the
/// placement hash (a worker's stream table takes its slots from the low half).
@inline(__always)
package func workerIndex(hash: UInt64, workers: Int) -> Int {
    Int((placementHash(hash) >> 32) % UInt64(workers))
}
