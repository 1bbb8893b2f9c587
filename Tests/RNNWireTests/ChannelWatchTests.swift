import Foundation
import RNNWire
import Testing

/// The per-channel policy that the daemon's workers, replay and the demo apply: missing values
/// carried forward, stuck channels reported.
@Suite(.timeLimit(.minutes(1)))
struct ChannelWatchTests {
    /// Admits `values` (NaN: missing); the refusal, or the values as filled.
    func admit(_ watch: inout ChannelWatch, _ values: [Float]) -> Result<[Float], StreamRejection> {
        var sample = values
        if let refusal = sample.withUnsafeMutableBufferPointer({ watch.admit($0.baseAddress!) }) { return .failure(refusal) }
        return .success(sample)
    }

    @Test func aMissingValueTakesItsChannelsPreviousAcceptedValue() throws {
        var watch = ChannelWatch(width: 3)
        #expect(try admit(&watch, [1, 2, 3]).get() == [1, 2, 3])
        #expect(watch.missing.isEmpty)
        #expect(try admit(&watch, [4, .nan, 6]).get() == [4, 2, 6])
        #expect(Array(watch.missing) == [1])
        #expect(try admit(&watch, [.nan, .nan, 9]).get() == [4, 2, 9], "carried again, from the latest accepted value")
        #expect(Array(watch.missing) == [0, 1])
        #expect(try admit(&watch, [5, 7, 8]).get() == [5, 7, 8])
        #expect(watch.missing.isEmpty, "what is missing is the latest sample's")
        #expect(watch.carried == [1, 2, 0])
    }

    @Test func aSampleWithEveryValueMissingIsRefusedAndChangesNothing() throws {
        var watch = ChannelWatch(width: 2)
        #expect(admit(&watch, [.nan, .nan]) == .failure(.allChannelsMissing), "also before any value")
        #expect(try admit(&watch, [1, 2]).get() == [1, 2])
        #expect(admit(&watch, [.nan, .nan]) == .failure(.allChannelsMissing))
        #expect(watch.carried == [0, 0])
        #expect(try admit(&watch, [.nan, 3]).get() == [1, 3])
        var scalar = ChannelWatch(width: 1)
        #expect(try admit(&scalar, [5]).get() == [5])
        #expect(admit(&scalar, [.nan]) == .failure(.allChannelsMissing), "a stream of one channel never carries")
    }

    @Test func aMissingValueWithNothingToCarryIsRefused() throws {
        var watch = ChannelWatch(width: 2)
        #expect(admit(&watch, [5, .nan]) == .failure(.nothingToCarry))
        // The refused sample's 5 is not a value to carry: only accepted samples are.
        #expect(admit(&watch, [.nan, 2]) == .failure(.nothingToCarry))
        #expect(try admit(&watch, [1, 2]).get() == [1, 2])
        #expect(try admit(&watch, [.nan, 3]).get() == [1, 3])
        #expect(watch.carried == [1, 0])
    }

    /// A reproducible series: a daily sine of 5-minute samples, amplitude 2, with Gaussian noise
    /// of standard deviation 0.8, quantised to whole units, as a coarse sensor reports it.
    static func quantisedSensor(count: Int) -> [Float] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func uniform() -> Double {
            // SplitMix64.
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return (Double(z >> 11) + 0.5) / 9_007_199_254_740_992
        }
        return (0..<count).map { i in
            let noise = (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform())
            return Float((2 * sin(2 * .pi * Double(i) / 288) + 0.8 * noise).rounded())
        }
    }

    /// Feeds `series` through a watch of one channel; the first sample each episode began at,
    /// and the samples while stuck.
    func watch(_ series: [Float]) throws -> (starts: [Int], recoveries: [Int], stuckSamples: Int, watch: ChannelWatch) {
        var watch = ChannelWatch(width: 1)
        var starts: [Int] = [], recoveries: [Int] = [], stuckSamples = 0
        for (i, x) in series.enumerated() {
            _ = try admit(&watch, [x]).get()
            if !watch.becameStuck.isEmpty { starts.append(i) }
            if !watch.recovered.isEmpty { recoveries.append(i) }
            if watch.stuck == [0] { stuckSamples += 1 }
        }
        return (starts, recoveries, stuckSamples, watch)
    }

    @Test func aQuantisedSensorThatRepeatsItsValuesIsNotStuck() throws {
        let series = Self.quantisedSensor(count: 20_000)
        var longest = 0, current = 1
        for i in 1..<series.count {
            current = series[i] == series[i - 1] ? current + 1 : 1
            longest = max(longest, current)
        }
        #expect(longest >= 6, "the series repeats values several times (longest run \(longest))")
        let seen = try watch(series)
        #expect(seen.starts.isEmpty, "never stuck: \(seen.starts)")
        #expect(seen.watch.stuckEpisodes == [0])
    }

    @Test func aReadingFrozenForSixHoursIsStuckUntilItChanges() throws {
        var series = Self.quantisedSensor(count: 20_000)
        // 72 five-minute samples at one value the sensor never gives (it reports whole units).
        series.replaceSubrange(10_000..<10_072, with: repeatElement(Float(0.5), count: 72))
        let seen = try watch(series)
        #expect(seen.starts.count == 1 && seen.watch.stuckEpisodes == [1])
        let start = try #require(seen.starts.first)
        #expect(start > 10_000 + ChannelWatch.minimumRun - 1 && start < 10_072, "flagged while frozen, at \(start)")
        #expect(seen.recoveries == [10_072], "recovers at the first change")
        #expect(seen.stuckSamples == 10_072 - start)
        #expect(seen.watch.stuck.isEmpty)
    }

    @Test func missingValuesNeitherExtendNorEndARun() throws {
        var watch = ChannelWatch(width: 2)
        // A day of a changing channel 0 (its usual run is 1) beside a channel 1 that counts up.
        for i in 0..<ChannelWatch.minimumHistory { _ = try admit(&watch, [Float(i % 3), Float(i)]).get() }
        var becameAt: Int?
        for k in 0..<100 {
            // Channel 0 frozen, missing every other sample; channel 1 still moving.
            let x: Float = k % 2 == 0 ? 7 : .nan
            _ = try admit(&watch, [x, Float(1000 + k)]).get()
            if watch.becameStuck == [0] { becameAt = k }
        }
        // 31 observed identical values are 61 samples with every other one missing.
        #expect(becameAt == 2 * ChannelWatch.minimumRun, "stuck after its 31st observed value, at \(becameAt.map(String.init) ?? "never")")
        #expect(watch.stuck == [0] && watch.runLength(0) == 50)
        _ = try admit(&watch, [8, 2000]).get()
        #expect(watch.recovered == [0] && watch.stuck.isEmpty)
    }

    @Test func aChannelThatHasNeverChangedIsNotStuck() throws {
        var watch = ChannelWatch(width: 2)
        for i in 0..<1000 { _ = try admit(&watch, [3, Float(i % 2)]).get() }
        #expect(watch.stuck.isEmpty && watch.stuckEpisodes == [0, 0], "a constant channel has no usual run to be far longer than")
    }
}
