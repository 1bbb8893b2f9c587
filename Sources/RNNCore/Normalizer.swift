import RealModule

/// Online standardisation per channel: Welford's running mean and variance, optionally with
/// exponential forgetting (docs/numerics.md, "Normalisation"). Statistics are kept in Double
/// whatever the model's scalar, so that a long stream does not lose them to rounding.
public struct RunningNormalizer: Sendable, Codable, Equatable {
    /// Samples folded in.
    public var count: Int { _count }
    public var mean: [Double] { _mean }
    /// Running variance (population form).
    public var variance: [Double] { _variance }
    public let forgetting: Double?
    public let enabled: Bool

    @usableFromInline var _count = 0
    @usableFromInline var _mean: [Double]
    @usableFromInline var _variance: [Double]

    public init(channels: Int, normalization: Normalization) {
        _mean = Array(repeating: 0, count: channels)
        _variance = Array(repeating: 0, count: channels)
        switch normalization {
        case .none: enabled = false; forgetting = nil
        case .running(let f): enabled = true; forgetting = f
        }
    }

    /// Folds a sample into the statistics (all channels at once).
    @inlinable
    public mutating func update<S: RNNScalar>(_ x: UnsafePointer<S>) {
        guard enabled else { return }
        _count += 1
        var alpha = 1 / Double(_count)
        if let f = forgetting { alpha = max(alpha, 1 - f) }
        for j in _mean.indices {
            let delta = x[j].double - _mean[j]
            _mean[j] += alpha * delta
            _variance[j] = (1 - alpha) * (_variance[j] + alpha * delta * delta)
        }
    }

    /// Channel `j`'s level moved to `value` for good (a level shift the forecaster adopted): the
    /// mean starts there; the variance, the spread around the level, is kept.
    public mutating func adoptLevel(_ j: Int, _ value: Double) {
        guard enabled else { return }
        _mean[j] = value
    }

    /// The divisor of channel `j`: the standard deviation, floored so that a constant channel
    /// does not divide by zero.
    @inlinable
    public func scale(_ j: Int) -> Double {
        guard enabled else { return 1 }
        return max(_variance[j].squareRoot(), 1e-6 * max(1, abs(_mean[j])))
    }

    @inlinable
    public func offset(_ j: Int) -> Double { enabled ? _mean[j] : 0 }

    /// `z = (x - mean) / std` for every channel.
    @inlinable
    public func normalize<S: RNNScalar>(_ x: UnsafePointer<S>, into z: UnsafeMutablePointer<S>) {
        for j in _mean.indices { z[j] = S((x[j].double - offset(j)) / scale(j)) }
    }
}

/// The typical size of each channel's change from one sample to the next: the running root mean
/// square of `x_t − x_{t−1}`, weighted like the normaliser (every change the same, or with the
/// same forgetting factor). The `.change` formulation divides changes by it, in and out of the
/// network (docs/numerics.md, "Formulations"). Statistics in Double.
public struct ChangeScale: Sendable, Equatable {
    /// Changes folded in (one fewer than the samples).
    public var count: Int { _count }
    public var meanSquare: [Double] { _meanSquare }
    public let forgetting: Double?

    @usableFromInline var _count = 0
    @usableFromInline var _meanSquare: [Double]

    public init(channels: Int, normalization: Normalization) {
        _meanSquare = Array(repeating: 0, count: channels)
        if case .running(let f) = normalization { forgetting = f } else { forgetting = nil }
    }

    /// Folds in the change from `previous` to `x` (all channels at once).
    @inlinable
    public mutating func update<S: RNNScalar>(_ x: UnsafePointer<S>, previous: UnsafePointer<S>) {
        _count += 1
        var alpha = 1 / Double(_count)
        if let f = forgetting { alpha = max(alpha, 1 - f) }
        for j in _meanSquare.indices {
            let d = x[j].double - previous[j].double
            _meanSquare[j] += alpha * (d * d - _meanSquare[j])
        }
    }

    /// The divisor of channel `j`'s changes: their RMS, floored like the normaliser's scale so
    /// that a channel that has not changed yet does not divide by zero.
    @inlinable
    public func scale(_ j: Int, mean: Double) -> Double {
        max(_meanSquare[j].squareRoot(), 1e-6 * max(1, abs(mean)))
    }
}
