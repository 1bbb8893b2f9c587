// The novelty half of the anomaly score: a target's value outside every value it has taken,
// at three time scales, or its departure from the usual for its time of day and week (the
// residual against a day-and-week profile) outside every departure it has made. The other half
// (AnomalyScore's surprise) judges the forecast error, and misses what a forecaster adapts to
// within a few samples, a level never seen before being the commonest; this half is what most of
// the NAB corpus's labelled incidents show (a machine running hotter than it ever has, a CPU
// pinned, a count at a new high, a night as busy as a day), and a slow drift into values never
// seen (a machine cooling for hours below every temperature it has had), which the range follows
// sample by sample so that no single step passes it, and a waveform never seen (spikes grown
// dense at the usual level); at a cost of a few numbers per target, a profile of 961, a memory
// of 837 for the shapes, and no allocation. The constants were chosen on the NAB corpus
// (docs/anomalies.md, which shows the variants tried); docs/numerics.md, "Anomaly score", is
// the contract.

/// The novelty score's state: views over its regions of the forecaster's state buffer. `base`
/// holds the samples left in the quiet period after a novelty, then per target its latest
/// novelty, the values folded in and, per span, the smoothed value and the remembered range
/// (lowest, highest); `residual` per target the residuals folded in, the time of the first, and
/// the same per residual span; `profile` per target the day-and-week profile the residuals are
/// taken against; `drift` per target, per side of the longest span's range (low, then high), the
/// run of samples its smoothed value has lain beyond that end (negative once the run has alerted)
/// and where the end stood when the run began (record format 11 on); `shape` per target the
/// values pushed, the record of nearest distances, the shapes remembered, the slot the next one
/// takes and the samples since the target's latest novelty of another part (the value, the
/// residual, the drift), then the ring of the latest `shapeValues` values and the remembered
/// shapes (record format 12 on).
struct NoveltyScore {
    let base: UnsafeMutablePointer<Double>
    let residual: UnsafeMutablePointer<Double>
    let profile: SeasonalExpert
    let drift: UnsafeMutablePointer<Double>
    let shape: UnsafeMutablePointer<Double>
    let targets: Int

    init(
        base: UnsafeMutablePointer<Double>, residual: UnsafeMutablePointer<Double>, profile: UnsafeMutablePointer<Double>,
        drift: UnsafeMutablePointer<Double>, shape: UnsafeMutablePointer<Double>, targets: Int
    ) {
        self.base = base
        self.residual = residual
        self.profile = SeasonalExpert(base: profile, targets: targets, isOn: true, rate: Self.profileRate)
        self.drift = drift
        self.shape = shape
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
    /// Numbers of the region `shape` points at (record format 12 on).
    static func shapeCount(targets k: Int) -> Int { shapePerTarget * k }
    static let shapePerTarget = 5 + shapeValues + shapeBlocks * shapeMemory

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

    /// A new shape: the latest `shapeValues` values (bounded as the smoothed spans take them) as
    /// `shapeBlocks` block means less their mean, in shares of the value's range, farther from
    /// the nearest of the `shapeMemory` shapes remembered (one every `shapeStride` samples, the
    /// oldest replaced) than any shape before, by `shapeMargin` of that record: a waveform the
    /// target has not shown (spikes grown dense, a cycle grown square, a channel gone jittery at
    /// the same level), which no value and no mean over a span shows. It scores `floor`, once
    /// `shapeWarmup` shapes are remembered and the value scores (and, for a stream with times, a
    /// day after its first residual, as the drift waits). The record of nearest distances is
    /// left as it is while the latest `shapeValues` samples hold a novelty of the value, the
    /// residual or the drift, so that one sentinel does not raise it for the stream's life. (On
    /// NAB it raised the standard score by 1.5 and found a window no other part finds; most
    /// neighbouring settings gained 0.4 to 0.7: docs/anomalies.md.) The distance to a
    /// subsequence's nearest neighbour is the matrix profile's (Yeh et al., "Matrix Profile I",
    /// IEEE ICDM 2016); here online, against a bounded memory of 800 numbers a target.
    static let shapeValues = 32
    static let shapeBlocks = 8
    static let shapeMemory = 100
    static let shapeStride = 4
    static let shapeMargin = 0.05
    static let shapeWarmup = 75.0

    private var quiet: UnsafeMutablePointer<Double> { base }
    private func target(_ j: Int) -> UnsafeMutablePointer<Double> { base + 1 + Self.perTarget * j }
    private func residual(_ j: Int) -> UnsafeMutablePointer<Double> { residual + Self.residualPerTarget * j }

    /// A new stream's: nothing folded in, no quiet period, the profiles unknown, no drift, no
    /// shape remembered.
    func start() {
        base.update(repeating: 0, count: Self.count(targets: targets))
        startResidual()
        drift.update(repeating: 0, count: Self.driftCount(targets: targets))
        shape.update(repeating: 0, count: Self.shapeCount(targets: targets))
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
    /// stream's sampling interval; `routine` the target's count of recent alerts (AnomalyScore's),
    /// to which a held-back far value adds one.
    func observe(
        target j: Int, value: Double, learned: Double, at bins: SeasonalExpert.Bins?, interval: Double?,
        routine: UnsafeMutablePointer<Double>
    ) {
        let s = target(j), r = residual(j)
        // The drift is watched once the value scores and, for a sample with a time, a day has
        // passed since the first residual, as the residual waits: a slow cycle's first descent
        // (a daily one at one-minute samples) sets a new low at every sample.
        let dayOld = bins.map { r[0] > 0 && $0.time - r[1] >= Self.residualWarmup } ?? true
        var drifted = false
        let scores = s[1] >= Self.warmup, bounded = Self.bounded(value, range: s + 2, folded: s[1])
        // A value a whole range's width beyond every value the target has taken, which the outlier
        // gate held back (a sentinel, a unit slip, the first sample of a jump that large), is an
        // incident of its own even in the quiet period of another: it ends that period, so that it
        // scores (1) and starts its own. (On NAB the scores are the same to the digit: the 15
        // samples it lifts to 1 fall in windows or in probationary periods; docs/anomalies.md.)
        // It counts as one of the target's alerts, and until they are routine the value's range
        // does not take it, so that the next one alerts too: a sentinel, or a spike far beyond
        // what the stream does, does not hide the next. Once routine (the surprise's rule: more
        // than `AnomalyScore.routineAlerts` within about `AnomalyScore.memory` samples), the range
        // takes it whole: a far value that keeps coming is what the stream does now. (On NAB,
        // +0.8 / +0.8 / +1.1 points over five weight seeds; bounded as any other value, +0.7 /
        // +0.5 / +1.0; left out for good, a nightly spike pages every night: docs/anomalies.md.)
        let width = s[4] - s[3]
        var reach: Double?
        if scores, learned != value, width > 0, max(value - s[4], s[3] - value) >= (1 + Self.margin) * width {
            quiet.pointee = 0
            routine.pointee = min(routine.pointee + 1, AnomalyScore.memory)
            reach = routine.pointee > AnomalyScore.routineAlerts ? .infinity : 0
        }
        var excess = Self.fold(
            s + 2, spans: Self.spans, scoringFrom: 0, folded: s[1], scores: scores, value: value,
            drift: dayOld ? drift + 4 * j : nil, drifted: &drifted, reach: reach)
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
        let novel = excess > Self.margin || drifted
        let newShape = observeShape(target: j, value: bounded, width: s[4] - s[3], scores: scores && dayOld, novel: novel)
        s[0] = excess > Self.margin ? Self.floor + (1 - Self.floor) * min(1, excess - Self.margin) : drifted || newShape ? Self.floor : 0
    }

    /// Pushes target `j`'s `value` (bounded) into its ring, and whether the latest
    /// `shapeValues` values make a new shape (`scores`: the value scores); `width` is the value's
    /// range's, `novel` whether the sample is a novelty of another part. Remembers the shape
    /// every `shapeStride` samples. 8 × 100 multiply-adds for the nearest remembered shape.
    private func observeShape(target j: Int, value: Double, width: Double, scores: Bool, novel: Bool) -> Bool {
        let h = shape + Self.shapePerTarget * j, ring = h + 5, memory = h + 5 + Self.shapeValues
        let pushed = Int(h[0]), values = Self.shapeValues, blocks = Self.shapeBlocks
        ring[pushed % values] = value
        h[0] += 1
        // The record is left as it is while the ring holds a value that was novel to another part
        // (h[4]: the samples since the latest before this one). A new shape does not hold it: the
        // record takes a new regime's shapes, so that the regime alerts once.
        let held = novel || h[4] < Double(values - 1)
        var isNew = false
        if pushed + 1 >= values, width > 0 {
            withUnsafeTemporaryAllocation(of: Double.self, capacity: blocks) { buffer in
                let b = buffer.baseAddress!, per = values / blocks
                // The block means, oldest first (the ring's oldest value is at the next slot).
                var mean = 0.0
                for k in 0..<blocks {
                    var sum = 0.0
                    for i in 0..<per { sum += ring[(pushed + 1 + k * per + i) % values] }
                    b[k] = sum / Double(per)
                    mean += b[k]
                }
                mean /= Double(blocks)
                for k in 0..<blocks { b[k] = (b[k] - mean) / width }
                let remembered = Int(h[2])
                if remembered > 0 {
                    var nearest = Double.infinity
                    for m in 0..<remembered {
                        let e = memory + blocks * m
                        var d = 0.0
                        for k in 0..<blocks { d += (e[k] - b[k]) * (e[k] - b[k]) }
                        nearest = min(nearest, d)
                    }
                    let distance = nearest.squareRoot()
                    isNew = scores && h[2] >= Self.shapeWarmup && h[1] > 0 && distance > h[1] * (1 + Self.shapeMargin)
                    if !held { h[1] = max(h[1], distance) }
                }
                if (pushed + 1 - values) % Self.shapeStride == 0 {
                    let slot = Int(h[3])
                    (memory + blocks * slot).update(from: b, count: blocks)
                    h[3] = Double((slot + 1) % Self.shapeMemory)
                    h[2] = min(h[2] + 1, Double(Self.shapeMemory))
                }
            }
        }
        h[4] = novel ? 0 : h[4] + 1
        return isNew
    }

    /// `value` as the smoothed spans take it once scoring: within a width beyond the value's own
    /// range (span 1's, `range` its smoothed value, lowest and highest, `folded` values in).
    private static func bounded(_ value: Double, range: UnsafePointer<Double>, folded: Double) -> Double {
        let low = range[1], high = range[2], width = high - low
        return folded >= warmup && width > 0 ? min(max(value, low - width), high + width) : value
    }

    /// Folds `value` into `state` (per span of `spans`, the first being 1: the smoothed value
    /// and the remembered range), of which `folded` values came before, and returns how far
    /// beyond their ranges the smoothed values of the spans from index `first` on lie, in
    /// shares of each range's width (0 before `warmup` values). With `drift`, the longest span's
    /// runs beyond its range's ends are watched too (`watch`), `drifted` set when one alerts.
    /// `reach`, when given, is how far the first span's range may widen for this value.
    private static func fold(
        _ state: UnsafeMutablePointer<Double>, spans: [Double], scoringFrom first: Int, folded: Double, scores: Bool, value: Double,
        drift: UnsafeMutablePointer<Double>?, drifted: inout Bool, reach firstReach: Double? = nil
    ) -> Double {
        var excess = 0.0
        // Once scoring, the smoothed spans take the value bounded to a width beyond the value's
        // own range (span 1's), so that one sentinel is one novel value, not smoothed values
        // pulled away for a hundred samples. (Feeding them the outlier gate's output instead,
        // which holds a sentinel back, cost 1.5 to 3.5 points of NAB score: the gate holds
        // back some of a heavy-tailed series' usual values too.)
        let bounded = Self.bounded(value, range: state, folded: folded)
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
            // Once scoring, a range widens by at most its own width a sample: a far value the
            // outlier gate let through blunts its side of the range for a while without blinding
            // it (span 1 takes one the gate held back as `firstReach` says: observe).
            let bound = folded >= warmup && width > 0 ? width : .infinity
            let reach = i == 0 ? firstReach ?? bound : bound
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
        shape: UnsafePointer<Double>, targets k: Int
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
        func count(_ x: Double, below limit: Double) -> Bool { x >= 0 && x == x.rounded() && x < limit }
        for j in 0..<k {
            let h = shape + shapePerTarget * j
            guard count(h[0], below: 1e15), h[1].isFinite, h[1] >= 0, count(h[2], below: Double(shapeMemory) + 1),
                count(h[3], below: Double(shapeMemory)), count(h[4], below: 1e15),
                (5..<shapePerTarget).allSatisfy({ h[$0].isFinite })
            else { return false }
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
