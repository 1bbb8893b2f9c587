// Which of a worker's streams are in memory (docs/checkpoints.md, "Quiet streams and
// max_streams"). A stream idle for `idle_unload`, or the least recently used one when a new
// stream needs room past `max_streams`, is unloaded: its state is the record a checkpoint writes,
// so it leaves memory as that record and comes back from it, exactly, on its next sample. A
// stream whose latest state is committed just leaves; one with changes not committed yet leaves
// its record here ("parked"), which the next checkpoint walk writes, and which is dropped once
// that commit succeeds. A sample of a stream that is not in memory looks in the parked records,
// then in the store (a read-only connection of the worker's own: in WAL mode it reads the last
// commit without waiting for a checkpoint being written).

import RNNCore
import RNNMetrics
import RNNState
import RNNWire

/// A worker's streams: those in memory (``table``) and the parked records of those unloaded.
struct WorkerStreams {
    /// A record of an unloaded stream that no commit holds yet.
    struct Parked {
        var record: [UInt8]
        /// The `savedSeq` the stream had: what a stream brought back from here still has to save.
        var savedSeq: Int
        /// Which parking this is: a walk's commit drops only the one it sent.
        var generation: Int
    }

    private(set) var table = StreamTable()
    private var parkedRecords: [[UInt8]: Parked] = [:]
    /// The bytes of the parked records.
    private(set) var parkedBytes = 0
    private var generations = 0
    /// The store, read-only, for streams unloaded before (or by an earlier run); nil without one.
    let store: CheckpointStore?

    init(store: CheckpointStore?) {
        self.store = store
    }

    var count: Int { table.count }

    mutating func insert(_ learner: StreamLearner) { table.insert(learner) }

    func find(_ id: UnsafeRawBufferPointer, hash: UInt64) -> StreamLearner? { table.find(id, hash: hash) }

    /// The record of an unloaded stream `id`: parked here (and then no longer parked, with the
    /// `savedSeq` the stream had) or in the store (with its own seq, which the store holds);
    /// nil when neither has one. A store that cannot be read throws.
    mutating func takeRecord(_ id: [UInt8]) throws -> (record: [UInt8], savedSeq: Int?)? {
        if let p = parkedRecords.removeValue(forKey: id) {
            parkedBytes -= p.record.count
            return (p.record, p.savedSeq)
        }
        guard let store, let record = try store.record(id: id) else { return nil }
        return (record, nil)
    }

    /// Takes `learner` out of memory. Unless its latest state is committed, its record (`encode`
    /// writes it) stays parked until a checkpoint commits it.
    mutating func unload(_ learner: StreamLearner, encode: (StreamLearner, inout [UInt8]) -> Void) {
        if learner.seq != learner.savedSeq {
            var record: [UInt8] = []
            encode(learner, &record)
            generations += 1
            parkedBytes += record.count - (parkedRecords[learner.id]?.record.count ?? 0)
            parkedRecords[learner.id] = Parked(record: record, savedSeq: learner.savedSeq, generation: generations)
        }
        table.remove(learner)
    }

    /// The ids of the parked records, for a checkpoint walk.
    var parkedIDs: [[UInt8]] { Array(parkedRecords.keys) }
    var parkedCount: Int { parkedRecords.count }

    func parked(_ id: [UInt8]) -> Parked? { parkedRecords[id] }

    /// A walk that sent these parked records committed: they are in the store now. A record
    /// parked again since (the stream came back, learned and left again) stays parked.
    mutating func committed(_ sent: [(id: [UInt8], generation: Int)]) {
        for (id, generation) in sent where parkedRecords[id]?.generation == generation {
            parkedBytes -= parkedRecords.removeValue(forKey: id)?.record.count ?? 0
        }
    }

    /// The stream least recently given a sample, if any.
    func leastRecentlyUsed() -> StreamLearner? {
        table.all.min { $0.lastSample < $1.lastSample }
    }
}
