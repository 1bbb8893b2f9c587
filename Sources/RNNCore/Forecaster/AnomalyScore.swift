// The anomaly score: how unusual a sample is against the stream's own history, 0 (usual) to 1
// (a departure), per target and the largest over the targets. Two halves, the larger counts:
// - the surprise: how unusual the sample's step-1 error is against the target's history of
//   errors. It reads the conformal band (ConformalBands.swift, Gibbs and Candès 2021) for the
//   error's scale, and follows the idea of HTM's anomaly likelihood (Ahmad, Lavin, Purdy, Agha,
//   "Unsupervised real-time anomaly detection for streaming data", Neurocomputing 262, 2017,
//   section 4.3): a short-term mean of a raw score judged against the long-term distribution of
//   that mean, so that a noisy stream's usual misses do not alarm and a quiet stream's first
//   real departure does;
// - the novelty (NoveltyScore.swift): the value outside every value the target has taken.
// Each half, once it alerts, is quiet for 100 samples; an alert of the novelty's rank quiets
// both (one incident, one alert). A kind of miss that recurs is routine: once a target's
// surprise has alerted `routineAlerts` times within about `memory` samples (a counter reset
// every midnight, which the step-1 forecast cannot foresee), its further surprises stay below
// the alert level until it calms. A far value the outlier gate held back counts among those
// alerts too, and once routine the novelty's range takes it (NoveltyScore.observe).
// The constants were chosen on the NAB corpus (docs/anomalies.md, bench/nab.sh);
// docs/numerics.md, "Anomaly score", is the contract.

import RealModule

/// The anomaly score's state: a view over its regions of the forecaster's state buffer.
/// `latest` is the latest sample's combined score (NaN: none); `base` holds the samples left
/// in the surprise's quiet period, then per target its latest score and the surprise's
/// statistics; `routine` per target its recent surprise alerts (record format 10 on);
/// `novelty` is the other half.
struct AnomalyScore {
    let latest: UnsafeMutablePointer<Double>
    let base: UnsafeMutablePointer<Double>
    let routine: UnsafeMutablePointer<Double>
    let novelty: NoveltyScore
    let targets: Int

    init(latest: UnsafeMutablePointer<Double>, base: UnsafeMutablePointer<Double>, routine: UnsafeMutablePointer<Double>, novelty: NoveltyScore) {
        self.latest = latest
        self.base = base
        self.routine = routine
        self.novelty = novelty
        self.targets = novelty.targets
    }

    static let count = 1
    /// Numbers of the region `base` points at.
    static func historyCount(targets k: Int) -> Int { 1 + perTarget * k }
    /// Per target: latest score, the latest `shortRun` raw scores (a ring), the long-term mean
    /// and variance of their mean, and how many were folded in.
    static let perTarget = 4 + shortRun

    /// Samples a stream sees before its score is reported: bands need that long to settle.
    static let warmup = 100
    /// A target's error scale is at least this share of its values' standard deviation (the
    /// normaliser's), so that a nearly perfectly predicted series (a band of almost zero width)
    /// does not alarm on rounding noise.
    static let spreadFloor = 0.05
    /// Raw scores averaged: a departure that lasts scores higher than one wild sample.
    static let shortRun = 3
    /// The long-term statistics' memory in samples: weight `max(1/n, 1/memory)`.
    static let memory = 2000.0
    /// Short-term means folded into a target's statistics before it scores.
    static let targetWarmup = 100
    /// The long-term standard deviation of the short means is taken as at least this: a target
    /// whose misses never varied (a noiseless or quantised series, every miss inside the band)
    /// would otherwise score 1 on its first miss by a hair. With it, a single miss alerts
    /// (p ≤ 10⁻¹²) from about 3.5 times the band's half-width. HTM's likelihood bounds its
    /// variance from below for the same reason (nupic's anomaly_likelihood.py, `estimateNormal`).
    /// (On NAB, 0.05 to 0.07 scored within 0.15 of each other and of no floor, 0.06 a little
    /// above it on both halves of the corpus; 0.08 and more lower: docs/anomalies.md.)
    static let deviationFloor = 0.06
    /// The surprise of a tail probability `p`, with `L = -log10(p)`: `0.9 L / decades` below
    /// `decades`, then from `NoveltyScore.floor` (ranked with the novelties: as certain a
    /// departure) to 1 at twice `decades`.
    static let decades = 24.0
    /// A surprise at or above this (p ≤ 10⁻¹²) starts a quiet period: the next `quietSamples`
    /// samples' surprises score 0, so that one incident is one alert (the novelty has its own).
    static let surpriseAlertLevel = 0.45
    static let quietSamples = 100
    /// A target's surprise alerts (each a surprise of at least `surpriseAlertLevel` outside the
    /// quiet period, and each far value the outlier gate held back: NoveltyScore.observe; the
    /// count kept at most `memory`), forgotten at `1/memory` a sample, beyond which a further
    /// one is routine and scores at most `routineCeiling`: below the alert level, so that it
    /// starts no quiet period either. A counter reset every midnight of five-minute samples
    /// alerts on its first five midnights (the count forgotten a little between them), then no
    /// more while it recurs; a stream whose misses calm down alerts again once the count has
    /// fallen below `routineAlerts - 1`. (On NAB, 4 scored best of 2 to 8, and 4 to 6 gained on
    /// both halves of the corpus: docs/anomalies.md.)
    static let routineAlerts = 4.0
    static let routineCeiling = 0.44
    /// The alert level of the documented ticket rule and of what `rnnd replay --plot` marks: a
    /// novelty, or a surprise with p ≤ 10⁻¹³·³. NAB's threshold optimisation picks about 0.85
    /// on the low-false-positive profile, 0.58 on the standard and low-false-negative ones; the
    /// page rule alerts above 0.8, the metrics' bound below it (docs/anomalies.md).
    static let alertLevel = 0.5

    /// The surprise for a tail probability of `10^-l` (docs/numerics.md).
    static func surprise(decades l: Double) -> Double {
        l < decades ? 0.9 * l / decades : NoveltyScore.floor + (1 - NoveltyScore.floor) * min(1, (l - decades) / decades)
    }

    private var quiet: UnsafeMutablePointer<Double> { base }
    private func target(_ j: Int) -> UnsafeMutablePointer<Double> { base + 1 + Self.perTarget * j }

    /// The latest sample's score; nil when it has none.
    var value: Double? {
        let a = latest.pointee
        return a.isNaN ? nil : a
    }

    /// The latest sample's score of target `j` (same availability as `value`).
    func value(target j: Int) -> Double? { value == nil ? nil : target(j)[0] }

    /// A new stream's: no score, nothing learned.
    func start() {
        startSurprise()
        routine.update(repeating: 0, count: targets)
        novelty.start()
    }

    /// No score, and the surprise's statistics as a new stream's (the novelty as it is).
    func startSurprise() {
        latest.pointee = .nan
        base.update(repeating: 0, count: Self.historyCount(targets: targets))
    }

    /// No score for the sample being scored (yet).
    func clear() { latest.pointee = .nan }

    /// Target `j`'s novelty, from every sample's value (as it came, and as learned from), taken
    /// at the time of `bins` (NoveltyScore.observe).
    func observe(target j: Int, value: Double, learned: Double, at bins: SeasonalExpert.Bins?, interval: Double?) {
        novelty.observe(target: j, value: value, learned: learned, at: bins, interval: interval, routine: routine + j)
    }

    /// Folds target `j`'s step-1 `error` (absolute) into its statistics and returns its
    /// surprise: nil without a band (`halfWidth` NaN). `spread` is the target's standard
    /// deviation (0 when unknown).
    @discardableResult
    func observe(target j: Int, error: Double, halfWidth: Double, spread: Double) -> Double? {
        guard !halfWidth.isNaN, error.isFinite else { return nil }
        let s = target(j)
        let scale = max(halfWidth, Self.spreadFloor * spread, .leastNormalMagnitude)
        let raw = Double.log(max(error / scale, 1))
        let folded = s[3 + Self.shortRun]
        let ring = s + 1
        ring[Int(folded) % Self.shortRun] = raw
        let inRing = min(Int(folded) + 1, Self.shortRun)
        var sum = 0.0
        for i in 0..<inRing { sum += ring[i] }
        let m = sum / Double(inRing)
        let mean = s[1 + Self.shortRun], variance = s[2 + Self.shortRun]
        var score = 0.0
        if folded >= Double(Self.targetWarmup), m > mean {
            let t = (m - mean) / max(variance, Self.deviationFloor * Self.deviationFloor).squareRoot()
            let tail = 0.5 * Double.erfc(t / 2.0.squareRoot())
            score = tail > 0 ? Self.surprise(decades: -Double.log10(tail)) : 1
        }
        let a = max(1 / (folded + 1), 1 / Self.memory), d = m - mean
        s[1 + Self.shortRun] = mean + a * d
        s[2 + Self.shortRun] = (1 - a) * (variance + a * d * d)
        s[3 + Self.shortRun] = folded + 1
        s[0] = score
        return score
    }

    /// Publishes the score of the sample being scored (not while `known` is false: then it has
    /// none): per target the larger of its surprise (at most `routineCeiling` once routine) and
    /// its novelty, each 0 during its own quiet period, and the largest over the targets; a
    /// score of `NoveltyScore.floor` or more starts both quiet periods.
    func publish(known: Bool) {
        guard known else { return }
        novelty.quieten()
        var surprise = 0.0
        for j in 0..<targets {
            routine[j] *= 1 - 1 / Self.memory
            let s = target(j)
            if quiet.pointee == 0, s[0] >= Self.surpriseAlertLevel {
                routine[j] = min(routine[j] + 1, Self.memory)
                if routine[j] > Self.routineAlerts { s[0] = min(s[0], Self.routineCeiling) }
            }
            surprise = max(surprise, s[0])
        }
        if quiet.pointee > 0 {
            quiet.pointee -= 1
            for j in 0..<targets { target(j)[0] = 0 }
        } else if surprise >= Self.surpriseAlertLevel {
            quiet.pointee = Double(Self.quietSamples)
        }
        var score = 0.0
        for j in 0..<targets {
            let s = target(j)
            s[0] = max(s[0], novelty.value(target: j))
            score = max(score, s[0])
        }
        latest.pointee = score
        // One incident, one alert, across the halves too: an alert of the novelty's rank (a
        // novelty, or a surprise beyond 10⁻²⁴) starts both quiet periods, so that a departure
        // the novelty has flagged does not page again as a surprise a few samples later, nor the
        // other way round. (A lesser surprise leaves the novelty free: on NAB, quieting both
        // from 0.45 cost 3.7 points.)
        if score >= NoveltyScore.floor {
            quiet.pointee = Double(Self.quietSamples)
            novelty.startQuiet()
        }
    }

    /// Whether a saved state's numbers can be this part's.
    static func isPlausible(_ base: UnsafePointer<Double>, routine: UnsafePointer<Double>, targets k: Int) -> Bool {
        guard base[0] >= 0, base[0] <= Double(quietSamples), (0..<k).allSatisfy({ routine[$0] >= 0 && routine[$0] <= memory })
        else { return false }
        for j in 0..<k {
            let s = base + 1 + perTarget * j
            guard (0...1).contains(s[0]), s[2 + shortRun] >= 0, s[3 + shortRun] >= 0, s[1 + shortRun].isFinite else { return false }
        }
        return true
    }
}
