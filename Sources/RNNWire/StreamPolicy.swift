// The one per-sample policy of a stream (docs/protocol.md, "Refused input" and "Clock faults"): which decoded
// samples a stream learns from. The daemon's workers, `rnnd replay` and the demo all apply it, so
// that a file replayed and the same samples sent to the daemon are refused alike.

/// Why a decoded sample was not learned from, decided per stream (docs/protocol.md).
public enum StreamRejection: String, CaseIterable, Sendable, Error {
    /// The sample's width differs from the width the stream started with.
    case widthChanged = "width_changed"
    /// Its timestamp is earlier than the stream's latest.
    case outOfOrder = "out_of_order"
    /// Its timestamp equals the stream's latest.
    case duplicateTimestamp = "duplicate_timestamp"
    /// Its timestamp is more than the allowed skew ahead of the reference clock.
    case futureTime = "future_time"
    /// A new stream while `max_streams` streams exist.
    case tooManyStreams = "too_many_streams"
    /// A stream whose stored record has another model shape than the daemon's configuration
    /// gives it, kept unloaded (`on_model_change = keep`).
    case modelChanged = "model_changed"
    /// Every value of the sample is missing (``ChannelWatch``).
    case allChannelsMissing = "all_channels_missing"
    /// A value is missing of a channel that has no accepted value yet to carry forward
    /// (``ChannelWatch``).
    case nothingToCarry = "nothing_to_carry"
}

/// How a stream treats its samples' clock: how far ahead of a reference clock a time may be, and
/// after how many samples a clock set back is believed (docs/protocol.md, "Clock faults").
public struct ClockPolicy: Sendable, Equatable {
    /// Seconds a sample's time may lie ahead of the reference clock; beyond, `future_time`.
    /// 0 turns the check off.
    public var maxSkew: Double
    /// Consecutive `out_of_order` samples, in increasing time order among themselves, after
    /// which the last of them is accepted as the stream's new clock. 0 never accepts one.
    public var resetAfter: Int

    /// One hour ahead at most; a clock set back is believed at its third sample.
    public static let standard = ClockPolicy(maxSkew: 3600, resetAfter: 3)

    public init(maxSkew: Double, resetAfter: Int) {
        self.maxSkew = maxSkew
        self.resetAfter = resetAfter
    }
}

/// A stream's per-sample policy and what it remembers: the width the stream started with, the
/// time of its latest accepted sample, and the samples just refused as out of order. Checks, in
/// this order: the width, then the time:
///
/// - a time more than `clock.maxSkew` ahead of the reference clock (`now`) is `future_time`, and
///   moves nothing, so that no single sample can lock a stream;
/// - a time equal to the latest is `duplicate_timestamp`;
/// - a time earlier than the latest is `out_of_order`, unless it is the `clock.resetAfter`-th of
///   consecutive `out_of_order` samples whose times increase strictly: then the clock was set
///   back, the sample is accepted and its time becomes the latest (a clock reset);
/// - samples without a time pass, and do not change the latest time.
///
/// The stream's ``ChannelWatch`` (missing values) comes next: callers ``check`` first, then let
/// the watch judge the channels, and ``admit`` only a sample both accept, so that a sample the
/// watch refuses moves nothing here.
///
/// A value check comes first, before a sample reaches a stream: the daemon's decoder refuses a
/// value that is not finite as a float32 (`non_finite_value`), and samples read from files go
/// through ``valueProblem(_:)`` for the same rule.
public struct StreamPolicy: Sendable, Equatable {
    /// The number of values each sample of the stream carries.
    public let width: Int
    /// The time of the latest sample accepted, if any had one.
    public private(set) var latestTime: Double?
    public let clock: ClockPolicy
    /// The consecutive samples refused as out of order whose times increase strictly: how many,
    /// and the time of the latest of them. Any other sample starts the count again.
    private var setBack = 0
    private var setBackTime = 0.0

    public init(width: Int, latestTime: Double? = nil, clock: ClockPolicy = .standard) {
        self.width = width
        self.latestTime = latestTime
        self.clock = clock
    }

    /// What `admit` decided about a sample.
    public enum Verdict: Equatable, Sendable {
        /// Learned from.
        case accepted
        /// Learned from, as the first sample of a clock set back: its time is the new latest.
        case clockReset
        /// Not learned from, for this reason.
        case refused(StreamRejection)

        /// The refusal, or nil when the sample is learned from.
        public var refusal: StreamRejection? {
            if case .refused(let r) = self { r } else { nil }
        }
    }

    /// What `admit` would decide for a sample of `width` values at `time`, the reference clock
    /// reading `now` (Unix seconds; nil: no future check). Changes nothing.
    public func check(width: Int, time: Double?, now: Double? = nil) -> Verdict {
        if width != self.width { return .refused(.widthChanged) }
        guard let t = time else { return .accepted }
        if clock.maxSkew > 0, let now, t - now > clock.maxSkew { return .refused(.futureTime) }
        guard let latest = latestTime else { return .accepted }
        if t == latest { return .refused(.duplicateTimestamp) }
        if t > latest { return .accepted }
        let run = setBack > 0 && t > setBackTime ? setBack + 1 : 1
        return clock.resetAfter > 0 && run >= clock.resetAfter ? .clockReset : .refused(.outOfOrder)
    }

    /// `check`, then takes in what it decided: an accepted sample's time becomes the latest, an
    /// `out_of_order` one counts towards a clock reset, any other sample ends such a run.
    public mutating func admit(width: Int, time: Double?, now: Double? = nil) -> Verdict {
        let verdict = check(width: width, time: time, now: now)
        if verdict == .refused(.outOfOrder), let t = time {
            setBack = setBack > 0 && t > setBackTime ? setBack + 1 : 1
            setBackTime = t
            return verdict
        }
        setBack = 0
        if verdict.refusal == nil, let time { latestTime = time }
        return verdict
    }

    /// The whole per-sample order of the daemon's workers, `rnnd replay` and the demo: ``check``
    /// the width and the time, then let `channels` judge (and fill) the sample's `values` (its
    /// width, already in the caller's buffer), and ``admit(width:time:now:)`` only a sample both
    /// accept, so that a sample refused for its channels moves neither the latest time nor a
    /// clock-reset run. A sample refused for its time still counts towards a reset.
    public mutating func admit(
        width: Int, time: Double?, now: Double?, values: UnsafeMutablePointer<Float>, channels: inout ChannelWatch
    ) -> Verdict {
        if check(width: width, time: time, now: now).refusal == nil, let reason = channels.admit(values) {
            return .refused(reason)
        }
        return admit(width: width, time: time, now: now)
    }

    /// The value check for samples that did not come through the decoder (files): a value that is
    /// infinite once rounded to float32, as the decoder refuses it. NaN is a missing value, which
    /// ``ChannelWatch`` deals with, as the decoder passes a JSON `null` of a vector on.
    public static func valueProblem(_ values: some Sequence<Double>) -> SampleRejection? {
        values.contains { Float($0).isInfinite } ? .nonFiniteValue : nil
    }
}

extension StreamPolicy {
    /// The reference clock of a file's row (`rnnd replay`): the median of its time and its
    /// neighbours' (`previous`, `next`: the rows before and after it, when they exist), the lower
    /// of the two at the file's first and last rows. One far-future row is then ahead of its
    /// reference, while a row after a real gap is not (the rows after it go on from its time).
    public static func fileClock(previous: Double?, time: Double, next: Double?) -> Double {
        switch (previous, next) {
        case let (p?, n?): max(min(p, time), min(max(p, time), n))
        case let (p?, nil): min(p, time)
        case let (nil, n?): min(time, n)
        case (nil, nil): time
        }
    }
}
