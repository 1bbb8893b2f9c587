// The anomaly score: how unusual a sample's step-1 error is against the stream's own history of
// errors, 0 (usual) to 1 (a departure), per target and the largest over the targets. It reads
// the conformal band (ConformalBands.swift, Gibbs and Candès 2021) for the error's scale, and
// follows the idea of HTM's anomaly likelihood (Ahmad, Lavin, Purdy, Agha, "Unsupervised
// real-time anomaly detection for streaming data", Neurocomputing 262, 2017, section 4.3): a
// short-term mean of a raw score judged against the long-term distribution of that mean, so
// that a noisy stream's usual misses do not alarm and a quiet stream's first real departure
// does. The constants were chosen on the NAB corpus (docs/anomalies.md, bench/nab.sh);
// docs/numerics.md, "Anomaly score", is the contract.

import RealModule

/// The anomaly score's state: a view over its regions of the forecaster's state buffer.
/// `latest` is the latest sample's combined score (NaN: none); `base` holds the samples left
/// in the quiet period after an alert, then per target its latest score and its statistics.
struct AnomalyScore {
    let latest: UnsafeMutablePointer<Double>
    let base: UnsafeMutablePointer<Double>
    let targets: Int

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
    /// The tail probability `p` that scores 1: the score is `-log10(p) / 12`.
    static let decades = 12.0
    /// A combined score at or above this is an alert; the next `quietSamples` samples score 0,
    /// so that one incident is one alert. The recommended alert threshold (docs/anomalies.md) is
    /// at or above it.
    static let alertLevel = 0.5
    static let quietSamples = 100

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
        latest.pointee = .nan
        base.update(repeating: 0, count: Self.historyCount(targets: targets))
    }

    /// No score for the sample being scored (yet).
    func clear() { latest.pointee = .nan }

    /// Folds target `j`'s step-1 `error` (absolute) into its statistics and returns its score:
    /// nil without a band (`halfWidth` NaN). `spread` is the target's standard deviation (0 when
    /// unknown).
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
            let t = (m - mean) / variance.squareRoot()   // +inf when the variance is 0
            let tail = 0.5 * Double.erfc(t / 2.0.squareRoot())
            score = tail > 0 ? min(1, -Double.log10(tail) / Self.decades) : 1
        }
        let a = max(1 / (folded + 1), 1 / Self.memory), d = m - mean
        s[1 + Self.shortRun] = mean + a * d
        s[2 + Self.shortRun] = (1 - a) * (variance + a * d * d)
        s[3 + Self.shortRun] = folded + 1
        s[0] = score
        return score
    }

    /// Publishes the combined score of the sample being scored: the largest of the targets'
    /// `scores` (nil: unknown, not reported while `known` is false), 0 during the quiet period
    /// after an alert, which the sample starts when it reaches `alertLevel`.
    func publish(largest: Double?, known: Bool) {
        guard known, let largest else { return }
        var score = largest
        if quiet.pointee > 0 {
            quiet.pointee -= 1
            score = 0
            for j in 0..<targets { target(j)[0] = 0 }
        } else if score >= Self.alertLevel {
            quiet.pointee = Double(Self.quietSamples)
        }
        latest.pointee = score
    }

    /// Whether a saved state's numbers can be this part's.
    static func isPlausible(_ base: UnsafePointer<Double>, targets k: Int) -> Bool {
        guard base[0] >= 0, base[0] <= Double(quietSamples) else { return false }
        for j in 0..<k {
            let s = base + 1 + perTarget * j
            guard (0...1).contains(s[0]), s[2 + shortRun] >= 0, s[3 + shortRun] >= 0, s[1 + shortRun].isFinite else { return false }
        }
        return true
    }
}
