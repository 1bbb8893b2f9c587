import RNNWire
import Testing

/// The one per-sample stream policy that the daemon's workers, replay and the demo apply.
@Suite(.timeLimit(.minutes(1)))
struct StreamPolicyTests {
    @Test func theWidthIsCheckedBeforeTheTime() {
        let policy = StreamPolicy(width: 2, latestTime: 100)
        #expect(policy.check(width: 3, time: 50) == .refused(.widthChanged))
        #expect(policy.check(width: 3, time: 1e12, now: 100) == .refused(.widthChanged))
        #expect(policy.check(width: 2, time: 50) == .refused(.outOfOrder))
        #expect(policy.check(width: 2, time: 100) == .refused(.duplicateTimestamp))
        #expect(policy.check(width: 2, time: 101) == .accepted)
        #expect(policy.check(width: 2, time: nil) == .accepted, "a sample without a time passes")
        #expect(policy.check(width: 2, time: nil, now: 0) == .accepted, "a sample without a time is never in the future")
    }

    @Test func onlyAnAcceptedSampleMovesTheLatestTime() {
        var policy = StreamPolicy(width: 1)
        #expect(policy.admit(width: 1, time: 10) == .accepted)
        #expect(policy.latestTime == 10)
        #expect(policy.admit(width: 1, time: 5) == .refused(.outOfOrder))
        #expect(policy.latestTime == 10, "a refused sample leaves the latest time")
        #expect(policy.admit(width: 2, time: 20) == .refused(.widthChanged))
        #expect(policy.latestTime == 10)
        #expect(policy.admit(width: 1, time: nil) == .accepted)
        #expect(policy.latestTime == 10, "a sample without a time keeps the latest time")
        #expect(policy.admit(width: 1, time: 11) == .accepted)
        #expect(policy.latestTime == 11)
    }

    @Test func aTimeFarAheadOfTheReferenceIsRefusedAndMovesNothing() {
        var policy = StreamPolicy(width: 1, clock: ClockPolicy(maxSkew: 3600, resetAfter: 3))
        let now = 1_700_000_000.0
        #expect(policy.admit(width: 1, time: now - 300, now: now) == .accepted)
        #expect(policy.admit(width: 1, time: now + 3600, now: now) == .accepted, "exactly the skew ahead passes")
        #expect(policy.admit(width: 1, time: now + 3601, now: now) == .refused(.futureTime))
        #expect(policy.latestTime == now + 3600)
        let year2100 = 4_102_444_800.0
        #expect(policy.admit(width: 1, time: year2100, now: now) == .refused(.futureTime))
        #expect(policy.latestTime == now + 3600, "a future time does not become the latest")
        #expect(policy.admit(width: 1, time: now + 3700, now: now + 200) == .accepted, "the next sample on time is learned")
        #expect(policy.check(width: 1, time: year2100) == .accepted, "without a reference clock there is no future check")
        let off = StreamPolicy(width: 1, clock: ClockPolicy(maxSkew: 0, resetAfter: 3))
        #expect(off.check(width: 1, time: year2100, now: now) == .accepted, "max skew 0: no limit")
    }

    @Test func aClockSetBackIsAcceptedAtTheResetAfterthSampleInIncreasingOrder() {
        // 5-minute samples; the clock goes back an hour (a daylight-saving fall-back).
        var policy = StreamPolicy(width: 1, clock: ClockPolicy(maxSkew: 3600, resetAfter: 3))
        let t0 = 1_700_000_000.0
        for k in 0..<12 { #expect(policy.admit(width: 1, time: t0 + 300 * Double(k)) == .accepted) }
        let back = t0 + 300 * 12 - 3600
        #expect(policy.admit(width: 1, time: back) == .refused(.outOfOrder))
        #expect(policy.admit(width: 1, time: back + 300) == .refused(.outOfOrder))
        #expect(policy.latestTime == t0 + 300 * 11)
        #expect(policy.admit(width: 1, time: back + 600) == .clockReset, "the third in a row is the new clock")
        #expect(policy.latestTime == back + 600)
        #expect(policy.admit(width: 1, time: back + 900) == .accepted)
        #expect(policy.admit(width: 1, time: back + 600) == .refused(.outOfOrder), "after a reset the count starts again")
    }

    @Test func onlyAnUnbrokenIncreasingRunOfOutOfOrderSamplesResetsTheClock() {
        var policy = StreamPolicy(width: 1, latestTime: 1000, clock: ClockPolicy(maxSkew: 3600, resetAfter: 3))
        // Not increasing among themselves: the run starts again at each step down.
        #expect(policy.admit(width: 1, time: 500) == .refused(.outOfOrder))
        #expect(policy.admit(width: 1, time: 400) == .refused(.outOfOrder))
        #expect(policy.admit(width: 1, time: 400) == .refused(.outOfOrder), "equal is not increasing")
        #expect(policy.admit(width: 1, time: 450) == .refused(.outOfOrder))
        #expect(policy.admit(width: 1, time: 460) == .clockReset, "400, 450, 460: three increasing")
        // A duplicate of the latest, a sample of another width or a future one in between: counted afresh.
        policy = StreamPolicy(width: 1, latestTime: 1000, clock: ClockPolicy(maxSkew: 3600, resetAfter: 3))
        #expect(policy.admit(width: 1, time: 500) == .refused(.outOfOrder))
        #expect(policy.admit(width: 1, time: 600) == .refused(.outOfOrder))
        #expect(policy.admit(width: 1, time: 1000) == .refused(.duplicateTimestamp))
        #expect(policy.admit(width: 1, time: 700) == .refused(.outOfOrder))
        #expect(policy.admit(width: 2, time: 800) == .refused(.widthChanged))
        #expect(policy.admit(width: 1, time: 900) == .refused(.outOfOrder))
        #expect(policy.admit(width: 1, time: 910, now: -10_000) == .refused(.futureTime), "a run in the future does not reset")
        #expect(policy.admit(width: 1, time: 920) == .refused(.outOfOrder))
        #expect(policy.admit(width: 1, time: nil) == .accepted)
        #expect(policy.admit(width: 1, time: 930) == .refused(.outOfOrder))
        #expect(policy.admit(width: 1, time: 940) == .refused(.outOfOrder))
        #expect(policy.latestTime == 1000)
        #expect(policy.admit(width: 1, time: 950) == .clockReset)
        #expect(policy.latestTime == 950)
    }

    @Test func repeatedTimestampsAreOneRefusalEach() {
        // Every timestamp sent twice (a resend, or an hour repeated by a clock in local time).
        var policy = StreamPolicy(width: 1)
        var refusals = 0
        for k in 0..<20 {
            for _ in 0..<2 where policy.admit(width: 1, time: 300 * Double(k)).refusal != nil { refusals += 1 }
        }
        #expect(refusals == 20)
        #expect(policy.latestTime == 5700)
    }

    @Test(arguments: [0, 1, 5])
    func theResetCountIsTheSetting(resetAfter: Int) {
        var policy = StreamPolicy(width: 1, latestTime: 10_000, clock: ClockPolicy(maxSkew: 3600, resetAfter: resetAfter))
        var refused = 0
        for k in 0..<10 {
            if policy.admit(width: 1, time: Double(k)) == .clockReset { break }
            refused += 1
        }
        #expect(refused == (resetAfter == 0 ? 10 : resetAfter - 1), "0 never resets; N costs N - 1 refusals")
    }

    @Test func aLatestTimeFarInTheFutureIsLeftAfterTheResetCount() {
        // A record written before the future check: its latest time is in 2100.
        var policy = StreamPolicy(width: 1, latestTime: 4_102_444_800)
        let now = 1_700_000_000.0
        let verdicts = (0..<4).map { policy.admit(width: 1, time: now + 300 * Double($0), now: now + 300 * Double($0)) }
        #expect(verdicts == [.refused(.outOfOrder), .refused(.outOfOrder), .clockReset, .accepted])
    }

    @Test func theFileClockIsTheMedianOfARowAndItsNeighbours() {
        #expect(StreamPolicy.fileClock(previous: 100, time: 200, next: 300) == 200)
        #expect(StreamPolicy.fileClock(previous: 100, time: 9e9, next: 300) == 300, "a far-future row is ahead of its reference")
        #expect(StreamPolicy.fileClock(previous: 9e9, time: 300, next: 400) == 400)
        #expect(StreamPolicy.fileClock(previous: 100, time: 90_000, next: 90_300) == 90_000, "a gap: the rows after go on from it")
        #expect(StreamPolicy.fileClock(previous: nil, time: 9e9, next: 300) == 300, "the first row: the lower of two")
        #expect(StreamPolicy.fileClock(previous: 300, time: 9e9, next: nil) == 300, "the last row: the lower of two")
        #expect(StreamPolicy.fileClock(previous: nil, time: 5, next: nil) == 5)
    }

    @Test func valuesAreCheckedAsTheDecoderChecksThem() {
        #expect(StreamPolicy.valueProblem([1, 2, -3e38]) == nil)
        #expect(StreamPolicy.valueProblem([1, .nan]) == nil, "a missing value, which ChannelWatch deals with")
        #expect(StreamPolicy.valueProblem([.infinity]) == .nonFiniteValue)
        #expect(StreamPolicy.valueProblem([1e39]) == .nonFiniteValue, "beyond float32: infinite once rounded, as the decoder refuses it")
    }

    @Test func aSampleItsChannelsRefuseMovesNothing() {
        var policy = StreamPolicy(width: 2)
        var channels = ChannelWatch(width: 2)
        var values: [Float] = [.nan, .nan]
        let all = values.withUnsafeMutableBufferPointer { policy.admit(width: 2, time: 10, now: 10, values: $0.baseAddress!, channels: &channels) }
        #expect(all == .refused(.allChannelsMissing) && policy.latestTime == nil)
        values = [1, 2]
        let first = values.withUnsafeMutableBufferPointer { policy.admit(width: 2, time: 10, now: 10, values: $0.baseAddress!, channels: &channels) }
        #expect(first == .accepted && policy.latestTime == 10, "the same time again: not a duplicate, the refused sample moved nothing")
        values = [.nan, 3]
        let carried = values.withUnsafeMutableBufferPointer { policy.admit(width: 2, time: 11, now: 11, values: $0.baseAddress!, channels: &channels) }
        #expect(carried == .accepted && values == [1, 3] && policy.latestTime == 11)
        values = [.nan, 4]
        let late = values.withUnsafeMutableBufferPointer { policy.admit(width: 2, time: 5, now: 11, values: $0.baseAddress!, channels: &channels) }
        #expect(late == .refused(.outOfOrder) && values[0].isNaN, "refused for its time: the channels are not judged")
    }
}
