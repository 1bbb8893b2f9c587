// What the metrics show of the forecasts themselves (docs/metrics.md, "Forecast quality"):
// written by the workers without locks, read at scrape time.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

import RNNCore
import RNNWire
import Synchronization

/// The forecasts' quality while `--metrics-listen` is set (nil otherwise, and the workers then do
/// none of this): over every stream, the forecast values scored, those with a band and those
/// their band held, and the anomaly scores as a histogram; for the first `streamLabels` streams,
/// each stream's rolling errors and band coverage, by stream id.
package final class ForecastQuality: Sendable {
    /// Bounds of the anomaly score histogram: 0 is "inside the band".
    package static let anomalyBounds = [0, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95, 0.99]
    /// Scores are observed in millionths, so that the histogram's integer cells hold them.
    package static let anomalyUnit = 1e-6

    package let anomalies: AtomicHistogram
    /// Per worker (one writer each): values scored, banded, covered.
    package let totals: AtomicCounters
    package let streams: StreamBoard
    package let workers: Int

    package init(workers: Int, streamLabels: Int) {
        self.workers = workers
        anomalies = AtomicHistogram(bounds: Self.anomalyBounds, unit: Self.anomalyUnit, slots: workers)
        totals = AtomicCounters(count: 3 * workers)
        streams = StreamBoard(capacity: streamLabels)
    }

    /// Values scored, banded and covered over every worker.
    package var scored: Int { (0..<workers).reduce(0) { $0 + totals[3 * $1] } }
    package var banded: Int { (0..<workers).reduce(0) { $0 + totals[3 * $1 + 1] } }
    package var covered: Int { (0..<workers).reduce(0) { $0 + totals[3 * $1 + 2] } }

    /// What worker `worker` saw of `forecaster`'s latest sample, `before` its counters then.
    @inline(__always)
    package func observe(_ forecaster: Forecaster, since before: ForecasterCounters, worker: Int, slot: Int?) {
        let now = forecaster.counters, base = 3 * worker
        totals.add(base, now.scored - before.scored)
        totals.add(base + 1, now.banded - before.banded)
        totals.add(base + 2, now.covered - before.covered)
        if let score = forecaster.anomaly { anomalies.observe(UInt64(score / Self.anomalyUnit), slot: worker) }
        if let slot { streams.update(slot, forecaster) }
    }
}

/// The streams that have their own series in the metrics: the first `capacity` streams the
/// daemon gets a model for (restored ones first), each keeping its slot for the daemon's life.
/// A slot's id is written once, under a lock, when the stream is created; its figures are
/// written by the stream's worker as relaxed atomic stores (Double bit patterns) and read at
/// scrape time.
package final class StreamBoard: Sendable {
    package let capacity: Int
    private let taken = Atomic<Int>(0)
    private let ids: Mutex<[String?]>
    /// Per slot: rolling forecast MSE, persistence MSE, band coverage (NaN: none yet).
    private let figures: AtomicCounters
    /// Per slot: when the stream last had a sample, Unix seconds (NaN: none yet).
    private let lastSample: AtomicCounters
    /// Per slot: the missing values its stream carried forward since it was loaded, and its
    /// channels stuck now (RNNWire's `ChannelWatch`).
    private let channels: AtomicCounters

    package init(capacity: Int) {
        self.capacity = capacity
        ids = Mutex(Array(repeating: nil, count: capacity))
        figures = AtomicCounters(count: 3 * capacity)
        for i in 0..<(3 * capacity) { figures.store(i, Int(bitPattern: UInt(Double.nan.bitPattern))) }
        lastSample = AtomicCounters(count: capacity)
        for i in 0..<capacity { lastSample.store(i, Int(bitPattern: UInt(Double.nan.bitPattern))) }
        channels = AtomicCounters(count: 2 * capacity)
    }

    /// What stream `slot`'s channel watch says: values carried since the stream was loaded, and
    /// channels stuck now.
    @inline(__always)
    package func updateChannels(_ slot: Int, carried: Int, stuck: Int) {
        channels.store(2 * slot, carried)
        channels.store(2 * slot + 1, stuck)
    }

    /// The slot of stream `id`: the one it had (a stream unloaded and loaded again keeps it), or
    /// a new one while there are slots left.
    package func claim(_ id: [UInt8]) -> Int? {
        guard capacity > 0 else { return nil }
        let name = printableStreamID(id)
        if let slot = ids.withLock({ $0.firstIndex(of: name) }) { return slot }
        let slot = taken.add(1, ordering: .relaxed).newValue - 1
        guard slot < capacity else { return nil }
        ids.withLock { $0[slot] = name }
        return slot
    }

    @inline(__always)
    package func update(_ slot: Int, _ f: Forecaster) {
        func store(_ i: Int, _ v: Double?) { figures.store(3 * slot + i, Int(bitPattern: UInt((v ?? .nan).bitPattern))) }
        store(0, f.rollingForecastMSE)
        store(1, f.rollingPersistenceMSE)
        store(2, f.rollingCoverage)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        lastSample.store(slot, Int(bitPattern: UInt((Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9).bitPattern)))
    }

    package struct Row {
        package var stream: String
        package var forecastMSE, persistenceMSE, coverage: Double
        /// When it last had a sample, Unix seconds (NaN: none yet).
        package var lastSample: Double
        /// Missing values carried since it was loaded, and channels stuck now.
        package var carried = 0, stuck = 0
    }

    /// The streams with a slot and their latest figures.
    package func rows() -> [Row] {
        let names = ids.withLock { $0 }
        func value(_ i: Int) -> Double { Double(bitPattern: UInt64(UInt(bitPattern: figures[i]))) }
        return names.enumerated().compactMap { slot, name in
            name.map {
                Row(stream: $0, forecastMSE: value(3 * slot), persistenceMSE: value(3 * slot + 1), coverage: value(3 * slot + 2),
                    lastSample: Double(bitPattern: UInt64(UInt(bitPattern: lastSample[slot]))),
                    carried: channels[2 * slot], stuck: channels[2 * slot + 1])
            }
        }
    }
}
