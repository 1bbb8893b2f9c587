import RNNCore
import RNNMetrics
import RNNState
import RNNWire

/// One stream: its model and what the protocol tracks about it.
final class StreamLearner {
    let id: [UInt8]
    let hash: UInt64
    let forecaster: Forecaster
    /// The per-sample policy (shared with replay and the demo) and the stream's latest time.
    var policy: StreamPolicy
    /// Its channels' latest values (carried into missing ones) and runs (stuck channels), shared
    /// with replay and the demo too. Not in the stream's record: a stream restored or loaded
    /// back starts it afresh.
    var channels: ChannelWatch
    var seq = 0
    /// `seq` when the stream was last checkpointed (or restored); -1 before: a stream whose
    /// `seq` has not moved since learned nothing, and is not written again.
    var savedSeq = -1
    /// Its slot among the streams with series of their own in the metrics (``StreamBoard``), if any.
    var metricsSlot: Int?
    /// When it last had a sample (`monotonicNanoseconds`), for quiet streams and unloading.
    var lastSample: UInt64 = 0
    /// Its place in ``StreamTable/all``; -1 when not in a table (unloaded).
    fileprivate(set) var position = -1

    var isLoaded: Bool { position >= 0 }

    init(id: [UInt8], hash: UInt64, forecaster: Forecaster, clock: ClockPolicy = .standard) {
        self.id = id
        self.hash = hash
        self.forecaster = forecaster
        policy = StreamPolicy(width: forecaster.configuration.inputs, clock: clock)
        channels = ChannelWatch(width: forecaster.configuration.inputs)
    }
}

extension StreamLearner {
    /// The stream that the stored record `raw` of stream `id` holds, rebuilt under `c`'s model
    /// (computing in the workspace of its width, made when missing): what the restore at
    /// start-up and a worker loading an unloaded stream back both do. A record of an older
    /// format is migrated (`migratedFrom` is that format; nil for the current one), and its
    /// stream then counts as not saved, so that the next checkpoint writes it in the current format.
    static func restored(
        id: [UInt8], hash: UInt64, record raw: [UInt8], configuration c: DaemonConfiguration,
        workspaces: inout [Int: TrainingWorkspace<Float>]
    ) throws(RecordProblem) -> (learner: StreamLearner, migratedFrom: UInt16?) {
        let record = try StreamRecord.decode(raw, template: c.model)
        guard record.id == id else { throw RecordProblem.unreadableConfiguration("it names stream \(record.printableID)") }
        let current = c.modelConfiguration(inputs: record.model.inputs)
        let workspace = workspaces[current.inputs] ?? TrainingWorkspace(current)
        workspaces[current.inputs] = workspace
        let learner = StreamLearner(id: id, hash: hash, forecaster: try record.forecaster(current: current, workspace: workspace))
        learner.seq = record.seq
        learner.policy = StreamPolicy(width: record.model.inputs, latestTime: record.lastTimestamp, clock: c.clockPolicy)
        let migrated = record.formatRead != StreamRecord.formatVersion
        learner.savedSeq = migrated ? -1 : record.seq
        return (learner, migrated ? record.formatRead : nil)
    }
}

/// A worker's streams, found by id without allocating: open addressing over the ids' hashes.
///
/// A stream's home slot comes from the low bits of `placementHash`, not of the stream hash:
/// FNV-1a's low bits depend only on the low bits of each byte, and ids that differ only in their
/// higher bits would share homes. The shard comes from another mix (`StreamShard.shardHash`), so
/// a sharded instance's streams still spread over every slot.
struct StreamTable {
    private var slots: [StreamLearner?] = Array(repeating: nil, count: 64)
    private(set) var count = 0
    /// Every stream, in the order they came: what a checkpoint walks.
    private(set) var all: [StreamLearner] = []

    func find(_ id: UnsafeRawBufferPointer, hash: UInt64) -> StreamLearner? {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: placementHash(hash)) & mask
        while let learner = slots[i] {
            if learner.hash == hash, learner.id.count == id.count,
                learner.id.withUnsafeBytes({ $0.elementsEqual(id) })
            {
                return learner
            }
            i = (i + 1) & mask
        }
        return nil
    }

    mutating func insert(_ learner: StreamLearner) {
        if 2 * (count + 1) > slots.count {
            let old = slots
            slots = Array(repeating: nil, count: 2 * old.count)
            count = 0
            for case let l? in old { place(l) }
        }
        place(learner)
        learner.position = all.count
        all.append(learner)
    }

    /// Takes `learner` out (it is in the table). Linear probing's deletion by backward shift: the
    /// entries after its slot that could sit earlier move up, so that every lookup still finds
    /// its stream without tombstones. `all` loses it by a swap with its last element.
    mutating func remove(_ learner: StreamLearner) {
        let mask = slots.count - 1
        var hole = Int(truncatingIfNeeded: placementHash(learner.hash)) & mask
        while slots[hole] !== learner { hole = (hole + 1) & mask }
        slots[hole] = nil
        var i = (hole + 1) & mask
        while let next = slots[i] {
            let home = Int(truncatingIfNeeded: placementHash(next.hash)) & mask
            // `next` may fill the hole when its home is not strictly between the hole and `i`
            // (cyclically).
            if (i - home) & mask >= (i - hole) & mask {
                slots[hole] = next
                slots[i] = nil
                hole = i
            }
            i = (i + 1) & mask
        }
        count -= 1
        let last = all.removeLast()
        if last !== learner {
            all[learner.position] = last
            last.position = learner.position
        }
        learner.position = -1
    }

    /// How far the streams sit from their home slots, in slots, summed: what finding every
    /// stream once costs beyond one probe each.
    var displacement: Int {
        let mask = slots.count - 1
        var total = 0
        for (i, learner) in slots.enumerated() {
            guard let learner else { continue }
            total += (i - Int(truncatingIfNeeded: placementHash(learner.hash))) & mask
        }
        return total
    }

    private mutating func place(_ learner: StreamLearner) {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: placementHash(learner.hash)) & mask
        while slots[i] != nil { i = (i + 1) & mask }
        slots[i] = learner
        count += 1
    }
}
