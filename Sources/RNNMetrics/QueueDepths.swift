import Synchronization

/// Records in flight on each inproc pipe, counted so that a queue is bounded in samples however
/// they are batched: the sender reserves room for a batch before sending it, the receiver
/// releases it once taken. Slot `i < workers` is worker i's queue; the last, the publisher's.
package final class QueueDepths: Sendable {
    private let depths: AtomicCounters
    package let capacity: Int

    package init(queues: Int, capacity: Int) {
        depths = AtomicCounters(count: queues)
        self.capacity = capacity
    }

    /// Takes room for `n` records in queue `i`; false (and nothing taken) when it has not.
    package func reserve(_ i: Int, _ n: Int) -> Bool {
        if depths.add(i, n) <= capacity { return true }
        depths.subtract(i, n)
        return false
    }

    package func release(_ i: Int, _ n: Int) {
        depths.subtract(i, n)
    }

    /// Records in queue `i` now, for the metrics.
    package func depth(_ i: Int) -> Int { depths[i] }

    /// The number of queues: the workers', then the publisher's.
    package var count: Int { depths.count }
}
