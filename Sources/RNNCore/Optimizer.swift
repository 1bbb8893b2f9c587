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
        moment1 = allocateZeroed(count)
        moment2 = allocateZeroed(count)
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
        let n = count, vn = count & ~7
        switch kind {
        case .sgd:
            var i = 0
            while i < vn { store8(load8(UnsafePointer(p + i)) - lr * load8(g + i), p + i); i += 8 }
            while i < n { p[i] -= lr * g[i]; i += 1 }
        case .momentum(let mu):
            let m = S(mu), v = moment1  // v starts at zero: the first step is v = g
            var i = 0
            while i < vn {
                let vi = m * load8(UnsafePointer(v + i)) + load8(g + i)
                store8(vi, v + i)
                store8(load8(UnsafePointer(p + i)) - lr * vi, p + i)
                i += 8
            }
            while i < n { v[i] = m * v[i] + g[i]; p[i] -= lr * v[i]; i += 1 }
        case .adam(let beta1, let beta2, let epsilon):
            let t = Double(steps)
            let correction1 = 1 - Double.pow(beta1, t), correction2 = 1 - Double.pow(beta2, t)
            let stepSize = S(learningRate / correction1)
            let rootCorrection2 = S(correction2.squareRoot()), eps = S(epsilon)
            let b1 = S(beta1), b2 = S(beta2)
            let m = moment1, v = moment2
            var i = 0
            while i < vn {
                let gi = load8(g + i)
                let mi = b1 * load8(UnsafePointer(m + i)) + (1 - b1) * gi
                let vi = b2 * load8(UnsafePointer(v + i)) + (1 - b2) * gi * gi
                store8(mi, m + i)
                store8(vi, v + i)
                let denominator = S.squareRoot8(vi) / rootCorrection2 + eps
                store8(load8(UnsafePointer(p + i)) - stepSize * mi / denominator, p + i)
                i += 8
            }
            while i < n {
                let gi = g[i]
                m[i] = b1 * m[i] + (1 - b1) * gi
                v[i] = b2 * v[i] + (1 - b2) * gi * gi
                p[i] -= stepSize * m[i] / (v[i].squareRoot() / rootCorrection2 + eps)
                i += 1
            }
        }
    }
}
