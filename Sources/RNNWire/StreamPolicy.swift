// The one per-sample policy of a stream (docs/protocol.md, "What is refused"): which decoded
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

/// A stream's per-sample policy and what it remembers: the width the stream started with and the
/// time of its latest accepted sample. Checks, in this order: the width, then the time (a time
/// equal to the latest is `duplicate_timestamp`, an earlier one `out_of_order`; samples without
/// a time pass). The stream's ``ChannelWatch`` (missing values) comes next, between ``check`` and
/// ``accept(time:)``. A value check comes first, before a sample reaches a stream: the daemon's
/// decoder refuses a value that is infinite as a float32 (`non_finite_value`), and samples read
/// from files go through ``valueProblem(_:)`` for the same rule.
public struct StreamPolicy: Sendable, Equatable {
    /// The number of values each sample of the stream carries.
    public let width: Int
    /// The time of the latest sample accepted, if any had one.
    public private(set) var latestTime: Double?

    public init(width: Int, latestTime: Double? = nil) {
        self.width = width
        self.latestTime = latestTime
    }

    /// Why a sample of `width` values at `time` is refused, or nil to learn from it. Changes nothing.
    public func check(width: Int, time: Double?) -> StreamRejection? {
        if width != self.width { return .widthChanged }
        if let t = time, let latest = latestTime {
            if t == latest { return .duplicateTimestamp }
            if t < latest { return .outOfOrder }
        }
        return nil
    }

    /// Takes in a sample that `check` accepted: its time becomes the latest.
    public mutating func accept(time: Double?) {
        if let time { latestTime = time }
    }

    /// `check`, then `accept` when it passes: the refusal, or nil when the sample was taken in.
    public mutating func admit(width: Int, time: Double?) -> StreamRejection? {
        if let refusal = check(width: width, time: time) { return refusal }
        accept(time: time)
        return nil
    }

    /// The value check for samples that did not come through the decoder (files): a value that is
    /// infinite once rounded to float32, as the decoder refuses it. NaN is a missing value, which
    /// ``ChannelWatch`` deals with, as the decoder passes a JSON `null` of a vector on.
    public static func valueProblem(_ values: some Sequence<Double>) -> SampleRejection? {
        values.contains { Float($0).isInfinite } ? .nonFiniteValue : nil
    }
}
