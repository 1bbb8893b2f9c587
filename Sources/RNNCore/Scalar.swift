import RealModule

/// The floating-point types the core computes in: `Float` in production, `Double` for gradient
/// checks. Everything numeric is generic over it and specialised through `@inlinable`.
public protocol RNNScalar: BinaryFloatingPoint, SIMDScalar, Real, Sendable, Codable {
    /// `exp` of eight lanes at once.
    static func exp8(_ v: SIMD8<Self>) -> SIMD8<Self>
    /// Square root of eight non-negative lanes at once (the standard library's
    /// `SIMD8.squareRoot()` goes lane by lane).
    static func squareRoot8(_ v: SIMD8<Self>) -> SIMD8<Self>
    /// Conversion from Double, concrete so that specialised code compiles to one instruction
    /// (the generic `BinaryFloatingPoint` conversion is a slow library call).
    init(_ value: Double)
    /// The value as a Double, likewise.
    var double: Double { get }
    /// Eight lanes rounded to bfloat16 (the upper 16 bits of a Float, rounded to nearest even):
    /// the storage of Adafactor's first moment.
    static func bfloat16Bits8(_ v: SIMD8<Self>) -> SIMD8<UInt16>
    /// Eight bfloat16 values, exactly.
    static func fromBFloat16Bits8(_ b: SIMD8<UInt16>) -> SIMD8<Self>
}

/// Eight lanes, the width of an AVX register of Float.
public typealias Vec8<S: SIMDScalar> = SIMD8<S>

extension Float: RNNScalar {
    /// Vectorised `exp` (Cephes' `expf`: range reduction by ln 2 and a degree-6 polynomial),
    /// accurate to about 2 ulp on [-87.3, 88.3]. Inputs beyond are clamped, so the result is
    /// finite and positive for every finite input; NaN propagates.
    @inlinable @inline(__always)
    public static func exp8(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let low = SIMD8<Float>(repeating: -87.3), high = SIMD8<Float>(repeating: 88.3)
        var x = v.replacing(with: low, where: v .< low)
        x = x.replacing(with: high, where: x .> high)
        let n = (x * 1.442_695_04).rounded(.toNearestOrEven)
        var r = x - n * 0.693_359_375
        r = r + n * 2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_1e-4)
        p = p * r + 1.398_199_9e-3
        p = p * r + 8.333_452e-3
        p = p * r + 4.166_579_6e-2
        p = p * r + 1.666_666_5e-1
        p = p * r + 5.000_000_1e-1
        p = p * (r * r) + r + 1
        // 2^n from the bits: adding 1.5·2^23 puts the integer n in the low mantissa bits.
        let shifted = unsafeBitCast(n + 12_582_912, to: SIMD8<Int32>.self)
        let scale = unsafeBitCast((shifted &- 0x4B3F_FF81) &<< 23, to: SIMD8<Float>.self)
        // NaN fails both comparisons above and is clamped to nothing; give it back.
        return (p * scale).replacing(with: v, where: v .!= v)
    }

    /// `v · rsqrt(v)`, the reciprocal square root from the bit-level first guess refined by
    /// three Newton steps (relative error below 1e-7 for normal inputs); 0 stays 0.
    @inlinable @inline(__always)
    public static func squareRoot8(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let bits = unsafeBitCast(v, to: SIMD8<Int32>.self)
        var y = unsafeBitCast(0x5F37_5A86 &- (bits &>> 1), to: SIMD8<Float>.self)
        let half = 0.5 * v
        y = y * (1.5 - half * y * y)
        y = y * (1.5 - half * y * y)
        y = y * (1.5 - half * y * y)
        return v * y
    }

    @inlinable @inline(__always)
    public var double: Double { Double(self) }

    @inlinable @inline(__always)
    public static func bfloat16Bits8(_ v: SIMD8<Float>) -> SIMD8<UInt16> {
        // The upper halves of the rounded words are the odd 16-bit lanes (little endian); the
        // generic integer SIMD conversions are not inlined, these shuffles are.
        let bits = unsafeBitCast(v, to: SIMD8<UInt32>.self)
        return unsafeBitCast(bits &+ 0x7FFF &+ ((bits &>> 16) & 1), to: SIMD16<UInt16>.self).oddHalf
    }

    @inlinable @inline(__always)
    public static func fromBFloat16Bits8(_ b: SIMD8<UInt16>) -> SIMD8<Float> {
        var words = SIMD16<UInt16>()
        words.oddHalf = b
        return unsafeBitCast(words, to: SIMD8<Float>.self)
    }
}

extension Double: RNNScalar {
    /// `exp` lane by lane; Double is the gradient-check type, where accuracy beats speed.
    @inlinable
    public static func exp8(_ v: SIMD8<Double>) -> SIMD8<Double> {
        var out = SIMD8<Double>()
        for i in 0..<8 { out[i] = Double.exp(v[i]) }
        return out
    }

    @inlinable
    public static func squareRoot8(_ v: SIMD8<Double>) -> SIMD8<Double> {
        var out = SIMD8<Double>()
        for i in 0..<8 { out[i] = v[i].squareRoot() }
        return out
    }

    @inlinable @inline(__always)
    public var double: Double { self }

    /// Through Float: the bfloat16 of a Double is that of the Double rounded to Float first.
    @inlinable
    public static func bfloat16Bits8(_ v: SIMD8<Double>) -> SIMD8<UInt16> {
        var f = SIMD8<Float>()
        for i in 0..<8 { f[i] = Float(v[i]) }
        return Float.bfloat16Bits8(f)
    }

    @inlinable
    public static func fromBFloat16Bits8(_ b: SIMD8<UInt16>) -> SIMD8<Double> {
        let f = Float.fromBFloat16Bits8(b)
        var out = SIMD8<Double>()
        for i in 0..<8 { out[i] = Double(f[i]) }
        return out
    }
}

/// `count` scalars (at least one), zeroed with one memset: `initialize(repeating:)` from another
/// module runs unspecialised, element by element, which made creating 10,000 trainers slow.
/// Zero bits are 0.0 for every `RNNScalar`. Free with `deallocate()`.
@usableFromInline
func allocateZeroed<S: RNNScalar>(_ count: Int) -> UnsafeMutablePointer<S> {
    let n = max(count, 1)
    let raw = UnsafeMutableRawPointer.allocate(byteCount: n * MemoryLayout<S>.stride, alignment: MemoryLayout<S>.alignment)
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: n * MemoryLayout<S>.stride)
    return raw.bindMemory(to: S.self, capacity: n)
}
