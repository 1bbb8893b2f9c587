// The direct expert, for forecasts far ahead: one linear model per step ahead over a long
// look-back of the target's own past, every target sharing the weights (channel independence,
// as DLinear and NLinear: A. Zeng, M. Chen, L. Zhang, Q. Xu, "Are Transformers Effective for Time
// Series Forecasting?", AAAI 2023), in NLinear's form: the look-back and the steps ahead are taken
// relative to the latest value, here in units of the target's spread. The latest `recent` lags
// enter one by one, older ones as means of `block` lags, so that a look-back of days costs tens
// of features, not hundreds. Fitted by ridge regression with exponential forgetting on its
// sufficient statistics (Gram matrix and cross products), solved by Cholesky every `solveEvery`
// samples; it learns from a forecast origin only once every step it forecast has arrived.
// docs/numerics.md, "Experts and their combination" (direct).
//
// Legend: K = targets, P = horizon, L = look-back (samples), D = features (the lags' projection,
// then 1), B = L + P + 1 values kept per target (an origin's look-back, itself and its P steps).

/// Ridge regression of the next P changes on the latest L values. A view over five regions of
/// the forecaster's state buffer: the Gram matrix (its lower triangle, packed by rows: D(D+1)/2),
/// the cross products (P × D), the weights (P × D), the ring of the latest B values of every
/// target (B × K) and its status (2); and over a scratch area beside it (D(D+1)/2 + D: the
/// Cholesky factor, packed the same way, and one sample's features).
struct DirectExpert {
    let gram: UnsafeMutablePointer<Double>
    let cross: UnsafeMutablePointer<Double>
    let weights: UnsafeMutablePointer<Double>
    let ring: UnsafeMutablePointer<Double>
    let status: UnsafeMutablePointer<Double>
    let scratch: UnsafeMutablePointer<Double>
    let targets: Int
    let horizon: Int
    /// L, 0 when the expert is off.
    let lookback: Int

    /// Lags taken one by one; older ones are averaged in blocks of `block`.
    static let recent = 96
    static let block = 4
    /// λ, per sample.
    static let forgetting = 0.9999
    /// The ridge, relative to the mean of the Gram matrix's diagonal.
    static let ridge = 1e-4
    /// Samples between solves.
    static let solveEvery = 16
    /// The look-back at a horizon above 1 unless configured: a week of quarter-hours, four weeks
    /// of hours (docs/tuning.md, "Long horizons", has the look-backs tried).
    static let defaultLookback = 672

    /// The look-back `c` asks for: `directLookback` when set, else `defaultLookback` beyond
    /// horizon 1 and none at horizon 1.
    static func lookback(_ c: ModelConfiguration) -> Int {
        if let l = c.directLookback { return l }
        return c.horizon > 1 ? defaultLookback : 0
    }

    /// D for a look-back of `l`: the single lags, the blocks, and 1; 0 when off.
    static func features(lookback l: Int) -> Int {
        guard l > 0 else { return 0 }
        let single = min(l, recent)
        return single + (l - single + block - 1) / block + 1
    }

    static func ringRows(lookback l: Int, horizon p: Int) -> Int { l > 0 ? l + p + 1 : 0 }
    static let statusCount = 2
    /// Scratch numbers: the factor and one sample's features.
    static func scratchCount(lookback l: Int) -> Int {
        let d = features(lookback: l)
        return packed(d) + d
    }

    /// Numbers in a packed triangle of `d` rows.
    static func packed(_ d: Int) -> Int { d * (d + 1) / 2 }

    var isOn: Bool { lookback > 0 }
    var features: Int { Self.features(lookback: lookback) }
    var rows: Int { Self.ringRows(lookback: lookback, horizon: horizon) }

    /// Samples in the ring since the latest restart (at most B), and samples since the latest solve.
    var filled: Int {
        get { Int(status[0]) }
        nonmutating set { status[0] = Double(newValue) }
    }
    var sinceSolve: Int {
        get { Int(status[1]) }
        nonmutating set { status[1] = Double(newValue) }
    }
    /// Whether any solve has happened: before it, the expert forecasts no change.
    var solved: Bool { status[1] >= 0 }

    /// A new expert: nothing learned, no solve yet.
    func start() {
        guard isOn else { return }
        let d = features
        gram.update(repeating: 0, count: Self.packed(d))
        cross.update(repeating: 0, count: horizon * d)
        weights.update(repeating: 0, count: horizon * d)
        ring.update(repeating: 0, count: rows * targets)
        status[0] = 0
        status[1] = -1
    }

    /// Whether `status` (the region of a saved state) can be this expert's.
    static func isPlausible(_ status: UnsafePointer<Double>, lookback l: Int, horizon p: Int) -> Bool {
        guard l > 0 else { return true }
        return status[0] >= 0 && status[0] <= Double(ringRows(lookback: l, horizon: p)) && status[0] == status[0].rounded()
            && status[1] >= -1 && status[1] < 1e15 && status[1] == status[1].rounded()
    }

    /// Keeps sample `n`'s values as learned from, `value(j)` for target j. With `restart` (a new
    /// segment, a level shift, or the first sample), the sample stands for every earlier one too.
    func remember(sample n: Int, restart: Bool, value: (_ j: Int) -> Double) {
        let k = targets, b = rows
        if restart || filled == 0 {
            for slot in 0..<b {
                for j in 0..<k { ring[slot * k + j] = value(j) }
            }
            filled = 1
        } else {
            let row = ring + (n % b) * k
            for j in 0..<k { row[j] = value(j) }
            filled = min(filled + 1, b)
        }
    }

    /// Target `j`'s value at sample `m` (one of the latest B).
    @inline(__always) func value(_ m: Int, target j: Int) -> Double { ring[(m % rows) * targets + j] }

    /// Writes into the scratch features target `j`'s look-back from sample `m`: each lag's value
    /// less sample m's, over `spread`, the older lags as block means; then 1.
    func prepare(origin m: Int, target j: Int, spread: Double) -> UnsafeMutablePointer<Double> {
        let d = features, phi = scratch + Self.packed(d)
        let latest = value(m, target: j), l = lookback
        let single = min(l, Self.recent)
        // Before the latest restart the ring still holds the restart's value (`remember`).
        func at(_ lag: Int) -> Double { value(max(m - lag, 0), target: j) }
        for lag in 0..<single { phi[lag] = (at(lag + 1) - latest) / spread }
        var f = single, lag = single
        while lag < l {
            let end = min(l, lag + Self.block)
            var sum = 0.0
            for q in lag..<end { sum += at(q + 1) }
            phi[f] = (sum / Double(end - lag) - latest) / spread
            f += 1
            lag = end
        }
        phi[d - 1] = 1
        return phi
    }

    /// Step `p`'s forecast (1-based) from the features `phi`: the change to come, in spreads.
    @inline(__always) func change(step p: Int, features phi: UnsafePointer<Double>) -> Double {
        guard solved else { return 0 }
        return Self.dot(weights + (p - 1) * features, phi, features)
    }

    /// `Σ a[i] b[i]` for `i < n`, eight products at a time in two vector accumulators: the solve's
    /// and the forecast's inner loops. Written out because the compiler does not reassociate a
    /// floating-point sum, so a plain loop runs one multiply-add at a time.
    @inline(__always) static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
        var s0 = SIMD4<Double>(), s1 = SIMD4<Double>()
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b), stride = MemoryLayout<Double>.stride
        var i = 0
        while i + 8 <= n {
            s0 += ra.loadUnaligned(fromByteOffset: i * stride, as: SIMD4<Double>.self)
                * rb.loadUnaligned(fromByteOffset: i * stride, as: SIMD4<Double>.self)
            s1 += ra.loadUnaligned(fromByteOffset: (i + 4) * stride, as: SIMD4<Double>.self)
                * rb.loadUnaligned(fromByteOffset: (i + 4) * stride, as: SIMD4<Double>.self)
            i += 8
        }
        var sum = (s0 + s1).sum()
        while i < n {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }

    /// Learns from the origin whose last step is sample `n`, the newest: when the ring holds its
    /// look-back and every step since, folds every target's pair (features, changes) into the
    /// statistics, after forgetting; every `solveEvery` samples, solves.
    func learn(newest n: Int, spread: (_ j: Int) -> Double) {
        let o = n - horizon, d = features, k = targets
        if filled >= rows, o >= 0 {
            for i in 0..<Self.packed(d) { gram[i] *= Self.forgetting }
            for i in 0..<(horizon * d) { cross[i] *= Self.forgetting }
            for j in 0..<k {
                let s = spread(j)
                guard s > 0, s.isFinite else { continue }
                let phi = prepare(origin: o, target: j, spread: s)
                var finite = true
                for i in 0..<d where !phi[i].isFinite { finite = false }
                guard finite else { continue }
                // Row r of the lower triangle holds columns 0 ... r.
                for r in 0..<d {
                    let row = gram + Self.packed(r), a = phi[r]
                    for c in 0...r { row[c] += a * phi[c] }
                }
                let origin = value(o, target: j)
                for p in 1...horizon {
                    let y = (value(o + p, target: j) - origin) / s
                    guard y.isFinite else { continue }
                    let row = cross + (p - 1) * d
                    for i in 0..<d { row[i] += y * phi[i] }
                }
            }
        }
        if solved { sinceSolve += 1 }
        if (!solved && filled >= rows) || sinceSolve >= Self.solveEvery { solve() }
    }

    /// Solves `(G + δI) w_p = c_p` for every step by Cholesky, `δ = ridge · mean(diag G)`; keeps
    /// the weights as they were when the factorisation fails (a Gram matrix not yet positive).
    func solve() {
        let d = features, factor = scratch
        var trace = 0.0
        for i in 0..<d { trace += gram[Self.packed(i) + i] }
        guard trace > 0, trace.isFinite else { return }
        let delta = Self.ridge * trace / Double(d)
        // The lower factor L, L Lᵀ = G + δI, row by row (L[i][j] at packed(i) + j).
        for i in 0..<d {
            let li = factor + Self.packed(i), gi = gram + Self.packed(i)
            for j in 0...i {
                let lj = factor + Self.packed(j)
                let s = gi[j] + (i == j ? delta : 0) - Self.dot(li, lj, j)
                if i == j {
                    guard s > 0, s.isFinite else { return }
                    li[i] = s.squareRoot()
                } else {
                    li[j] = s / lj[j]
                }
            }
        }
        for p in 0..<horizon {
            let w = weights + p * d, c = cross + p * d
            // L z = c by rows, then Lᵀ w = z by columns: w_i = z_i / L_ii, and each finished w_i
            // is taken off the z_q before it (row i of L), so both passes read L's rows in order.
            for i in 0..<d {
                let li = factor + Self.packed(i)
                w[i] = (c[i] - Self.dot(li, w, i)) / li[i]
            }
            for i in stride(from: d - 1, through: 0, by: -1) {
                let li = factor + Self.packed(i)
                w[i] /= li[i]
                let wi = w[i]
                for q in 0..<i { w[q] -= li[q] * wi }
            }
        }
        sinceSolve = 0
    }
}
