// Dense kernels of the recurrent networks: matrix-vector products, the transposed product of
// back-propagation, the rank-T update of weight gradients, activations over buffers.
//
// Legend: R = rows of a row-major matrix, C = its columns, T = window steps.
// All pointers are to contiguous rows unless a row stride (`ld…`) is given.
// FLOPs: matvec and matvecTransposed 2·R·C, gradientUpdate 2·R·C·T.
// Which form serves which product: the cell's matrices are stored transposed (ParameterLayout),
// so the forward pass uses matvecTransposed and back-propagation matvec.

import RealModule

/// `a += b * c` lane by lane, fused where the target has FMA.
@inlinable @inline(__always)
func fma8<S: RNNScalar>(_ a: inout SIMD8<S>, _ b: SIMD8<S>, _ c: SIMD8<S>) {
    #if RNND_FMA
    a.addProduct(b, c)
    #else
    a += b * c
    #endif
}

@inlinable @inline(__always)
func load8<S: RNNScalar>(_ p: UnsafePointer<S>) -> SIMD8<S> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<S>.self)
}

@inlinable @inline(__always)
func store8<S: RNNScalar>(_ v: SIMD8<S>, _ p: UnsafeMutablePointer<S>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<S>.self)
}

/// `y = W x` (or `y += W x` when `accumulate`), W of R×C row-major.
///
/// Dot-product form, eight rows at a time: eight independent FMA chains hide the FMA latency
/// and each load of `x` serves eight rows (about 37 GFLOP/s at 256×64 on the 2-core EPYC).
@inlinable
public func matvec<S: RNNScalar>(
    _ w: UnsafePointer<S>, _ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>,
    rows: Int, cols: Int, accumulate: Bool
) {
    let vc = cols & ~7
    var r = 0
    while r + 8 <= rows {
        let w0 = w + r * cols
        var a0 = SIMD8<S>(), a1 = SIMD8<S>(), a2 = SIMD8<S>(), a3 = SIMD8<S>()
        var a4 = SIMD8<S>(), a5 = SIMD8<S>(), a6 = SIMD8<S>(), a7 = SIMD8<S>()
        var c = 0
        while c < vc {
            let xv = load8(x + c)
            let p = w0 + c
            fma8(&a0, load8(p), xv)
            fma8(&a1, load8(p + cols), xv)
            fma8(&a2, load8(p + 2 * cols), xv)
            fma8(&a3, load8(p + 3 * cols), xv)
            fma8(&a4, load8(p + 4 * cols), xv)
            fma8(&a5, load8(p + 5 * cols), xv)
            fma8(&a6, load8(p + 6 * cols), xv)
            fma8(&a7, load8(p + 7 * cols), xv)
            c += 8
        }
        var sums = SIMD8<S>(a0.sum(), a1.sum(), a2.sum(), a3.sum(), a4.sum(), a5.sum(), a6.sum(), a7.sum())
        while c < cols {
            let xc = x[c]
            for k in 0..<8 { sums[k] += w0[k * cols + c] * xc }
            c += 1
        }
        if accumulate { sums += load8(UnsafePointer(y + r)) }
        store8(sums, y + r)
        r += 8
    }
    while r < rows {
        let wr = w + r * cols
        var a = SIMD8<S>()
        var c = 0
        while c < vc { fma8(&a, load8(wr + c), load8(x + c)); c += 8 }
        var s = a.sum()
        while c < cols { s += wr[c] * x[c]; c += 1 }
        y[r] = accumulate ? y[r] + s : s
        r += 1
    }
}

/// `y = Wᵀ d` (or `y += Wᵀ d` when `accumulate`), W of R×C row-major, `d` of R, `y` of C.
///
/// Axpy form: blocks of 64 columns held in eight registers while the rows stream past, so W
/// is read once, row by row, in memory order, and no horizontal sums are needed.
@inlinable
public func matvecTransposed<S: RNNScalar>(
    _ w: UnsafePointer<S>, _ d: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>,
    rows: Int, cols: Int, accumulate: Bool
) {
    @inline(__always) func start(_ c: Int) -> SIMD8<S> { accumulate ? load8(UnsafePointer(y + c)) : SIMD8<S>() }
    var c = 0
    while c + 64 <= cols {
        var a0 = start(c), a1 = start(c + 8), a2 = start(c + 16), a3 = start(c + 24)
        var a4 = start(c + 32), a5 = start(c + 40), a6 = start(c + 48), a7 = start(c + 56)
        var p = w + c
        for r in 0..<rows {
            let dv = SIMD8<S>(repeating: d[r])
            fma8(&a0, load8(p), dv)
            fma8(&a1, load8(p + 8), dv)
            fma8(&a2, load8(p + 16), dv)
            fma8(&a3, load8(p + 24), dv)
            fma8(&a4, load8(p + 32), dv)
            fma8(&a5, load8(p + 40), dv)
            fma8(&a6, load8(p + 48), dv)
            fma8(&a7, load8(p + 56), dv)
            p += cols
        }
        store8(a0, y + c); store8(a1, y + c + 8); store8(a2, y + c + 16); store8(a3, y + c + 24)
        store8(a4, y + c + 32); store8(a5, y + c + 40); store8(a6, y + c + 48); store8(a7, y + c + 56)
        c += 64
    }
    while c + 32 <= cols {
        var a0 = start(c), a1 = start(c + 8), a2 = start(c + 16), a3 = start(c + 24)
        var p = w + c
        for r in 0..<rows {
            let dv = SIMD8<S>(repeating: d[r])
            fma8(&a0, load8(p), dv)
            fma8(&a1, load8(p + 8), dv)
            fma8(&a2, load8(p + 16), dv)
            fma8(&a3, load8(p + 24), dv)
            p += cols
        }
        store8(a0, y + c); store8(a1, y + c + 8); store8(a2, y + c + 16); store8(a3, y + c + 24)
        c += 32
    }
    while c + 8 <= cols {
        var a = start(c)
        var p = w + c
        for r in 0..<rows { fma8(&a, load8(p), SIMD8<S>(repeating: d[r])); p += cols }
        store8(a, y + c)
        c += 8
    }
    while c < cols {
        var s = accumulate ? y[c] : 0
        for r in 0..<rows { s += w[r * cols + c] * d[r] }
        y[c] = s
        c += 1
    }
}

/// `G += Aᵀ B` over T steps: the weight gradient `dW += Σ_t δ_t z_tᵀ` of a whole window at once.
///
/// G is R×C row-major; `A` holds T rows of R values (row stride `lda`), `B` T rows of C values
/// (row stride `ldb`). A 4×16 register tile of G accumulates over all T before it is written,
/// so G is read and written once per window instead of once per step.
@inlinable
public func gradientUpdate<S: RNNScalar>(
    _ g: UnsafeMutablePointer<S>, rows: Int, cols: Int,
    _ a: UnsafePointer<S>, lda: Int, _ b: UnsafePointer<S>, ldb: Int, steps: Int
) {
    var c = 0
    while c + 16 <= cols {
        var r = 0
        while r + 4 <= rows {
            var t00 = SIMD8<S>(), t01 = SIMD8<S>(), t10 = SIMD8<S>(), t11 = SIMD8<S>()
            var t20 = SIMD8<S>(), t21 = SIMD8<S>(), t30 = SIMD8<S>(), t31 = SIMD8<S>()
            var pa = a + r, pb = b + c
            for _ in 0..<steps {
                let b0 = load8(pb), b1 = load8(pb + 8)
                let x0 = SIMD8<S>(repeating: pa[0]), x1 = SIMD8<S>(repeating: pa[1])
                let x2 = SIMD8<S>(repeating: pa[2]), x3 = SIMD8<S>(repeating: pa[3])
                fma8(&t00, x0, b0); fma8(&t01, x0, b1)
                fma8(&t10, x1, b0); fma8(&t11, x1, b1)
                fma8(&t20, x2, b0); fma8(&t21, x2, b1)
                fma8(&t30, x3, b0); fma8(&t31, x3, b1)
                pa += lda; pb += ldb
            }
            let g0 = g + r * cols + c, g1 = g0 + cols, g2 = g1 + cols, g3 = g2 + cols
            store8(load8(UnsafePointer(g0)) + t00, g0); store8(load8(UnsafePointer(g0 + 8)) + t01, g0 + 8)
            store8(load8(UnsafePointer(g1)) + t10, g1); store8(load8(UnsafePointer(g1 + 8)) + t11, g1 + 8)
            store8(load8(UnsafePointer(g2)) + t20, g2); store8(load8(UnsafePointer(g2 + 8)) + t21, g2 + 8)
            store8(load8(UnsafePointer(g3)) + t30, g3); store8(load8(UnsafePointer(g3 + 8)) + t31, g3 + 8)
            r += 4
        }
        while r < rows {
            var t0 = SIMD8<S>(), t1 = SIMD8<S>()
            var pa = a + r, pb = b + c
            for _ in 0..<steps {
                let x = SIMD8<S>(repeating: pa[0])
                fma8(&t0, x, load8(pb)); fma8(&t1, x, load8(pb + 8))
                pa += lda; pb += ldb
            }
            let g0 = g + r * cols + c
            store8(load8(UnsafePointer(g0)) + t0, g0); store8(load8(UnsafePointer(g0 + 8)) + t1, g0 + 8)
            r += 1
        }
        c += 16
    }
    while c + 8 <= cols {
        for r in 0..<rows {
            var t0 = SIMD8<S>()
            var pa = a + r, pb = b + c
            for _ in 0..<steps { fma8(&t0, SIMD8<S>(repeating: pa[0]), load8(pb)); pa += lda; pb += ldb }
            let g0 = g + r * cols + c
            store8(load8(UnsafePointer(g0)) + t0, g0)
        }
        c += 8
    }
    while c < cols {
        for r in 0..<rows {
            var s = S.zero
            var pa = a + r, pb = b + c
            for _ in 0..<steps { s += pa[0] * pb[0]; pa += lda; pb += ldb }
            g[r * cols + c] += s
        }
        c += 1
    }
}

/// `y[i] += Σ_t a[t·lda + i]`: a bias gradient summed over the window.
@inlinable
public func columnSumAccumulate<S: RNNScalar>(
    _ a: UnsafePointer<S>, lda: Int, steps: Int, _ y: UnsafeMutablePointer<S>, count: Int
) {
    for t in 0..<steps {
        let row = a + t * lda
        var i = 0
        while i + 8 <= count { store8(load8(UnsafePointer(y + i)) + load8(row + i), y + i); i += 8 }
        while i < count { y[i] += row[i]; i += 1 }
    }
}

// MARK: - Activations over buffers, in place.

@inlinable
public func sigmoidInPlace<S: RNNScalar>(_ p: UnsafeMutablePointer<S>, count: Int) {
    var i = 0
    while i + 8 <= count {
        let v = load8(UnsafePointer(p + i))
        store8(1 / (1 + S.exp8(-v)), p + i)
        i += 8
    }
    while i < count { p[i] = 1 / (1 + S.exp(-p[i])); i += 1 }
}

/// `tanh(x) = 1 - 2 / (exp(2x) + 1)`: exact at ±∞ (saturates to ±1) and one `exp` per lane.
@inlinable
public func tanhInPlace<S: RNNScalar>(_ p: UnsafeMutablePointer<S>, count: Int) {
    var i = 0
    while i + 8 <= count {
        let v = load8(UnsafePointer(p + i))
        store8(1 - 2 / (S.exp8(v + v) + 1), p + i)
        i += 8
    }
    while i < count { p[i] = S.tanh(p[i]); i += 1 }
}

@inlinable
public func reluInPlace<S: RNNScalar>(_ p: UnsafeMutablePointer<S>, count: Int) {
    for i in 0..<count where !(p[i] > 0) { p[i] = p[i].isNaN ? p[i] : 0 }
}

/// Σ x², in the scalar type, eight lanes at a time.
@inlinable
public func sumOfSquares<S: RNNScalar>(_ p: UnsafePointer<S>, count: Int) -> S {
    var acc = SIMD8<S>()
    var i = 0
    while i + 8 <= count { let v = load8(p + i); fma8(&acc, v, v); i += 8 }
    var s = acc.sum()
    while i < count { s += p[i] * p[i]; i += 1 }
    return s
}
