// The novelty half of the anomaly score: a target's value outside every value it has taken,
// at four time scales. The other half (AnomalyScore's surprise) judges the forecast error, and
// misses what a forecaster adapts to within a few samples, a level never seen before being the
// commonest; this half is what most of the NAB corpus's labelled incidents show (a machine
// running hotter than it ever has, a CPU pinned, a count at a new high), at a cost of a few
// numbers per target and no allocation. The constants were chosen on the NAB corpus
// (docs/anomalies.md, which shows the variants tried); docs/numerics.md, "Anomaly score", is
// the contract.

/// The novelty score's state: a view over its region of the forecaster's state buffer. `base`
/// holds the samples left in the quiet period after a novelty, then per target its latest
/// novelty, the values folded in and, per span, the smoothed value and the remembered range
/// (lowest, highest).
struct NoveltyScore {
    let base: UnsafeMutablePointer<Double>
    let targets: Int

    /// Numbers of the region `base` points at.
    static func count(targets k: Int) -> Int { 1 + perTarget * k }
    static let perTarget = 2 + 3 * spans.count

    /// The exponential smoothing spans, in samples (weight 2 / (span + 1)): 1 is the value
    /// itself; the longer ones find a slow departure that no single sample shows.
    static let spans: [Double] = [1, 5, 20, 60]
    /// Values a target folds in before it scores: the range needs that many to mean something.
    static let warmup = 300.0
    /// A value is novel when it lies beyond its remembered range by more than this share of
    /// the range's width.
    static let margin = 0.02
    /// Per sample, the range's ends move this share of the way to its middle, so that a range
    /// an old incident widened narrows again (a half-life of about 6,900 samples).
    static let forgetting = 1e-4
    /// A novelty scores from `floor` (just past the margin) to 1 (a full range's width past it):
    /// above everything the surprise scores but its own certain departures (AnomalyScore).
    static let floor = 0.92
    /// After a novelty, the next `quietSamples` samples' novelties score 0: one incident, one
    /// alert.
    static let quietSamples = 100

    private var quiet: UnsafeMutablePointer<Double> { base }
    private func target(_ j: Int) -> UnsafeMutablePointer<Double> { base + 1 + Self.perTarget * j }

    /// A new stream's: nothing folded in, no quiet period.
    func start() {
        base.update(repeating: 0, count: Self.count(targets: targets))
    }

    /// Target `j`'s latest novelty (after the quiet period, once `quieten` has run).
    func value(target j: Int) -> Double { target(j)[0] }

    /// Sets target `j`'s novelty for a sample whose value is `value`, 0 when not novel (or not
    /// scoring yet); then folds it in.
    func observe(target j: Int, value: Double) {
        let s = target(j)
        let folded = s[1]
        var excess = 0.0
        // Once scoring, the smoothed spans take the value bounded to a width beyond the value's
        // own range (span 1's), so that one sentinel is one novel value, not smoothed values
        // pulled away for a hundred samples. (Feeding them the outlier gate's output instead,
        // which holds a sentinel back, cost 1.5 to 3.5 points of NAB score: the gate holds
        // back some of a heavy-tailed series' usual values too.)
        let low = s[3], high = s[4], valueWidth = high - low
        let bounded = folded >= Self.warmup && valueWidth > 0 ? min(max(value, low - valueWidth), high + valueWidth) : value
        for (i, span) in Self.spans.enumerated() {
            let state = s + 2 + 3 * i
            let weight = 2 / (span + 1)
            let x = i == 0 ? value : bounded
            if folded == 0 {
                state.update(repeating: x, count: 3)
                continue
            }
            let smoothed = state[0] + weight * (x - state[0])
            let width = state[2] - state[1]
            if folded >= Self.warmup, width > 0 {
                excess = max(excess, (smoothed - state[2]) / width, (state[1] - smoothed) / width)
            }
            // Once scoring, a range widens by at most its own width a sample: a sentinel blunts
            // its side of the value's range for a while without blinding it.
            let reach = folded >= Self.warmup && width > 0 ? width : .infinity
            var lowest = min(state[1], max(smoothed, state[1] - reach))
            var highest = max(state[2], min(smoothed, state[2] + reach))
            let middle = 0.5 * (lowest + highest)
            lowest += Self.forgetting * (middle - lowest)
            highest += Self.forgetting * (middle - highest)
            state[0] = smoothed
            state[1] = lowest
            state[2] = highest
        }
        s[1] = folded + 1
        s[0] = excess > Self.margin ? Self.floor + (1 - Self.floor) * min(1, excess - Self.margin) : 0
    }

    /// Applies the quiet period to the sample's novelties: all 0 while it lasts; a sample with
    /// a novelty starts it.
    func quieten() {
        if quiet.pointee > 0 {
            quiet.pointee -= 1
            for j in 0..<targets { target(j)[0] = 0 }
        } else if (0..<targets).contains(where: { target($0)[0] > 0 }) {
            quiet.pointee = Double(Self.quietSamples)
        }
    }

    /// Whether a saved state's numbers can be this part's.
    static func isPlausible(_ base: UnsafePointer<Double>, targets k: Int) -> Bool {
        guard base[0] >= 0, base[0] <= Double(quietSamples) else { return false }
        for j in 0..<k {
            let s = base + 1 + perTarget * j
            guard (0...1).contains(s[0]), s[1] >= 0, s[1] == s[1].rounded() else { return false }
            for i in 0..<spans.count {
                let state = s + 2 + 3 * i
                guard state[0].isFinite, state[1].isFinite, state[2].isFinite, state[1] <= state[2] else { return false }
            }
        }
        return true
    }
}
