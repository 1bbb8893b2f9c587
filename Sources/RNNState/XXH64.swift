/// XXH64 (Yann Collet's xxHash, 64-bit, seed 0): the checksum of every checkpoint record.
/// Chosen over CRC-32 for speed: a restore of 10,000 streams checks about half a gigabyte, and
/// XXH64 runs at several GB/s in plain Swift. Matches the reference implementation
/// (Tests/RNNDaemonTests/CheckpointTests.swift pins values computed by python-xxhash).
package func xxh64(_ data: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
    let p1: UInt64 = 0x9E37_79B1_85EB_CA87, p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    let p3: UInt64 = 0x1656_67B1_9E37_79F9, p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    let p5: UInt64 = 0x27D4_EB2F_1656_67C5
    @inline(__always) func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
    @inline(__always) func round(_ acc: UInt64, _ lane: UInt64) -> UInt64 { rotl(acc &+ lane &* p2, 31) &* p1 }
    @inline(__always) func merge(_ acc: UInt64, _ v: UInt64) -> UInt64 { (acc ^ round(0, v)) &* p1 &+ p4 }
    @inline(__always) func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: data.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
    @inline(__always) func u32(_ o: Int) -> UInt64 { UInt64(UInt32(littleEndian: data.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }

    let n = data.count
    var o = 0
    var h: UInt64
    if n >= 32 {
        var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
        while o + 32 <= n {
            v1 = round(v1, u64(o))
            v2 = round(v2, u64(o + 8))
            v3 = round(v3, u64(o + 16))
            v4 = round(v4, u64(o + 24))
            o += 32
        }
        h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
        h = merge(h, v1)
        h = merge(h, v2)
        h = merge(h, v3)
        h = merge(h, v4)
    } else {
        h = seed &+ p5
    }
    h = h &+ UInt64(n)
    while o + 8 <= n {
        h = rotl(h ^ round(0, u64(o)), 27) &* p1 &+ p4
        o += 8
    }
    if o + 4 <= n {
        h = rotl(h ^ (u32(o) &* p1), 23) &* p2 &+ p3
        o += 4
    }
    while o < n {
        h = rotl(h ^ (UInt64(data[o]) &* p5), 11) &* p1
        o += 1
    }
    h ^= h >> 33
    h = h &* p2
    h ^= h >> 29
    h = h &* p3
    h ^= h >> 32
    return h
}
