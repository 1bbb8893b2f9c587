import RealModule

/// The optimizer's state over the flat parameter buffer: one pass per update
/// (docs/numerics.md, "Optimizers"). Allocates only in `init`.
public final class Optimizer<S: RNNScalar> {
    public let kind: OptimizerKind
    public let count: Int
    /// First moment (Adam) or velocity (momentum): `count` values; one unused value otherwise.
    public let moment1: UnsafeMutablePointer<S>
    /// Second moment: Adam's `count` values; Adafactor's `factoredCount` (a row and a column
    /// mean per weight matrix, the whole moment of every other tensor); one unused value otherwise.
    public let moment2: UnsafeMutablePointer<S>
    /// Adafactor's first moment when β1 > 0, `count` bfloat16 values; one unused value otherwise
    /// (the default β1 = 0 keeps none).
    public let compactMoment1: UnsafeMutablePointer<UInt16>
    /// Whether Adafactor keeps a first moment (β1 > 0).
    public let keepsFirstMoment: Bool
    /// Updates taken, the `n` of Adam's bias correction.
    public var steps: Int = 0
    /// Adafactor's blocks: every tensor of the layout as it lies in memory.
    @usableFromInline let blocks: [Block]
    /// The values in `moment2` for Adafactor.
    public let factoredCount: Int

    /// One tensor as it lies in the flat buffer: `rows × cols` row-major from `offset`; its second
    /// moment from `statistics` in `moment2` (factored: `rows` row means, then `cols` column means;
    /// otherwise `rows · cols` values).
    @usableFromInline struct Block: Sendable {
        @usableFromInline let offset: Int, rows: Int, cols: Int, statistics: Int, factored: Bool
    }

    /// An optimizer for `count` parameters laid out as `layout` (Adafactor factors its weight
    /// matrices; the other optimizers treat the buffer as flat).
    public init(kind: OptimizerKind, layout: ParameterLayout) {
        self.kind = kind
        count = layout.count
        var blocks: [Block] = []
        var next = 0
        for slot in layout.tensors {
            let rows = slot.transposed ? slot.cols : slot.rows, cols = slot.transposed ? slot.rows : slot.cols
            let factored = !slot.isBias && rows >= 2 && cols >= 2
            blocks.append(Block(offset: slot.offset, rows: rows, cols: cols, statistics: next, factored: factored))
            next += factored ? rows + cols : rows * cols
        }
        self.blocks = blocks
        factoredCount = next
        if case .adafactor(let beta1, _, _) = kind { keepsFirstMoment = beta1 > 0 } else { keepsFirstMoment = false }
        switch kind {
        case .sgd:
            moment1 = allocateZeroed(1); moment2 = allocateZeroed(1); compactMoment1 = Self.compact(1)
        case .momentum:
            moment1 = allocateZeroed(count); moment2 = allocateZeroed(1); compactMoment1 = Self.compact(1)
        case .adam:
            moment1 = allocateZeroed(count); moment2 = allocateZeroed(count); compactMoment1 = Self.compact(1)
        case .adafactor:
            moment1 = allocateZeroed(1); moment2 = allocateZeroed(factoredCount)
            compactMoment1 = Self.compact(keepsFirstMoment ? count : 1)
        }
    }

    private static func compact(_ n: Int) -> UnsafeMutablePointer<UInt16> {
        let p = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
        p.initialize(repeating: 0, count: n)
        return p
    }

    deinit {
        moment1.deallocate()
        moment2.deallocate()
        compactMoment1.deallocate()
    }

    /// Bytes of the optimizer's state (its moments; not the step count).
    public var stateBytes: Int {
        switch kind {
        case .sgd: 0
        case .momentum: count * MemoryLayout<S>.stride
        case .adam: 2 * count * MemoryLayout<S>.stride
        case .adafactor: (keepsFirstMoment ? count * 2 : 0) + factoredCount * MemoryLayout<S>.stride
        }
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
        case .adafactor(let beta1, let beta2, let epsilon):
            let t = Double(steps)
            let correction1 = 1 - Double.pow(beta1, t), correction2 = 1 - Double.pow(beta2, t)
            let stepSize = S(learningRate / correction1)
            let rootCorrection2 = S(correction2.squareRoot()), eps = S(epsilon)
            for block in blocks {
                adafactorStep(block, p, g, stepSize: stepSize, rootCorrection2: rootCorrection2, eps: eps,
                              beta1: S(beta1), beta2: S(beta2))
            }
        }
    }

    /// Adafactor on one tensor: its second moment's statistics first (a factored tensor's row and
    /// column means of `g²`), then every element's first moment and step.
    @inlinable
    func adafactorStep(
        _ block: Block, _ p: UnsafeMutablePointer<S>, _ g: UnsafePointer<S>,
        stepSize: S, rootCorrection2: S, eps: S, beta1 b1: S, beta2 b2: S
    ) {
        let rows = block.rows, cols = block.cols, v = moment2 + block.statistics
        let vc = cols & ~7
        if block.factored {
            let r = v, c = v + rows
            let rowShare = (1 - b2) / S(cols), columnShare = (1 - b2) / S(rows)
            for j in 0..<cols { c[j] *= b2 }
            for i in 0..<rows {
                let gRow = g + block.offset + i * cols
                var sum8 = SIMD8<S>(), sum = S(0)
                var j = 0
                while j < vc {
                    let gi = load8(gRow + j), g2 = gi * gi
                    sum8 += g2
                    store8(load8(UnsafePointer(c + j)) + columnShare * g2, c + j)
                    j += 8
                }
                while j < cols { let g2 = gRow[j] * gRow[j]; sum += g2; c[j] += columnShare * g2; j += 1 }
                r[i] = b2 * r[i] + rowShare * (sum8.sum() + sum)
            }
            var total = S(0)
            for i in 0..<rows { total += r[i] }
            let meanRow = total / S(rows)
            for i in 0..<rows {
                // v̂ = r_i c_j / mean(r): the row's share of the column's mean square.
                let share = meanRow > 0 ? r[i] / meanRow : 0
                adafactorRow(block.offset + i * cols, cols, p, g, secondMoment: c, share: share,
                             stepSize: stepSize, rootCorrection2: rootCorrection2, eps: eps, beta1: b1)
            }
        } else {
            let n = rows * cols
            for k in 0..<n { let gk = g[block.offset + k]; v[k] = b2 * v[k] + (1 - b2) * gk * gk }
            adafactorRow(block.offset, n, p, g, secondMoment: v, share: 1,
                         stepSize: stepSize, rootCorrection2: rootCorrection2, eps: eps, beta1: b1)
        }
    }

    /// The first moment and the step of `n` elements from `offset`, whose second moment is
    /// `share · secondMoment[0..<n]`.
    @inlinable @inline(__always)
    func adafactorRow(
        _ offset: Int, _ n: Int, _ p: UnsafeMutablePointer<S>, _ g: UnsafePointer<S>,
        secondMoment v: UnsafePointer<S>, share: S, stepSize: S, rootCorrection2: S, eps: S, beta1 b1: S
    ) {
        let m = compactMoment1 + offset, pp = p + offset, gg = g + offset
        var j = 0
        if !keepsFirstMoment {
            // β1 = 0: the step is the gradient itself over the root of its second moment.
            while j + 8 <= n {
                let denominator = S.squareRoot8(share * load8(v + j)) / rootCorrection2 + eps
                store8(load8(UnsafePointer(pp + j)) - stepSize * load8(gg + j) / denominator, pp + j)
                j += 8
            }
            while j < n {
                pp[j] -= stepSize * gg[j] / ((share * v[j]).squareRoot() / rootCorrection2 + eps)
                j += 1
            }
            return
        }
        while j + 8 <= n {
            let stored = UnsafeRawPointer(m + j).loadUnaligned(as: SIMD8<UInt16>.self)
            let mj = b1 * S.fromBFloat16Bits8(stored) + (1 - b1) * load8(gg + j)
            UnsafeMutableRawPointer(m + j).storeBytes(of: S.bfloat16Bits8(mj), as: SIMD8<UInt16>.self)
            let denominator = S.squareRoot8(share * load8(v + j)) / rootCorrection2 + eps
            store8(load8(UnsafePointer(pp + j)) - stepSize * mj / denominator, pp + j)
            j += 8
        }
        while j < n {
            let mj = b1 * S.fromBFloat16Bits8(SIMD8(repeating: m[j]))[0] + (1 - b1) * gg[j]
            m[j] = S.bfloat16Bits8(SIMD8(repeating: mj))[0]
            pp[j] -= stepSize * mj / ((share * v[j]).squareRoot() / rootCorrection2 + eps)
            j += 1
        }
    }

    // MARK: - State

    /// Writes the moments (`stateBytes`) with `w`.
    func write(_ w: inout StateWriter) {
        switch kind {
        case .sgd: break
        case .momentum: w.copy(moment1, count)
        case .adam: w.copy(moment1, count); w.copy(moment2, count)
        case .adafactor:
            if keepsFirstMoment { w.copy(compactMoment1, count) }
            w.copy(moment2, factoredCount)
        }
    }

    /// Reads what `write` wrote.
    func read(_ r: inout StateReader) {
        switch kind {
        case .sgd: break
        case .momentum: r.copy(into: moment1, count)
        case .adam: r.copy(into: moment1, count); r.copy(into: moment2, count)
        case .adafactor:
            if keepsFirstMoment { r.copy(into: compactMoment1, count) }
            r.copy(into: moment2, factoredCount)
        }
    }

    /// Whether the moments of an optimizer of `from` can become this one's (`adopt`).
    public static func converts(from: OptimizerKind, to: OptimizerKind) -> Bool {
        switch (from, to) {
        case (.adam, .adafactor), (.adafactor, .adam): true
        default: false
        }
    }

    /// Takes over the moments and step count of `other`, an Adam or Adafactor optimizer of the
    /// same layout (`converts`): Adam's second moment becomes its row and column means, its first
    /// moment is rounded to bfloat16 (or dropped, with β1 = 0); the other way, `v = r_i c_j / mean(r)`
    /// and the first moment exactly (zero without one). So a stream trained with Adam goes on with
    /// Adafactor where it stood.
    public func adopt(_ other: Optimizer<S>) {
        precondition(other.count == count && Self.converts(from: other.kind, to: kind))
        steps = other.steps
        for block in blocks {
            let rows = block.rows, cols = block.cols, n = rows * cols
            switch kind {
            case .adafactor:
                for k in stride(from: 0, to: keepsFirstMoment ? n : 0, by: 1) {
                    compactMoment1[block.offset + k] = S.bfloat16Bits8(SIMD8(repeating: other.moment1[block.offset + k]))[0]
                }
                let v = other.moment2 + block.offset, out = moment2 + block.statistics
                if block.factored {
                    for i in 0..<rows { var s = 0.0; for j in 0..<cols { s += v[i * cols + j].double }; out[i] = S(s / Double(cols)) }
                    for j in 0..<cols { var s = 0.0; for i in 0..<rows { s += v[i * cols + j].double }; out[rows + j] = S(s / Double(rows)) }
                } else {
                    out.update(from: v, count: n)
                }
            default:
                for k in 0..<(other.keepsFirstMoment ? n : 0) {
                    moment1[block.offset + k] = S.fromBFloat16Bits8(SIMD8(repeating: other.compactMoment1[block.offset + k]))[0]
                }
                let v = other.moment2 + block.statistics, out = moment2 + block.offset
                if block.factored {
                    var total = 0.0
                    for i in 0..<rows { total += v[i].double }
                    let meanRow = total / Double(rows)
                    for i in 0..<rows {
                        for j in 0..<cols {
                            out[i * cols + j] = meanRow > 0 ? S(v[i].double * v[rows + j].double / meanRow) : 0
                        }
                    }
                } else {
                    out.update(from: v, count: n)
                }
            }
        }
    }
}
