import RealModule

/// The floating-point types the core computes in: `Float` in production, `Double` for gradient
/// checks. Everything numeric is generic over it and specialised through `@inlinable`.
public protocol RNNScalar: BinaryFloatingPoint, SIMDScalar, Real, Sendable, Codable {
    /// `exp` of eight lanes at once.
    static func exp8(_ v: SIMD8<Self>) -> SIMD8<Self>
}

/// Eight lanes, the width of an AVX register of Float.
public typealias Vec8<S: SIMDScalar> = SIMD8<S>

extension Float: RNNScalar {
    /// Vectorised `exp` (Cephes' `expf`: range reduction by ln 2 and a degree-6 polynomial),
    /// accurate to about 2 ulp on [-87.3, 88.3]. Inputs beyond are clamped, so the result is
    /// finite and positive for every finite input; NaN propagates.
    @inlinable @inline(__always)
    public static func exp8(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let x = v.clamped(lowerBound: SIMD8(repeating: -87.3), upperBound: SIMD8(repeating: 88.3))
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
        let bits = (SIMD8<Int32>(n, rounding: .towardZero) &+ 127) &<< 23
        let scale = unsafeBitCast(bits, to: SIMD8<Float>.self)
        // clamp keeps NaN out of `clamped`'s comparisons only partly; restore it explicitly.
        return (p * scale).replacing(with: v, where: v .!= v)
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
}
