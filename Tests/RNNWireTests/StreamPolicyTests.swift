import RNNWire
import Testing

/// The one per-sample stream policy that the daemon's workers, replay and the demo apply.
@Suite(.timeLimit(.minutes(1)))
struct StreamPolicyTests {
    @Test func theWidthIsCheckedBeforeTheTime() {
        let policy = StreamPolicy(width: 2, latestTime: 100)
        #expect(policy.check(width: 3, time: 50) == .widthChanged)
        #expect(policy.check(width: 2, time: 50) == .outOfOrder)
        #expect(policy.check(width: 2, time: 100) == .duplicateTimestamp)
        #expect(policy.check(width: 2, time: 101) == nil)
        #expect(policy.check(width: 2, time: nil) == nil, "a sample without a time passes")
    }

    @Test func onlyAnAcceptedSampleMovesTheLatestTime() {
        var policy = StreamPolicy(width: 1)
        #expect(policy.admit(width: 1, time: 10) == nil)
        #expect(policy.latestTime == 10)
        #expect(policy.admit(width: 1, time: 5) == .outOfOrder)
        #expect(policy.latestTime == 10, "a refused sample leaves the latest time")
        #expect(policy.admit(width: 2, time: 20) == .widthChanged)
        #expect(policy.latestTime == 10)
        #expect(policy.admit(width: 1, time: nil) == nil)
        #expect(policy.latestTime == 10, "a sample without a time keeps the latest time")
        #expect(policy.admit(width: 1, time: 11) == nil)
        #expect(policy.latestTime == 11)
    }

    @Test func valuesAreCheckedAsTheDecoderChecksThem() {
        #expect(StreamPolicy.valueProblem([1, 2, -3e38]) == nil)
        #expect(StreamPolicy.valueProblem([1, .nan]) == nil, "a missing value, which ChannelWatch deals with")
        #expect(StreamPolicy.valueProblem([.infinity]) == .nonFiniteValue)
        #expect(StreamPolicy.valueProblem([1e39]) == .nonFiniteValue, "beyond float32: infinite once rounded, as the decoder refuses it")
    }
}
