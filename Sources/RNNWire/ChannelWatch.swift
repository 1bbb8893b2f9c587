// The per-channel half of a stream's per-sample policy (docs/protocol.md, "Missing and stuck
// channels"): a missing value of a vector sample is carried forward from the channel's previous
// accepted value, and a channel whose value stays exactly the same far longer than usual for it
// is reported as stuck. The daemon's workers, `rnnd replay` and the demo all apply it after
// `StreamPolicy`, so that a file replayed and the same samples sent to the daemon agree.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a stream remembers of each of its channels: the latest accepted value (carried into a
/// missing one), the missing values carried so far, and the run of identical values that tells a
/// stuck channel.
///
/// A missing value is NaN in the sample's buffer (a JSON `null`, a binary NaN, an empty CSV
/// cell). ``admit(_:)`` refuses a sample whose every value is missing
/// (`all_channels_missing`), and one with a missing value of a channel that has none to carry yet
/// (`nothing_to_carry`: the stream's first samples); otherwise it fills each missing value with the
/// channel's previous accepted one.
///
/// Stuck: per channel, the length of the current run of identical observed values (carried values
/// neither extend nor end it), and a memory of the longest run that ended without being stuck,
/// which decays by half every ``memoryHalfLife`` observed samples. A channel is stuck when its run
/// exceeds `max(minimumRun, factor × that memory)`, and recovers when its value changes; the run
/// of a stuck episode does not enter the memory. A channel is judged only once it has had
/// ``minimumHistory`` observed values and changed at least once: before, its usual runs are not
/// known (a quantised sensor's first long run would be called stuck). Reporting only: the values
/// learned from are the same.
///
/// Per sample, nothing allocates: every buffer is sized for the stream's width once.
public struct ChannelWatch: Sendable {
    /// A run must exceed this many samples to be stuck, whatever the channel's usual runs.
    public static let minimumRun = 30
    /// ... and this many times the channel's longest usual run.
    public static let factor: Float = 4
    /// Observed samples over which the memory of the longest usual run halves (30 days of
    /// 5-minute samples).
    public static let memoryHalfLife: Float = 8640
    /// Observed values a channel has before it can be stuck (a day of 5-minute samples).
    public static let minimumHistory = 288

    public let width: Int
    /// Per channel: the latest accepted value, NaN before the first.
    private var latest: [Float]
    /// Per channel: the current run of identical observed values, 0 before the first.
    private var run: [Int]
    /// Per channel: the decaying memory of the longest run that ended without being stuck.
    private var usual: [Float]
    /// Per channel: observed values, up to ``minimumHistory``.
    private var seen: [Int]
    private var stuckFlags: [Bool]
    /// Per channel: missing values carried forward, and stuck episodes begun.
    public private(set) var carried: [Int]
    public private(set) var stuckEpisodes: [Int]
    /// Missing values carried forward, over every channel.
    public private(set) var carriedTotal = 0
    private var missingList: [UInt16]
    private var missingCount = 0
    private var stuckList: [UInt16]
    private var stuckCount = 0
    private var becameList: [UInt16]
    private var becameCount = 0
    private var recoveredList: [UInt16]
    private var recoveredCount = 0
    private let decay: Float

    public init(width: Int) {
        precondition(width >= 1 && width <= Int(UInt16.max))
        self.width = width
        latest = Array(repeating: .nan, count: width)
        run = Array(repeating: 0, count: width)
        usual = Array(repeating: 0, count: width)
        seen = Array(repeating: 0, count: width)
        stuckFlags = Array(repeating: false, count: width)
        carried = Array(repeating: 0, count: width)
        stuckEpisodes = Array(repeating: 0, count: width)
        missingList = Array(repeating: 0, count: width)
        stuckList = Array(repeating: 0, count: width)
        becameList = Array(repeating: 0, count: width)
        recoveredList = Array(repeating: 0, count: width)
        decay = exp2f(-1 / Self.memoryHalfLife)
    }

    /// The channels carried forward in the latest accepted sample, in order.
    public var missing: ArraySlice<UInt16> { missingList[0..<missingCount] }
    /// The channels stuck now, in order.
    public var stuck: ArraySlice<UInt16> { stuckList[0..<stuckCount] }
    /// The channels that became stuck, and those that recovered, at the latest accepted sample.
    public var becameStuck: ArraySlice<UInt16> { becameList[0..<becameCount] }
    public var recovered: ArraySlice<UInt16> { recoveredList[0..<recoveredCount] }

    /// How long channel `j` has held its value, in observed samples.
    public func runLength(_ j: Int) -> Int { run[j] }

    /// Why the sample in `values` (``width`` values, NaN for a missing one) is refused, or nil
    /// when it is taken in: its missing values are then filled in place, and ``missing``,
    /// ``stuck``, ``becameStuck`` and ``recovered`` describe it. A refused sample changes nothing.
    public mutating func admit(_ values: UnsafeMutablePointer<Float>) -> StreamRejection? {
        var absent = 0, nothingToCarry = false
        for j in 0..<width where values[j].isNaN {
            absent += 1
            if latest[j].isNaN { nothingToCarry = true }
        }
        if absent == width { return .allChannelsMissing }
        if nothingToCarry { return .nothingToCarry }
        missingCount = 0
        becameCount = 0
        recoveredCount = 0
        for j in 0..<width {
            let x = values[j]
            if x.isNaN {
                values[j] = latest[j]
                carried[j] += 1
                carriedTotal += 1
                missingList[missingCount] = UInt16(j)
                missingCount += 1
                continue
            }
            usual[j] *= decay
            if seen[j] < Self.minimumHistory { seen[j] += 1 }
            if x == latest[j] {
                run[j] += 1
                let limit = max(Float(Self.minimumRun), Self.factor * usual[j])
                if !stuckFlags[j], seen[j] >= Self.minimumHistory, usual[j] > 0, Float(run[j]) > limit {
                    stuckFlags[j] = true
                    stuckEpisodes[j] += 1
                    becameList[becameCount] = UInt16(j)
                    becameCount += 1
                }
            } else {
                if stuckFlags[j] {
                    stuckFlags[j] = false
                    recoveredList[recoveredCount] = UInt16(j)
                    recoveredCount += 1
                } else if run[j] > 0 {
                    usual[j] = max(usual[j], Float(run[j]))
                }
                run[j] = 1
                latest[j] = x
            }
        }
        if becameCount > 0 || recoveredCount > 0 {
            stuckCount = 0
            for j in 0..<width where stuckFlags[j] {
                stuckList[stuckCount] = UInt16(j)
                stuckCount += 1
            }
        }
        return nil
    }
}
