import RNNCore
import RealModule

/// Central finite differences of `loss` with respect to parameter `index` of `trainer`,
/// `(L(θ + ε) - L(θ - ε)) / 2ε`, leaving the parameter as it was.
public func finiteDifference(
    _ trainer: OnlineTrainer<Double>, index: Int, epsilon: Double = 1e-6,
    loss: () -> Double
) -> Double {
    let p = trainer.network.parameters
    let saved = p[index]
    p[index] = saved + epsilon
    let plus = loss()
    p[index] = saved - epsilon
    let minus = loss()
    p[index] = saved
    return (plus - minus) / (2 * epsilon)
}

/// `|a - b| / max(|a|, |b|, floor)`: relative where the values are large, absolute near zero.
public func relativeError(_ a: Double, _ b: Double, floor: Double = 1e-7) -> Double {
    abs(a - b) / max(abs(a), abs(b), floor)
}

/// A deterministic stream for tests: `channels` sines of different frequencies plus Gaussian
/// noise, `count` samples.
public func noisySines(count: Int, channels: Int, noise: Double, seed: UInt64) -> [[Double]] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { t in
        (0..<channels).map { j in
            let omega = 0.3 + 0.17 * Double(j)
            return Double.sin(omega * Double(t) + Double(j)) + noise * rng.normal()
        }
    }
}
