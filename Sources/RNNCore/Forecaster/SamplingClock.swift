// The stream's own clock: its usual sampling interval, estimated online from the times of its
// samples, and the gaps and clock jumps that start a new segment of the stream. docs/numerics.md,
// "Gaps and clock jumps".
//
// The estimate is a running mean of the intervals between consecutive samples in which each
// interval counts only up to twice the estimate and at least half of it, so that a gap of a day in
// a stream of 5-minute samples moves it by at most 5% of one interval, while a lasting change of
// the sampling rate is adopted within some tens of samples.

/// The sampling interval of a stream and its latest time. A view over its region of the
/// forecaster's state buffer: the latest sample's time (NaN: none yet), the interval estimate in
/// seconds (0: none yet), and the intervals folded in so far.
struct SamplingClock {
    let base: UnsafeMutablePointer<Double>
    static let count = 3
    private static let latest = 0, interval = 1, intervals = 2
    /// The weight of the newest interval, after the first few (a plain mean until then).
    static let rate = 0.05
    /// An interval counts only within [estimate / bound, estimate · bound].
    static let bound = 2.0
    /// A step forward of more than this many usual intervals is a gap.
    static let gapFactor = 10.0
    /// Intervals needed before gaps are told apart.
    static let warmup = 8

    /// What a new sample's time means for the stream.
    enum Step: Equatable {
        /// The first sample with a time, or a sample without one: nothing to compare.
        case unknown
        /// The next sample of the stream, about one usual interval after the latest.
        case regular
        /// A step forward of more than `gapFactor` usual intervals.
        case gap
        /// A time at or before the latest (a clock set back, or a replayed stretch).
        case backwards
    }

    func start() {
        base[Self.latest] = .nan
        base[Self.interval] = 0
        base[Self.intervals] = 0
    }

    /// The usual interval in seconds, nil before it is estimated.
    var interval: Double? {
        base[Self.intervals] >= 1 && base[Self.interval] > 0 ? base[Self.interval] : nil
    }

    /// Takes in a sample's time: what it means, then the estimate moves (only on a regular step).
    func observe(_ time: Double?) -> Step {
        guard let t = time else { return .unknown }
        let previous = base[Self.latest]
        base[Self.latest] = t
        guard !previous.isNaN else { return .unknown }
        let dt = t - previous
        if dt <= 0 { return .backwards }
        let estimate = base[Self.interval], n = base[Self.intervals]
        if n >= Double(Self.warmup), dt > Self.gapFactor * estimate { return .gap }
        let counted = estimate > 0 ? min(max(dt, estimate / Self.bound), estimate * Self.bound) : dt
        base[Self.intervals] = n + 1
        base[Self.interval] = estimate + max(1 / (n + 1), Self.rate) * (counted - estimate)
        return .regular
    }

    /// Whether a saved clock region can be continued from.
    static func isPlausible(_ base: UnsafePointer<Double>) -> Bool {
        base[interval] >= 0 && base[interval].isFinite && base[intervals] >= 0 && !base[latest].isInfinite
    }
}
