import Foundation
import RNNCore
@testable import RNNDaemon
@testable import RNNMetrics
import Synchronization
import Testing

/// The batches that carry samples and forecasts between the daemon's threads.
@Suite(.timeLimit(.minutes(1)))
struct RecordBatchTests {
    /// Writes sample records for the given streams into `batch`, as the ingest thread does.
    func append(_ streams: [String], to batch: RecordBatch) {
        for (i, id) in streams.enumerated() {
            let values: [Float] = Array(repeating: Float(i) + 0.5, count: i % 3 + 1)
            let size = SampleRecord.size(idLength: id.utf8.count, count: values.count)
            #expect(batch.fits(size))
            let length = Array(id.utf8).withUnsafeBytes { idBytes in
                values.withUnsafeBufferPointer {
                    SampleRecord.write(id: idBytes, received: UInt64(1_000 + i), values: $0, timestamp: i.isMultiple(of: 2) ? Double(i) : nil, into: batch.next)
                }
            }
            #expect(length == size)
            batch.append(length: length)
        }
    }

    @Test func recordsComeBackInOrder() {
        let batch = RecordBatch(largestRecord: SampleRecord.size(idLength: 255, count: 64))
        let streams = ["a", "plant-7/temp", "", "é", String(repeating: "x", count: 255)]
        append(streams, to: batch)
        #expect(batch.count == streams.count)
        var seen: [(String, [Float], Double?, UInt64)] = []
        RecordBatch.forEach(in: batch.frame) { record in
            let s = SampleRecord.read(record)
            seen.append((String(decoding: s.id, as: UTF8.self), (0..<s.count).map(s.value), s.timestamp, s.received))
        }
        #expect(seen.map(\.0) == streams)
        for (i, (_, values, t, received)) in seen.enumerated() {
            #expect(values == Array(repeating: Float(i) + 0.5, count: i % 3 + 1))
            #expect(t == (i.isMultiple(of: 2) ? Double(i) : nil))
            #expect(received == UInt64(1_000 + i))
        }
        batch.clear()
        #expect(batch.isEmpty && batch.frame.isEmpty)
        var none = 0
        RecordBatch.forEach(in: batch.frame) { _ in none += 1 }
        #expect(none == 0)
    }

    /// A forecast record carries the sample's receive time to the publisher, next to the
    /// forecast, its band and the anomaly score; before the band exists, neither.
    @Test func forecastRecordsComeBackWhole() {
        var model = ModelConfiguration()
        model.cell = .gru
        model.hidden = 4
        model.window = 4
        model.inputs = 2
        model.horizon = 3
        let forecaster = Forecaster(configuration: model)
        let id = Array("plant-7/température".utf8)
        func roundTrip(check: (ForecastRecord.View) -> Void) {
            var buffer = [UInt8](repeating: 0, count: ForecastRecord.size(idLength: id.count, values: forecaster.outputs, channels: 2))
            let length = buffer.withUnsafeMutableBytes { out in
                id.withUnsafeBytes { idBytes in
                    ForecastRecord.write(
                        id: idBytes, received: 123_456_789_012, seq: 42, timestamp: 1_700_000_000.5,
                        forecaster: forecaster, missing: [1], stuck: [0, 1], into: out.baseAddress!)
                }
            }
            #expect(length <= buffer.count)
            buffer.withUnsafeBytes { frame in
                let f = ForecastRecord.read(UnsafeRawBufferPointer(rebasing: frame[..<length]))
                #expect(Array(f.id) == id)
                #expect(f.received == 123_456_789_012)
                #expect(f.seq == 42 && f.timestamp == 1_700_000_000.5 && f.horizon == 3)
                #expect(f.updates == forecaster.trainer.counters.updates)
                func floats(_ b: UnsafeRawBufferPointer) -> [Float] {
                    (0..<(b.count / 4)).map { b.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
                }
                #expect(floats(f.values) == Array(forecaster.forecast))
                func channels(_ b: UnsafeRawBufferPointer) -> [UInt16] {
                    (0..<(b.count / 2)).map { b.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self) }
                }
                #expect(channels(f.missing) == [1] && channels(f.stuck) == [0, 1])
                check(f)
            }
        }
        func step(_ i: Int) {
            _ = forecaster.step([Float(i % 7), Float(i % 5) * 0.5], time: 1_700_000_000 + 60 * Double(i))
        }
        step(0)
        roundTrip { f in
            #expect(f.lower.isEmpty && f.upper.isEmpty && f.anomaly == nil && f.targetAnomalies.isEmpty, "no band, no score yet")
            #expect(f.interval == nil, "no sampling interval from one sample")
        }
        for i in 1..<150 { step(i) }
        roundTrip { f in
            #expect(f.interval == forecaster.samplingInterval && f.interval != nil, "the minute between samples")
            #expect(f.lower.count == 4 * 6 && f.upper.count == 4 * 6)
            for k in 0..<6 {
                #expect(f.lower.loadUnaligned(fromByteOffset: 4 * k, as: Float.self).bitPattern == forecaster.lower[k].bitPattern)
                #expect(f.upper.loadUnaligned(fromByteOffset: 4 * k, as: Float.self).bitPattern == forecaster.upper[k].bitPattern)
            }
            #expect(f.anomaly != nil && f.anomaly == forecaster.anomaly)
            // Two targets: each one's score, the largest of which is the sample's.
            let scores = (0..<(f.targetAnomalies.count / 4)).map { f.targetAnomalies.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            #expect(scores == [0, 1].map { Float(forecaster.anomaly(target: $0)!) })
            #expect(scores.max() == Float(forecaster.anomaly!))
        }
    }

    @Test func aBatchIsBoundedInRecordsAndBytes() {
        let small = RecordBatch(largestRecord: 16)
        append(Array(repeating: "s", count: RecordBatch.maxRecords), to: small)
        #expect(!small.fits(1), "at most \(RecordBatch.maxRecords) records")
        // The largest record always fits an empty batch, even beyond the usual 16 KiB.
        let largest = SampleRecord.size(idLength: 255, count: 65_535)
        let big = RecordBatch(largestRecord: largest)
        #expect(big.fits(largest))
        #expect(!big.fits(largest + 1))
    }

    @Test func queuesAreBoundedInRecords() {
        let queues = QueueDepths(queues: 2, capacity: 100)
        #expect(queues.reserve(0, 64))
        #expect(!queues.reserve(0, 37), "64 + 37 > 100: refused, nothing taken")
        #expect(queues.reserve(0, 36))
        #expect(!queues.reserve(0, 1))
        #expect(queues.reserve(1, 100), "each queue has its own bound")
        queues.release(0, 64)
        #expect(queues.reserve(0, 64))
        #expect(!queues.reserve(0, 1))
    }

    @Test func milestonesOfTheStreamCount() {
        #expect((1...100_000).filter(isPowerOfTen) == [1, 10, 100, 1_000, 10_000, 100_000])
    }

    /// Each milestone is reached once: a count that comes back to one (a daemon at max_streams
    /// unloads a stream for each new one) or falls below it and climbs again is not one.
    @Test func eachMilestoneIsReachedOnce() {
        let milestones = StreamMilestones()
        let counts = [1, 2, 10, 9, 10, 11, 100, 99, 100, 100, 50, 100, 1_000, 999, 1_000]
        #expect(counts.filter(milestones.reached) == [1, 10, 100, 1_000])
    }

    /// Two threads counting up and down around the same milestones, as two workers at
    /// max_streams do: each milestone is reached once between them.
    @Test func eachMilestoneIsReachedOnceWhicheverThreadGetsThere() {
        let milestones = StreamMilestones()
        let reached = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            for _ in 0..<1_000 {
                for n in [10, 9, 10, 100, 99, 100] where milestones.reached(n) { reached.withLock { $0.append(n) } }
            }
        }
        #expect(reached.withLock { $0 }.sorted() == [10, 100])
    }
}
