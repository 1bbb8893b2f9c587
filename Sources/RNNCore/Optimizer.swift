import RealModule

/// The optimizer's state over the flat parameter buffer: one pass per update
/// (docs/numerics.md, "Optimizers").
public final class Optimizer<S: RNNScalar> {
    public let kind: OptimizerKind
    public let count: Int
    /// First moment (Adam) or velocity (momentum); `count` values.
    public let moment1: UnsafeMutablePointer<S>
    /// Second moment (Adam); `count` values.
    public let moment2: UnsafeMutablePointer<S>
    /// Updates taken, the `n` of Adam's bias correction.
    public var steps: Int = 0

    public init(kind: OptimizerKind, count: Int) {
        self.kind = kind
        self.count = count
        moment1 = .allocate(capacity: max(count, 1))
        moment1.initialize(repeating: 0, count: max(count, 1))
        moment2 = .allocate(capacity: max(count, 1))
        moment2.initialize(repeating: 0, count: max(count, 1))
    }

    deinit {
        moment1.deallocate()
        moment2.deallocate()
    }

    /// One step of `parameters` against `gradients` at `learningRate`.
    @inlinable
    public func step(parameters p: UnsafeMutablePointer<S>, gradients g: UnsafePointer<S>, learningRate: Double) {
        steps += 1
        let lr = S(learningRate)
        switch kind {
        case .sgd:
            for i in 0..<count { p[i] -= lr * g[i] }
        case .momentum(let mu):
            let m = S(mu), v = moment1
            if steps == 1 {
                for i in 0..<count { v[i] = g[i]; p[i] -= lr * g[i] }
            } else {
                for i in 0..<count { v[i] = m * v[i] + g[i]; p[i] -= lr * v[i] }
            }
        case .adam(let beta1, let beta2, let epsilon):
            let n = Double(steps)
            let correction1 = 1 - Double.pow(beta1, n), correction2 = 1 - Double.pow(beta2, n)
            let stepSize = S(learningRate / correction1)
            let rootCorrection2 = S(correction2.squareRoot()), eps = S(epsilon)
            let b1 = S(beta1), b2 = S(beta2)
            let m = moment1, v = moment2
            for i in 0..<count {
                let gi = g[i]
                m[i] = b1 * m[i] + (1 - b1) * gi
                v[i] = b2 * v[i] + (1 - b2) * gi * gi
                p[i] -= stepSize * m[i] / (v[i].squareRoot() / rootCorrection2 + eps)
            }
        }
    }
}
