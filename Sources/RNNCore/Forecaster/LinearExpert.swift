// The linear expert: recursive least squares with exponential forgetting (S. Haykin, "Adaptive
// Filter Theory", the RLS algorithm; L. Ljung and T. Söderström, "Theory and Practice of
// Recursive Identification", 1983) on the latest changes, the levels and the calendar phases, one
// weight vector per output and one covariance for all. Its trace is kept at or below its initial
// value (a constant-trace bound, as in K. J. Åström and B. Wittenmark, "Adaptive Control"), so that
// a channel that stops moving cannot wind the covariance up. docs/numerics.md, "Experts and their
// combination" (linear).
//
// Legend: I = inputs, O = outputs, K = targets, D = features, L = lags, R = P + 1 rows of
// features (one per sample, the sample's index modulo R), φ = a sample's features.

/// Recursive least squares on the changes to come, in change units. A view over four regions
/// of the forecaster's state buffer: the covariance `C` (D × D, the inverse of the weighted
/// feature covariance), the weights (O × D), the features of the latest R samples (R × D) and the
/// latest L + 1 samples (L + 1) × I; and over a scratch vector of D beside it (the gain).
struct LinearExpert {
    let covariance: UnsafeMutablePointer<Double>
    let weights: UnsafeMutablePointer<Double>
    let featureRing: UnsafeMutablePointer<Double>
    let valueRing: UnsafeMutablePointer<Double>
    let gain: UnsafeMutablePointer<Double>
    let inputs: Int
    let lags: Int
    /// D, 0 when the expert is off.
    let features: Int
    let outputs: Int
    let targets: Int
    let rows: Int
    /// Whether the features hold the calendar phases.
    let calendar: Bool

    /// The forgetting factor λ.
    static let forgetting = 0.999

    /// The lags `c` asks for, fewer for wide streams (at most about 32 changes in all); 0 when
    /// the expert is off.
    static func lags(_ c: ModelConfiguration) -> Int {
        c.linearLags == 0 ? 0 : min(c.linearLags, max(1, 32 / c.inputs))
    }

    /// `L·I + I + 4 + 1` (the calendar's 4 only with it); 0 when the expert is off.
    static func features(_ c: ModelConfiguration) -> Int {
        c.linearLags == 0 ? 0 : lags(c) * c.inputs + c.inputs + (c.calendar ? ModelConfiguration.calendarFeatures : 0) + 1
    }

    var isOn: Bool { features > 0 }

    /// The covariance back to its initial value, the identity.
    func resetCovariance() {
        let d = features
        for i in 0..<(d * d) { covariance[i] = 0 }
        for i in 0..<d { covariance[i * d + i] = 1 }
    }

    /// Keeps sample `n`, `x`, for the changes of the next L samples' features. With `restart`
    /// (a new segment), `x` stands for every earlier sample too: no change is taken across it.
    func remember(_ x: UnsafePointer<Float>, sample n: Int, restart: Bool = false) {
        for slot in 0...lags where restart || slot == n % (lags + 1) {
            let values = valueRing + slot * inputs
            for i in 0..<inputs { values[i] = Double(x[i]) }
        }
    }

    /// The features of sample `n`, in its row of the ring.
    func features(of n: Int) -> UnsafeMutablePointer<Double> { featureRing + (n % rows) * features }

    /// Writes the features of sample `n` (remembered) taken at `time`: the latest L changes of
    /// every channel, each divided by its channel's change unit now, `changeUnit(i)`, so that all
    /// lags are in one unit; the levels as `normalizer` has them; both bounded as the network's
    /// inputs; then the calendar phases, and 1.
    func prepareFeatures(sample n: Int, time: Double?, normalizer: RunningNormalizer, changeUnit: (Int) -> Double) {
        let phi = features(of: n)
        var f = 0
        for lag in 0..<lags {
            let m = n - lag
            guard m >= 1 else {
                for _ in 0..<inputs { phi[f] = 0; f += 1 }
                continue
            }
            let current = valueRing + (m % (lags + 1)) * inputs
            let previous = valueRing + ((m - 1) % (lags + 1)) * inputs
            for i in 0..<inputs {
                phi[f] = OnlineTrainer<Float>.bounded((current[i] - previous[i]) / changeUnit(i))
                f += 1
            }
        }
        let latest = valueRing + (n % (lags + 1)) * inputs
        for i in 0..<inputs {
            phi[f] = OnlineTrainer<Float>.bounded((latest[i] - normalizer.offset(i)) / normalizer.scale(i))
            f += 1
        }
        if calendar {
            OnlineTrainer<Double>.calendarPhases(time, into: phi + f)
            f += ModelConfiguration.calendarFeatures
        }
        phi[f] = 1
    }

    /// Output `o`'s forecast from sample `n`'s features, `w_o · φ_n`: the change to come, in
    /// change units.
    func change(output o: Int, sample n: Int) -> Double {
        let phi = features(of: n), w = weights + o * features
        var dot = 0.0
        for i in 0..<features { dot += w[i] * phi[i] }
        return dot
    }

    /// One step on the forecasts made at sample `m` for `step` samples ahead, now resolved:
    /// `target(j)` is the change of target `j` they forecast, in change units. The gain is
    /// `g = Cφ / (λ + φᵀCφ)` with `φ = φ_m`, then `w_o += g · error` for each of the step's
    /// outputs; the covariance takes step 1's features only (once per sample), the other steps
    /// use its gain.
    func learn(madeAt m: Int, step p: Int, target: (_ j: Int) -> Double) {
        let d = features, k = targets, lambda = Self.forgetting
        let cov = covariance, g = gain
        let phi = features(of: m)
        // g = C φ / (λ + φᵀ C φ)
        var denominator = lambda
        for r in 0..<d {
            var s = 0.0
            let row = cov + r * d
            for c in 0..<d { s += row[c] * phi[c] }
            g[r] = s
            denominator += phi[r] * s
        }
        guard denominator.isFinite, denominator > 0 else { return }
        for r in 0..<d { g[r] /= denominator }
        for j in 0..<k {
            let out = (p - 1) * k + j
            let change = target(j)
            let w = weights + out * d
            var prediction = 0.0
            for i in 0..<d { prediction += w[i] * phi[i] }
            let error = change - prediction
            guard error.isFinite else { continue }
            for i in 0..<d { w[i] += g[i] * error }
        }
        if p == 1 {
            // C ← (C − g φᵀ C) / λ, symmetric: C φ = g · denominator.
            var trace = 0.0
            for r in 0..<d {
                let row = cov + r * d
                for c in 0..<d { row[c] = (row[c] - g[r] * g[c] * denominator) / lambda }
                trace += row[r]
            }
            if trace > Double(d) {
                let scale = Double(d) / trace
                for i in 0..<(d * d) { cov[i] *= scale }
            }
        }
    }
}
