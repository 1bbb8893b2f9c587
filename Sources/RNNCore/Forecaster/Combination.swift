import RealModule

// The combination of the experts by exponentiated gradient (J. Kivinen and M. K. Warmuth,
// "Exponentiated gradient versus gradient descent for linear predictors", Information and
// Computation 132, 1997) on the squared error of the combination, with weights on the simplex.
// The gradient is divided by the experts' running mean squared error, so that the step does not
// depend on the stream's units, and no weight falls below a floor, so that an expert that becomes
// accurate again is heard again. docs/numerics.md, "Experts and their combination".
//
// Legend: O = outputs, E = experts (``Expert``, in its order).

/// Per output, the weights of the experts and their running mean squared error. A view over two
/// regions of the forecaster's state buffer: the weights (O × E) and the error scales (O).
struct Combination {
    let weights: UnsafeMutablePointer<Double>
    let errorScales: UnsafeMutablePointer<Double>
    let outputs: Int
    let experts = Expert.count

    /// The step η.
    static let rate = 0.05
    static let weightFloor = 1e-3
    static let scaleForgetting = 0.99

    /// Even weights for every output over the experts `on` names, none for the others (an
    /// expert that is off, or left out by `experts`: its weight then stays 0, and it is not
    /// heard).
    func start(on: (Expert) -> Bool) {
        let active = Double(Expert.allCases.filter(on).count)
        for o in 0..<outputs {
            let w = weights + o * experts
            for e in Expert.allCases { w[e.rawValue] = on(e) ? 1 / active : 0 }
        }
    }

    /// The weights of a restored state under the experts `on` names now (the configuration's
    /// `experts` may change between runs): an expert no longer named loses its weight, one named
    /// again comes back at the floor, every output's weights are scaled to sum to 1. Weights of
    /// the experts named both times keep their ratios; with the same experts nothing changes.
    func readmit(on: (Expert) -> Bool) {
        for o in 0..<outputs {
            let w = weights + o * experts
            var total = 0.0, changed = false
            for e in Expert.allCases {
                let now = on(e) ? (w[e.rawValue] > 0 ? w[e.rawValue] : Self.weightFloor) : 0
                changed = changed || now != w[e.rawValue]
                w[e.rawValue] = now
                total += now
            }
            guard changed, total > 0 else { continue }
            for e in 0..<experts { w[e] /= total }
        }
    }

    /// Expert `e`'s weight in output `o`'s combination.
    func weight(_ e: Int, output o: Int) -> Double { weights[o * experts + e] }

    /// Output `o`'s combination of the experts' forecasts `f`: `Σ_e w_e f_e`.
    func combine(output o: Int, _ f: ExpertForecasts) -> Double {
        let w = weights + o * experts
        var combined = 0.0
        for e in 0..<experts { combined += w[e] * f[e] }
        return combined
    }

    /// Learns from a resolved forecast of output `o`: the experts' forecasts `f`, the combination
    /// that was published, `combined`, and the value `y` they forecast. One exponentiated-gradient
    /// step, `w_e ← max(w_e exp(−η · 2 (combined − y)(f_e − combined) / s), floor)` normalised,
    /// with `s` the error scale before this resolution's errors are folded into it (no step on
    /// the output's first resolution, which starts `s`).
    func learn(output o: Int, forecasts f: ExpertForecasts, combined: Double, actual y: Double, step p: Int = 1) {
        let w = weights + o * experts, scale = errorScales + o
        // The scale is the mean square over the experts heard (weight above 0).
        var meanSquare = 0.0, heard = 0
        for e in 0..<experts where w[e] > 0 {
            let error = f[e] - y
            meanSquare += error * error
            heard += 1
        }
        meanSquare /= Double(max(heard, 1))
        // A step only when every gradient is finite (an expert's forecast can overflow on a wild
        // sample): the weights stay a combination whatever comes in.
        // Bounded influence: the combination's error counts up to `Robustness.bound` times the
        // experts' RMS error, and the mean square up to the square of that (one wild value moves
        // the weights and the scale no more than a large ordinary error).
        let s = scale.pointee, limit = Robustness.bound * s.squareRoot()
        if s > 0 {
            meanSquare = min(meanSquare, limit * limit)
            let residual = min(max(combined - y, -limit), limit)
            withUnsafeTemporaryAllocation(of: Double.self, capacity: experts) { gradient in
                var finite = true
                for e in 0..<experts where w[e] > 0 {
                    gradient[e] = 2 * residual * (f[e] - combined) / s
                    finite = finite && gradient[e].isFinite
                }
                guard finite else { return }
                var total = 0.0
                for e in 0..<experts where w[e] > 0 {
                    w[e] = max(w[e] * Double.exp(max(-50, min(50, -Self.rate / Double(p) * gradient[e]))), Self.weightFloor)
                    total += w[e]
                }
                for e in 0..<experts where w[e] > 0 { w[e] /= total }
            }
        }
        if meanSquare.isFinite {
            scale.pointee = scale.pointee == 0
                ? meanSquare : Self.scaleForgetting * scale.pointee + (1 - Self.scaleForgetting) * meanSquare
        }
    }

    /// Whether `weights` (the region of a saved state, `outputs × E`) can be a combination's: every
    /// weight in [0, 1].
    static func isPlausible(weights: UnsafePointer<Double>, outputs: Int) -> Bool {
        (0..<(outputs * Expert.count)).allSatisfy { weights[$0] >= 0 && weights[$0] <= 1 }
    }
}
