import Synchronization

/// A fixed number of atomic integers, shared between threads (`Atomic` cannot live in an array).
package final class AtomicCounters: @unchecked Sendable {  // only atomics inside
    private let values: UnsafeMutablePointer<Atomic<Int>>
    package let count: Int

    package init(count: Int) {
        self.count = count
        values = .allocate(capacity: max(count, 1))
        for i in 0..<count { (values + i).initialize(to: Atomic(0)) }
    }

    deinit {
        values.deinitialize(count: count)
        values.deallocate()
    }

    package subscript(_ i: Int) -> Int { values[i].load(ordering: .relaxed) }

    @discardableResult
    package func add(_ i: Int, _ n: Int) -> Int { values[i].add(n, ordering: .relaxed).newValue }

    package func subtract(_ i: Int, _ n: Int) { values[i].subtract(n, ordering: .relaxed) }

    package func store(_ i: Int, _ n: Int) { values[i].store(n, ordering: .relaxed) }
}
