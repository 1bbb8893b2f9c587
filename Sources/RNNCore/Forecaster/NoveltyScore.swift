// The novelty half of the anomaly score: a target's value outside every value it has taken,
// at three time scales, or its departure from the usual for its time of day and week (the
// residual against a day-and-week profile) outside every departure it has made. The other half
// (AnomalyScore's surprise) judges the forecast error, and misses what a forecaster adapts to
// within a few samples, a level never seen before being the commonest; this half is what most of
// the NAB corpus's labelled incidents show (a machine running hotter than it ever has, a CPU
// pinned, a count at a new high, a night as busy as a day), and a slow drift into values never
// seen (a machine cooling for hours below every temperature it has had), which the range follows
// sample by sample so that no single step passes it; at a cost of a few numbers per target, a
// profile of 961, and no allocation. The constants were chosen on the NAB corpus
// (docs/anomalies.md, which shows the variants tried); docs/numerics.md, "Anomaly score", is
// the contract.

/// The novelty score's state: views over its regions of the forecaster's state buffer. `base`
/// holds the samples left in the quiet period after a novelty, then per target its latest
/// novelty, the values folded in and, per span, the smoothed value and the remembered range
/// (lowest, highest); `residual` per target the residuals folded in, the time of the first, and
/// the same per residual span; `profile` per target the day-and-week profile the residuals are
/// taken against; `drift` per target, per side of the longest span's range (low, then high), the
/// run of samples its smoothed value has lain beyond that end (negative once the run has alerted)
/// and where the end stood when the run began (record format 11 on).
struct NoveltyScore {
    let base: UnsafeMutablePointer<Double>
    let residual: UnsafeMutablePointer<Double>
    let profile: SeasonalExpert
    let drift: UnsafeMutablePointer<Double>
    let targets: Int

    init(
        base: UnsafeMutablePointer<Double>, residual: UnsafeMutablePointer<Double>, profile: UnsafeMutablePointer<Double>,
        drift: UnsafeMutablePointer<Double>, targets: Int
    ) {
        self.base = base
        self.residual = residual
        self.profile = SeasonalExpert(base: profile, targets: targets, isOn: true, rate: Self.profileRate)
        self.drift = drift
        self.targets = targets
    }

    /// Numbers of the region `base` points at, in record format `format` (5 on: formats 5 to 8
    /// had the spans of `formatEightSpans`).
    static func count(targets k: Int, format: Int = Forecaster.recordFormat) -> Int {
        1 + (format >= 9 ? perTarget : 2 + 3 * formatEightSpans.count) * k
    }
    static let perTarget = 2 + 3 * spans.count
    /// Numbers of the region `residual` points at (record format 8 on).
    static func residualCount(targets k: Int) -> Int { residualPerTarget * k }
    static let residualPerTarget = 2 + 3 * residualSpans.count
    /// Numbers of the region `profile` points at (record format 8 on).
    static func profileCount(targets k: Int) -> Int { SeasonalExpert.count(targets: k, on: true) }
    /// Numbers of the region `drift` points at (record format 11 on).
    static func driftCount(targets k: Int) -> Int { 4 * k }

    /// The exponential smoothing spans, in samples (weight 2 / (span + 1)): 1 is the value
    /// itself; the longer ones find a slow departure that no single sample shows. (Record formats
    /// 5 to 8 had a span of 5 too, `formatEightSpans`: it found little that the value itself or
    /// span 20 did not, and raised 15 more false alarms on NAB, 0.7 points of its standard
    /// score; a middle span of 10 to 30 scores the same; docs/anomalies.md.)
    static let spans: [Double] = [1, 20, 60]
    /// The spans of record formats 5 to 8: a record of those formats keeps those of `spans`.
    static let formatEightSpans: [Double] = [1, 5, 20, 60]
    /// The spans of the residual, the value less what the stream's day-and-week profile expects
    /// at its time: a departure from the usual for the time of day (a night as busy as a day, a
    /// daily peak that does not come) that stays inside the value's own range. Span 1 keeps the
    /// residual's range, which bounds what the others take, and does not score: one sample off
    /// its time of day is what a noisy daily series does every day.
    static let residualSpans: [Double] = [1, 20, 60]
    /// Values (residuals) a target folds in before they score: the range needs that many to
    /// mean something.
    static let warmup = 300.0
    /// Seconds of residuals (from the first) before they score, besides `warmup` of them: a
    /// day, so that the residual's range holds a whole day's usual departures whatever the
    /// sampling rate (300 one-minute residuals are five hours). On NAB a week scored 1.3 points
    /// lower, 3 days 0.6 lower, anything up to 2 days the same (docs/anomalies.md).
    static let residualWarmup = SeasonalExpert.day
    /// A residual is novel when its smoothed value lies beyond its remembered range by more than
    /// this share of the range's width: wider than the value's `margin`, since a profile that is
    /// still learning adds its own noise to the residual.
    static let residualMargin = 0.07
    /// ρ of the profile the residual is taken against: a bin's memory is about five visits, half
    /// the seasonal expert's, so that a changed routine stops being a departure within about
    /// a week (with a week's warm-up, 0.1 scored 1.6 to 2.4 points lower on NAB, 0.15 as low,
    /// 0.18 to 0.22 about the same, 0.25 to 0.4 lower again; docs/anomalies.md has this sweep and
    /// the one with a day's).
    static let profileRate = 0.2
    /// A value is novel when it lies beyond its remembered range by more than this share of
    /// the range's width.
    static let margin = 0.04
    /// Per sample, the range's ends move this share of the way to its middle, so that a range
    /// an old incident widened narrows again (a half-life of about 6,900 samples).
    static let forgetting = 1e-4
    /// A novelty scores from `floor` (just past the margin) to 1 (a full range's width past it):
    /// above everything the surprise scores but its own certain departures (AnomalyScore).
    static let floor = 0.92
    /// After a novelty, the next `quietSamples` samples' novelties score 0: one incident, one
    /// alert.
    static let quietSamples = 100
    /// A drift: the longest span's smoothed value beyond its range's end (a new low, or a new
    /// high) on `driftRun` samples in a row, and by then `driftReach` of the range's width past
    /// where that end stood when the run began. It scores `floor`, once per run. The reach keeps
    /// a value held at its range's end (a disk idle at 0, a CPU pinned at 100, which the
    /// forgetting leaves just beyond the end every sample) from counting as a drift. (On NAB,
    /// runs of 50 to 150 and reaches of 0.1 to 0.2 scored within 0.03 of each other; without a
    /// reach, 32 drifts fired, on streams held at an end; with it, 4, all on the machine
    /// temperature: docs/anomalies.md.) It is watched from the value's `warmup` on and, for a
    /// stream with times, once a day has passed since its first residual (`residualWarmup`).
    static let driftRun = 75.0
    static let driftReach = 0.1

    private var quiet: UnsafeMutablePointer<Double> { base }
    private func target(_ j: Int) -> UnsafeMutablePointer<Double> { base + 1 + Self.perTarget * j }
    private func residual(_ j: Int) -> UnsafeMutablePointer<Double> { residual + Self.residualPerTarget * j }

    /// A new stream's: nothing folded in, no quiet period, the profiles unknown, no drift.
    func start() {
        base.update(repeating: 0, count: Self.count(targets: targets))
        startResidual()
        drift.update(repeating: 0, count: Self.driftCount(targets: targets))
    }

    /// The residual's part as a new stream's (what record format 8 added).
    func startResidual() {
        residual.update(repeating: 0, count: Self.residualCount(targets: targets))
        profile.start()
    }

    /// Target `j`'s latest novelty (after the quiet period, once `quieten` has run).
    func value(target j: Int) -> Double { target(j)[0] }

    /// Sets target `j`'s novelty for a sample whose value is `value`, taken at the time of `bins`
    /// (nil: unknown; found once per sample by the caller), 0 when not novel (or not scoring
    /// yet); then folds it in. The profile learns `learned`, the value as the forecaster learns
    /// from it (the outlier gate's: a sentinel does not teach the time of day), `interval` the
    /// stream's sampling interval.
    func observe(target j: Int, value: Double, learned: Double, at bins: SeasonalExpert.Bins?, interval: Double?) {
        let s = target(j), r = residual(j)
        // The drift is watched once the value scores and, for a sample with a time, a day has
        // passed since the first residual, as the residual waits: a slow cycle's first descent
        // (a daily one at one-minute samples) sets a new low at every sample.
        let dayOld = bins.map { r[0] > 0 && $0.time - r[1] >= Self.residualWarmup } ?? true
        var drifted = false
        var excess = Self.fold(
            s + 2, spans: Self.spans, scoringFrom: 0, folded: s[1], scores: s[1] >= Self.warmup, value: value,
            drift: dayOld ? drift + 4 * j : nil, drifted: &drifted)
        s[1] += 1
        if let bins {
            let time = bins.time
            if let expected = profile.expected(target: j, at: bins) {
                // The warm-up's day counts from the first residual, or from a time set back
                // before it.
                if r[0] == 0 || time < r[1] { r[1] = time }
                let scores = r[0] >= Self.warmup && time - r[1] >= Self.residualWarmup
                let e = Self.fold(
                    r + 2, spans: Self.residualSpans, scoringFrom: 1, folded: r[0], scores: scores, value: value - expected,
                    drift: nil, drifted: &drifted)
                // Measured against the value's margin: a residual needs `residualMargin` to score
                // what a value scores at `margin`.
                excess = max(excess, e - (Self.residualMargin - Self.margin))
                r[0] += 1
            }
            profile.observe(learned, target: j, at: bins, interval: interval, restart: false)
        }
        s[0] = excess > Self.margin ? Self.floor + (1 - Self.floor) * min(1, excess - Self.margin) : drifted ? Self.floor : 0
    }

    /// Folds `value` into `state` (per span of `spans`, the first being 1: the smoothed value
    /// and the remembered range), of which `folded` values came before, and returns how far
    /// beyond their ranges the smoothed values of the spans from index `first` on lie, in
    /// shares of each range's width (0 before `warmup` values). With `drift`, the longest span's
    /// runs beyond its range's ends are watched too (`watch`), `drifted` set when one alerts.
    private static func fold(
        _ state: UnsafeMutablePointer<Double>, spans: [Double], scoringFrom first: Int, folded: Double, scores: Bool, value: Double,
        drift: UnsafeMutablePointer<Double>?, drifted: inout Bool
    ) -> Double {
        var excess = 0.0
        // Once scoring, the smoothed spans take the value bounded to a width beyond the value's
        // own range (span 1's), so that one sentinel is one novel value, not smoothed values
        // pulled away for a hundred samples. (Feeding them the outlier gate's output instead,
        // which holds a sentinel back, cost 1.5 to 3.5 points of NAB score: the gate holds
        // back some of a heavy-tailed series' usual values too.)
        let low = state[1], high = state[2], valueWidth = high - low
        let bounded = folded >= warmup && valueWidth > 0 ? min(max(value, low - valueWidth), high + valueWidth) : value
        for (i, span) in spans.enumerated() {
            let s = state + 3 * i
            let weight = 2 / (span + 1)
            let x = i == 0 ? value : bounded
            if folded == 0 {
                s.update(repeating: x, count: 3)
                continue
            }
            let smoothed = s[0] + weight * (x - s[0])
            let width = s[2] - s[1]
            if scores, width > 0, i >= first {
                excess = max(excess, (smoothed - s[2]) / width, (s[1] - smoothed) / width)
            }
            if let drift, i == spans.count - 1, scores, width > 0 {
                drifted = watch(drift, smoothed: smoothed, low: s[1], high: s[2]) || drifted
            }
            // Once scoring, a range widens by at most its own width a sample: a sentinel blunts
            // its side of the value's range for a while without blinding it.
            let reach = folded >= warmup && width > 0 ? width : .infinity
            var lowest = min(s[1], max(smoothed, s[1] - reach))
            var highest = max(s[2], min(smoothed, s[2] + reach))
            let middle = 0.5 * (lowest + highest)
            lowest += forgetting * (middle - lowest)
            highest += forgetting * (middle - highest)
            s[0] = smoothed
            s[1] = lowest
            s[2] = highest
        }
        return excess
    }

    /// Advances the runs of `drift` (low side, then high) for a smoothed value `smoothed` and the
    /// range `low`...`high` before it is folded in; true when a run alerts (`driftRun` samples
    /// beyond the end, `driftReach` of the width past where the end stood when it began).
    private static func watch(_ drift: UnsafeMutablePointer<Double>, smoothed: Double, low: Double, high: Double) -> Bool {
        var alerts = false
        for side in 0..<2 {
            let run = drift + 2 * side, end = side == 0 ? low : high
            guard side == 0 ? smoothed < end : smoothed > end else {
                run[0] = 0
                continue
            }
            if run[0] == 0 {
                run[0] = 1
                run[1] = end
            } else {
                run[0] += run[0] > 0 ? 1 : -1
            }
            if run[0] >= driftRun, abs(smoothed - run[1]) >= driftReach * (high - low) {
                run[0] = -run[0]
                alerts = true
            }
        }
        return alerts
    }

    /// Applies the quiet period to the sample's novelties: all 0 while it lasts; a sample with
    /// a novelty starts it.
    func quieten() {
        if quiet.pointee > 0 {
            quiet.pointee -= 1
            for j in 0..<targets { target(j)[0] = 0 }
        } else if (0..<targets).contains(where: { target($0)[0] > 0 }) {
            startQuiet()
        }
    }

    /// Starts the quiet period (a novelty, or an alert of the novelty's rank from the other half).
    func startQuiet() { quiet.pointee = Double(Self.quietSamples) }

    /// Whether a saved state's numbers can be this part's.
    static func isPlausible(
        _ base: UnsafePointer<Double>, residual: UnsafePointer<Double>, profile: UnsafePointer<Double>, drift: UnsafePointer<Double>,
        targets k: Int
    ) -> Bool {
        guard base[0] >= 0, base[0] <= Double(quietSamples) else { return false }
        func plausible(_ folded: Double, _ state: UnsafePointer<Double>, spans: Int) -> Bool {
            guard folded >= 0, folded == folded.rounded() else { return false }
            return (0..<spans).allSatisfy { i in
                let s = state + 3 * i
                return s[0].isFinite && s[1].isFinite && s[2].isFinite && s[1] <= s[2]
            }
        }
        for i in 0..<(2 * k) {
            let run = drift + 2 * i
            guard run[0] == run[0].rounded(), run[0].magnitude < 1e15, run[1].isFinite else { return false }
        }
        for j in 0..<k {
            let s = base + 1 + perTarget * j, r = residual + residualPerTarget * j
            guard (0...1).contains(s[0]), plausible(s[1], s + 2, spans: spans.count),
                r[1].isFinite, plausible(r[0], r + 2, spans: residualSpans.count)
            else { return false }
        }
        return SeasonalExpert.isPlausible(profile, targets: k, on: true)
    }
}
