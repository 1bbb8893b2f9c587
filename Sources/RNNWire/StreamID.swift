// Stream ids (docs/protocol.md, "Samples"): what makes a valid one, how one is shown, and its
// hash, which decides the stream's shard, worker and slot.

/// FNV-1a, 64 bits, over a stream id: the same on every host and in every version. It decides
/// the stream's shard (`StreamShard.shardHash(hash) % N`, part of the protocol: docs/protocol.md,
/// "Sharding"), and, through `placementHash`, its worker and its slot in the worker's stream
/// table (Sharding.swift).
@inline(__always)
public func streamHash(_ id: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in id { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    return h
}

/// A stream id as text when it is valid UTF-8 (and a valid id), else in hex (its first 64 bytes).
public func printableStreamID(_ id: [UInt8]) -> String {
    id.withUnsafeBytes { b in
        guard validateStreamID(b) != nil else { return String(decoding: b, as: UTF8.self) }
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = Array("0x".utf8)
        for byte in b.prefix(64) { hex += [digits[Int(byte >> 4)], digits[Int(byte & 15)]] }
        return String(decoding: hex, as: UTF8.self)
    }
}
