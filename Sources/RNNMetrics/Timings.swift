// Durations the daemon's threads measure for the metrics (docs/metrics.md): observed in the hot
// loops without a lock, an allocation or a call through an existential, read at scrape time.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// CLOCK_MONOTONIC in nanoseconds: the time base of the latencies (a vDSO call on Linux, no system
/// call). The corresponding C function is `clock_gettime`.
@inline(__always)
package func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// A histogram with fixed bucket bounds (of durations, or of any value in a fixed unit), filled by
/// several threads at once without
/// locks: each writer has a slot of its own (bucket counts and the sum, as atomics, apart from the
/// other slots' cache lines) and `observe` is two uncontended atomic adds after a short scan of
/// the bounds. A scrape sums the slots. The count is the sum of the buckets, so the `+Inf` bucket
/// and `_count` always agree, even while threads observe.
package final class AtomicHistogram: @unchecked Sendable {  // atomics, and bounds written only in init
    /// Upper bounds of the buckets, in units of `unit` (nanoseconds for durations), increasing; a
    /// last bucket takes the rest.
    package let bounds: [Int]
    /// What one unit of an observation is worth (1e-9 for durations in nanoseconds).
    package let unit: Double
    /// The bounds as given (seconds for durations).
    package let values: [Double]
    /// `bounds` again, read by `observe` without touching the array's reference count, which
    /// every worker would otherwise contend for.
    private let limits: UnsafeMutableBufferPointer<Int>
    private let cells: AtomicCounters
    /// Cells per slot: the buckets (bounds + 1), the sum, and padding to keep slots 64 bytes apart.
    private let stride: Int
    package let slots: Int

    /// `bounds` in seconds (increasing), `slots` writer threads, numbered 0 ..< slots; durations
    /// are observed in nanoseconds.
    package convenience init(seconds bounds: [Double], slots: Int) {
        self.init(bounds: bounds, unit: 1e-9, slots: slots)
    }

    /// `bounds` (increasing), observed as integer multiples of `unit`.
    package init(bounds: [Double], unit: Double, slots: Int) {
        precondition(!bounds.isEmpty && zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "bounds must increase")
        self.unit = unit
        values = bounds
        self.bounds = bounds.map { Int(($0 / unit).rounded()) }
        limits = .allocate(capacity: bounds.count)
        _ = limits.initialize(from: self.bounds)
        self.slots = slots
        stride = (bounds.count + 2 + 7) / 8 * 8 + 8
        cells = AtomicCounters(count: stride * slots)
    }

    deinit { limits.deallocate() }

    /// Counts one observation of `units` (nanoseconds for a duration) in `slot`, the calling
    /// thread's. Only one thread observes into a slot.
    @inline(__always)
    package func observe(_ units: UInt64, slot: Int) {
        let value = Int(truncatingIfNeeded: units)
        var bucket = 0
        while bucket < limits.count, value > limits[bucket] { bucket += 1 }
        let base = slot * stride
        cells.add(base + bucket, 1)
        cells.add(base + limits.count + 1, value)
    }

    /// The histogram as Prometheus exposes it: cumulative counts per bound, the count, the sum.
    package struct Snapshot: Equatable {
        /// Observations at or below each bound (cumulative), then all of them (`+Inf`).
        package var cumulative: [Int]
        package var count: Int { cumulative.last ?? 0 }
        /// The sum of the observations, in seconds for durations (in the histogram's bounds' units).
        package var sumSeconds: Double
    }

    package func snapshot() -> Snapshot {
        var counts = Array(repeating: 0, count: bounds.count + 1)
        var sum = 0
        for slot in 0..<slots {
            let base = slot * stride
            for b in counts.indices { counts[b] += cells[base + b] }
            sum += cells[base + bounds.count + 1]
        }
        for b in counts.indices.dropFirst() { counts[b] += counts[b - 1] }
        return Snapshot(cumulative: counts, sumSeconds: Double(sum) / (1 / unit).rounded())
    }
}

/// The durations the daemon measures while `--metrics-listen` is set (nil otherwise, and then
/// nothing reads a clock for them).
package final class DaemonTimings: Sendable {
    /// Bounds of the histograms, in seconds; docs/metrics.md lists them.
    package static let latencyBounds = [25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 0.5, 1, 2.5, 5, 10]
    package static let updateBounds = [5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1]
    package static let checkpointBounds = [1e-3, 5e-3, 10e-3, 50e-3, 100e-3, 250e-3, 0.5, 1, 2.5, 5, 10, 30, 60]

    /// From the moment ingest took a sample off the SUB socket to the moment the publisher handed
    /// its forecast to the PUB socket; the publisher observes (one slot).
    package let latency = AtomicHistogram(seconds: latencyBounds, slots: 1)
    /// The time of each `learn()` that updated the weights; each worker observes in its own slot.
    package let updates: AtomicHistogram
    /// The time of each committed checkpoint, from its start to its commit; the checkpoint thread
    /// observes (one slot).
    package let checkpoints = AtomicHistogram(seconds: checkpointBounds, slots: 1)

    package init(workers: Int) {
        updates = AtomicHistogram(seconds: Self.updateBounds, slots: workers)
    }
}
