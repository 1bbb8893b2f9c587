// Prediction bands by adaptive conformal inference (I. Gibbs and E. Candès, "Adaptive conformal
// inference under distribution shift", NeurIPS 2021): the split-conformal quantile of a window of
// recent scaled errors, at a miscoverage level α_t that steps after every resolved forecast, so
// that long-run coverage holds whatever the stream. docs/numerics.md, "Bands (adaptive conformal
// inference)".
//
// Legend: O = outputs, W = the window of scores.

/// Per output: the level `α_t`, the scale `σ` (the running mean absolute error of the published
/// forecast), the debt of its level beyond step 1, and a window of the latest `W` scores
/// `|error| / σ` (beyond step 1, the quantile is of the newest `farWindow` of them). A view over four regions of the forecaster's state buffer (the levels, the
/// scales, the scores inserted so far and the debts, O numbers each) and over the windows, `O × 2W` Floats beside it: per output the scores in
/// arrival order, then the same sorted.
struct ConformalBands {
    let levels: UnsafeMutablePointer<Double>
    let scales: UnsafeMutablePointer<Double>
    let inserted: UnsafeMutablePointer<Double>
    /// Beyond step 1, the part of each level's fall that the bound held back, still to pay back.
    let debts: UnsafeMutablePointer<Double>
    let windows: UnsafeMutablePointer<Float>
    let outputs: Int
    /// Outputs at step 1: the first `targets` (output `(p − 1)·K + j` is target `j`, `p` steps ahead).
    let targets: Int
    /// The coverage asked, `1 − α`; 0: no bands.
    let coverage: Double

    /// Scores in each window, and scores before a band is published.
    static let window = 256
    static let warmup = 20
    /// The step γ of the level (Gibbs and Candès use 0.005).
    static let step = 0.005
    static let scaleForgetting = 0.99
    /// Beyond step 1, the scores the quantile is taken over (the newest of the window's) and the
    /// scale's forgetting. Errors far ahead come `p` samples late and in runs (consecutive origins
    /// share up to `p − 1` steps), so a scale that follows the latest of them chases a regime that
    /// is already over, and an old quantile holds on to one: a steadier scale and a shorter window
    /// (docs/numerics.md, "Bands"; measured in docs/tuning.md, "Bands").
    static let farWindow = 128
    static let farScaleForgetting = 0.998
    /// Beyond step 1, how far below 0 the level may go, in units of the asked `α`: below 0 the
    /// band is already the window's largest score, so going further only winds the level up
    /// (docs/numerics.md, "Bands"). What the bound holds back is owed, not forgotten:
    static let windup = 0.5
    /// the share of the debt paid back (taken off the level) at each resolution above the bound,
    /// so that the misses count in the long run, spread over thousands of forecasts.
    static let repay = 0.001

    /// Floats the windows of `outputs` outputs hold.
    static func windowsCount(outputs: Int) -> Int { 2 * window * outputs }

    /// Every level at the asked `α`.
    func start() {
        for o in 0..<outputs {
            levels[o] = 1 - coverage
            debts[o] = 0
        }
    }

    /// The scale of output `o`'s band now (0 before its first error).
    func scale(output o: Int) -> Double { scales[o] }

    /// Whether output `o` is beyond step 1.
    private func isFar(_ o: Int) -> Bool { o >= targets }

    /// The newest scores output `o`'s quantile is taken over, at most.
    private func live(_ o: Int) -> Int { isFar(o) ? Self.farWindow : Self.window }

    /// The half-width of output `o`'s band now: the scale times the `1 − α_t` quantile of the
    /// window; NaN before `warmup` scores or with bands off.
    func halfWidth(output o: Int) -> Double {
        let inserted = Int(self.inserted[o])
        guard coverage > 0, inserted >= Self.warmup else { return .nan }
        let m = min(inserted, live(o))
        let level = 1 - levels[o]
        let sorted = windows + (2 * o + 1) * Self.window
        let q: Double
        if level <= 0 {
            q = 0
        } else {
            // The split-conformal rank ⌈level·(m + 1)⌉; beyond the window (α_t below 1/(m+1)),
            // the largest score, where the method's interval would be unbounded.
            let rank = Int((level * Double(m + 1)).rounded(.up))
            q = Double(sorted[min(max(rank, 1), m) - 1])
        }
        return q * scales[o]
    }

    /// Learns from a resolved forecast of output `o`: its absolute `error`, the half-width its
    /// band had (NaN: none) and the scale it was published with. The level steps when there was
    /// a band, the score joins the window, the error joins the scale. Returns whether the value
    /// fell inside the band, nil when there was none.
    func resolve(output o: Int, error: Double, halfWidth half: Double, scale: Double) -> Bool? {
        var inside: Bool?
        let far = isFar(o)
        if !half.isNaN {
            let held = error <= half
            var level = levels[o] + Self.step * ((1 - coverage) - (held ? 0 : 1))
            if far {
                let floor = -Self.windup * (1 - coverage)
                if level < floor {
                    debts[o] += floor - level
                    level = floor
                } else if debts[o] > 0 {
                    let paid = min(debts[o] * Self.repay, level - floor)
                    level -= paid
                    debts[o] -= paid
                }
            }
            levels[o] = level
            inside = held
        }
        if scale > 0 { insert(Float(error / scale), output: o) }
        // Bounded influence: an error counts up to `Robustness.bound` times the scale.
        let s = scales + o, forgetting = far ? Self.farScaleForgetting : Self.scaleForgetting
        s.pointee = s.pointee == 0
            ? error
            : forgetting * s.pointee + (1 - forgetting) * min(error, Robustness.bound * s.pointee)
        return inside
    }

    /// Adds a score to output `o`'s window. The ring keeps the latest `window` scores in arrival
    /// order at every step; the sorted copy holds the newest `live` of them (all at step 1), so the
    /// score that leaves it is the one `live` arrivals back, moved out before the new one is moved
    /// in.
    private func insert(_ score: Float, output o: Int) {
        guard score.isFinite else { return }
        let w = Self.window, live = live(o)
        let ring = windows + 2 * o * w, sorted = ring + w
        let inserted = Int(self.inserted[o])
        var m = min(inserted, live)
        if m == live {
            let old = ring[(inserted - live) % w]
            var i = Self.lowerBound(old, sorted, m)
            if i >= m || sorted[i] != old { i = m - 1 }  // not found (cannot happen): drop the largest
            (sorted + i).update(from: sorted + i + 1, count: m - i - 1)
            m -= 1
        }
        ring[inserted % w] = score
        let i = Self.upperBound(score, sorted, m)
        var j = m
        while j > i {
            sorted[j] = sorted[j - 1]
            j -= 1
        }
        sorted[i] = score
        self.inserted[o] = Double(inserted + 1)
    }

    /// Sorts again, from the ring, the windows of the outputs beyond step 1: a state saved before
    /// they held fewer scores than the ring (or by a later version holding a different number)
    /// continues with the newest `farWindow`. The ring is the same in every version, so this is
    /// idempotent and done on every restore.
    func resortFarWindows() {
        let w = Self.window
        for o in targets..<outputs {
            let ring = windows + 2 * o * w, sorted = ring + w
            let inserted = Int(self.inserted[o]), m = min(inserted, Self.farWindow)
            for i in 0..<m { sorted[i] = ring[(inserted - m + i) % w] }
            var live = UnsafeMutableBufferPointer(start: sorted, count: m)
            live.sort()
        }
    }

    private static func lowerBound(_ v: Float, _ a: UnsafeMutablePointer<Float>, _ n: Int) -> Int {
        var lo = 0, hi = n
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] < v { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    private static func upperBound(_ v: Float, _ a: UnsafeMutablePointer<Float>, _ n: Int) -> Int {
        var lo = 0, hi = n
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] <= v { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Whether `levels`, `inserted` and `debts` (the regions of a saved state, `outputs` each) are
    /// values the bands can continue from: finite levels, whole non-negative counts, finite
    /// non-negative debts.
    static func isPlausible(
        levels: UnsafePointer<Double>, inserted: UnsafePointer<Double>, debts: UnsafePointer<Double>, outputs: Int
    ) -> Bool {
        (0..<outputs).allSatisfy { o in
            inserted[o] >= 0 && inserted[o] == inserted[o].rounded() && levels[o].isFinite
                && debts[o] >= 0 && debts[o].isFinite
        }
    }
}
