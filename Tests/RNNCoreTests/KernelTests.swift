import RNNCore
import RealModule
import Testing

/// Kernels against naive loops, at sizes that exercise every SIMD block and every remainder.
@Suite(.timeLimit(.minutes(1)))
struct KernelTests {
    static let shapes: [(rows: Int, cols: Int)] = [(1, 1), (3, 5), (4, 8), (7, 17), (37, 41), (64, 33), (256, 64), (64, 256), (5, 100)]

    func values(_ n: Int, seed: UInt64) -> [Double] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in rng.uniform(1) }
    }

    @Test(arguments: shapes)
    func matvecMatchesNaive(shape: (rows: Int, cols: Int)) {
        let (r, c) = shape
        let w = values(r * c, seed: 1), x = values(c, seed: 2)
        var y = values(r, seed: 3)
        let y0 = y
        matvec(w, x, &y, rows: r, cols: c, accumulate: true)
        for i in 0..<r {
            let expected = y0[i] + (0..<c).reduce(0.0) { $0 + w[i * c + $1] * x[$1] }
            #expect(abs(y[i] - expected) < 1e-12)
        }
        matvec(w, x, &y, rows: r, cols: c, accumulate: false)
        for i in 0..<r {
            let expected = (0..<c).reduce(0.0) { $0 + w[i * c + $1] * x[$1] }
            #expect(abs(y[i] - expected) < 1e-12)
        }
    }

    @Test(arguments: shapes)
    func transposedMatvecMatchesNaive(shape: (rows: Int, cols: Int)) {
        let (r, c) = shape
        let w = values(r * c, seed: 4), d = values(r, seed: 5)
        var y = values(c, seed: 6)
        let y0 = y
        matvecTransposed(w, d, &y, rows: r, cols: c, accumulate: true)
        for j in 0..<c {
            let expected = y0[j] + (0..<r).reduce(0.0) { $0 + w[$1 * c + j] * d[$1] }
            #expect(abs(y[j] - expected) < 1e-12)
        }
        matvecTransposed(w, d, &y, rows: r, cols: c, accumulate: false)
        for j in 0..<c {
            let expected = (0..<r).reduce(0.0) { $0 + w[$1 * c + j] * d[$1] }
            #expect(abs(y[j] - expected) < 1e-12)
        }
    }

    @Test(arguments: shapes)
    func gradientUpdateMatchesNaive(shape: (rows: Int, cols: Int)) {
        let (r, c) = shape, steps = 5, lda = r + 3, ldb = c + 2
        let a = values(steps * lda, seed: 7), b = values(steps * ldb, seed: 8)
        var g = values(r * c, seed: 9)
        let g0 = g
        gradientUpdate(&g, rows: r, cols: c, a, lda: lda, b, ldb: ldb, steps: steps)
        for i in 0..<r {
            for j in 0..<c {
                let expected = g0[i * c + j] + (0..<steps).reduce(0.0) { $0 + a[$1 * lda + i] * b[$1 * ldb + j] }
                #expect(abs(g[i * c + j] - expected) < 1e-12)
            }
        }
    }

    @Test func floatExpIsAccurate() {
        var worst = 0.0
        var x = -87.0
        while x < 88 {
            let lanes = SIMD8<Float>((0..<8).map { Float(x + Double($0) * 0.0137) })
            let e = Float.exp8(lanes)
            for i in 0..<8 {
                let exact = Double.exp(Double(lanes[i]))
                worst = max(worst, abs(Double(e[i]) - exact) / exact)
            }
            x += 0.1
        }
        #expect(worst < 4e-7, "worst relative error \(worst)")
        let special = Float.exp8(SIMD8([-1000, 1000, .infinity, -.infinity, .nan, 0, 1, -1]))
        #expect(special[0] >= 0 && special[0] < 1e-37)
        #expect(special[1].isFinite && special[1] > 1e38)
        #expect(special[2].isFinite && special[3] >= 0)
        #expect(special[4].isNaN)
        #expect(special[5] == 1)
    }

    @Test func floatActivationsMatchDouble() {
        var worst = 0.0
        for i in -4000...4000 {
            let x = Double(i) * 0.005
            var v: [Float] = Array(repeating: Float(x), count: 8)
            tanhInPlace(&v, count: 8)
            worst = max(worst, abs(Double(v[0]) - Double.tanh(x)))
            v = Array(repeating: Float(x), count: 8)
            sigmoidInPlace(&v, count: 8)
            worst = max(worst, abs(Double(v[0]) - 1 / (1 + Double.exp(-x))))
        }
        #expect(worst < 3e-7, "worst absolute error \(worst)")
    }
}
