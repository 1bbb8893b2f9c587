import RealModule

/// SplitMix64 (Steele, Lea & Flood 2014): a small, fast, seedable generator, so that `--seed`
/// gives the same model on every machine and every Swift version.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-bound, bound), from the top 53 bits.
    public mutating func uniform(_ bound: Double) -> Double {
        let u = Double(next() >> 11) * 0x1.0p-53
        return (2 * u - 1) * bound
    }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u1 = (Double(next() >> 11) + 0.5) * 0x1.0p-53
        let u2 = Double(next() >> 11) * 0x1.0p-53
        return (-2 * Double.log(u1)).squareRoot() * Double.cos(2 * .pi * u2)
    }
}
