import Foundation
import Logging
import RNNBasics
import RNNCore
import RNNMetrics
import RNNState
import RNNWire
import Synchronization
import ZeroMQ

// Checkpoints (docs/checkpoints.md): restored before the threads start; written by the
// checkpoint thread, which every `checkpointInterval` asks each worker for the streams that
// changed since their last commit. A worker answers between batches of samples, a few streams
// at a time, so the sample path never stops for a whole checkpoint; the checkpoint thread writes
// what arrives into one SQLite transaction, commits when every worker is through, and tells each
// worker the outcome: only then do its streams count as saved. A failed checkpoint is retried
// sooner than the interval, and sends the same streams again. On stop, each worker, after its
// last sample, sends every stream not saved yet, and each worker's streams commit on their own,
// with retries within the stop budget.

/// The streams a worker starts with: restored learners and the workspaces they compute in.
/// Built on the main thread before the worker exists, then owned by the worker alone.
final class RestoredStreams: @unchecked Sendable {
    var learners: [StreamLearner] = []
    var workspaces: [Int: TrainingWorkspace<Float>] = [:]
    /// Records that could not be used, for the caller to report and act on (by the
    /// configuration's `onModelChange`, or set aside).
    var problems: [(id: [UInt8], problem: RecordProblem)] = []
    /// Records of an older format, migrated as they were read: how many of each format.
    var migrated: [UInt16: Int] = [:]
    /// Streams whose records are kept in the store, not loaded (`on_model_change = keep`): their
    /// samples are refused, so that no new model overwrites the stored one.
    var held: Set<[UInt8]> = []

    /// A stored record read, waiting to be rebuilt by its worker's task.
    struct Pending: Sendable {
        var id: [UInt8]
        var hash: UInt64
        var worker: Int
        var raw: [UInt8]
    }

    /// Decodes `p` and rebuilds its stream under `configuration`, or notes why not.
    func rebuild(_ p: Pending, configuration c: DaemonConfiguration) {
        do throws(RecordProblem) {
            let (learner, format) = try StreamLearner.restored(
                id: p.id, hash: p.hash, record: p.raw, configuration: c, workspaces: &workspaces)
            // Written in the current format at the next checkpoint, whether it learns or not.
            if let format { migrated[format, default: 0] += 1 }
            learners.append(learner)
        } catch {
            problems.append((p.id, error))
        }
    }
}

/// Why the daemon did not start: stored streams that this configuration cannot restore as they
/// are, with `on_model_change = refuse` (exit 78).
struct RestoreRefusal: Error, CustomStringConvertible {
    var description: String
}

/// The records a restore could not use, sorted by what to do with them.
struct RestoreProblems {
    /// Trained with another model shape, or written by a newer rnnd: usable under another
    /// configuration or rnnd, so `on_model_change` decides.
    var unmatched: [(id: [UInt8], problem: RecordProblem)] = []
    /// Damaged or unreadable by any rnnd: set aside.
    var unusable: [(id: [UInt8], problem: RecordProblem)] = []

    mutating func add(_ id: [UInt8], _ problem: RecordProblem) {
        switch problem {
        case .modelChanged: unmatched.append((id, problem))
        case .unsupportedVersion(let v) where v > Int(StreamRecord.formatVersion): unmatched.append((id, problem))
        default: unusable.append((id, problem))
        }
    }

    /// The `[model]` key and flag of each shape difference that a daemon setting makes.
    static let settings: [String: String] = [
        "cell": "model.cell (--model)", "elman_activation": "model.elman_activation (--elman-activation)",
        "hidden": "model.hidden (--hidden)", "horizon": "model.horizon (--horizon)", "window": "model.window (--window)",
        "formulation": "model.formulation (--formulation)", "calendar": "model.calendar (--calendar)",
        "linear_lags": "model.linear_lags (--linear-lags)", "direct_lookback": "model.direct_lookback (--direct-lookback)",
        "optimizer": "model.optimizer (--optimizer)",
    ]

    /// What differs, with how many streams each: `hidden 8 → 9 (4 streams)`, the commonest
    /// first, at most five; then the settings that set them.
    var summary: (differences: String, settings: [String]) {
        var counts: [String: Int] = [:], settings: Set<String> = []
        for (_, problem) in unmatched {
            switch problem {
            case .modelChanged(let changes):
                counts[changes.joined(separator: ", "), default: 0] += 1
                for change in changes {
                    let name = change.split(separator: " ").first.map(String.init) ?? change
                    if let setting = Self.settings[name] { settings.insert(setting) }
                }
            case .unsupportedVersion(let v): counts["record format \(v), written by a newer rnnd", default: 0] += 1
            default: break
            }
        }
        let sorted = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        var text = sorted.prefix(5).map { "\($0.key) (\($0.value) stream\($0.value == 1 ? "" : "s"))" }.joined(separator: "; ")
        if sorted.count > 5 { text += "; and \(sorted.count - 5) other differences" }
        return (text, settings.sorted())
    }
}

/// What a worker sends the checkpoint thread: one frame, its first byte the kind.
enum CheckpointMessage: UInt8 {
    /// Followed by a `StreamRecord`.
    case record = 1
    /// The walk asked for is through. Followed by the worker's index (UInt16) and the walk's
    /// number (UInt32, how many walks the worker was asked for), little-endian: a walk that the
    /// checkpoint thread gave up on may end late, and its end must not count for the next one.
    case walkDone = 2
    /// The worker learned its last sample (at stop) and waits for its final walk. Followed by the
    /// worker's index (UInt16, little-endian).
    case drained = 3
    /// The worker holds more parked records (streams unloaded with changes not committed) than
    /// it should keep in memory: a checkpoint now, not at the interval. Followed by the worker's
    /// index (UInt16, little-endian).
    case soon = 4

    /// The message of `worker`: `.walkDone` (with `walk`), `.drained` or `.soon`.
    static func frame(_ kind: CheckpointMessage, worker: Int, walk: UInt32 = 0) -> [UInt8] {
        var frame = [kind.rawValue, UInt8(truncatingIfNeeded: worker), UInt8(truncatingIfNeeded: worker >> 8)]
        if kind == .walkDone { withUnsafeBytes(of: walk.littleEndian) { frame += $0 } }
        return frame
    }
}

/// What the checkpoint thread sends a worker: one byte, on the worker's queue of samples.
enum CheckpointRequest: UInt8 {
    /// Send the streams that changed since their last commit, a slice at a time between batches.
    case walk = 1
    /// The records of the latest walk are committed: their streams count as saved.
    case committed = 2
    /// They are not: the streams stay changed, and the next walk sends them again.
    case failed = 3
    /// At stop, after the final walk (committed or given up): nothing more comes; finish.
    case release = 4
}

/// A worker's walk over its streams during a checkpoint. A stream sent counts as saved (its
/// `savedSeq` moves to the `seq` it was sent at) only once the checkpoint thread says that the
/// walk's records are committed; after a failure, the next walk sends it again.
struct CheckpointWalk {
    /// Streams sent per call between two batches of samples.
    static let slice = 16

    /// The worker walking, named in its done messages.
    let worker: Int
    /// Walks asked for so far: the current one's number.
    private(set) var number: UInt32 = 0
    private var next: Int?
    /// What the current walk goes through, taken when it starts: the ids of the streams in
    /// memory, then those of the parked records (``WorkerStreams``). Ids, not the streams: a
    /// stream unloaded meanwhile leaves memory at once (its parked record is sent instead, in a
    /// later walk if not in this one), and one loaded again is found again.
    private var ids: [(id: [UInt8], hash: UInt64)] = []
    private var parkedIDs: [[UInt8]] = []
    /// The streams sent in the current walk, and the `seq` each was sent at; the parked records
    /// sent, and the generation each was parked at.
    private var sent: [(id: [UInt8], hash: UInt64, seq: Int)] = []
    private var sentParked: [(id: [UInt8], generation: Int)] = []
    private var buffer: [UInt8] = []
    /// The configuration's JSON per input width (the only thing that differs between streams).
    private var modelJSON: [Int: [UInt8]] = [:]

    init(worker: Int) { self.worker = worker }

    var isActive: Bool { next != nil }

    /// Starts a walk over `streams`. What an earlier walk sent and was never confirmed stays
    /// unsaved, and is sent again.
    mutating func start(_ streams: WorkerStreams) {
        number &+= 1
        next = 0
        ids = streams.table.all.map { ($0.id, $0.hash) }
        parkedIDs = streams.parkedIDs
        sent.removeAll(keepingCapacity: true)
        sentParked.removeAll(keepingCapacity: true)
    }

    /// The walk's records are committed: the streams sent count as saved, at the `seq` they were
    /// sent at (a stream that learned since is still changed), and the parked records sent are
    /// in the store.
    mutating func committed(_ streams: inout WorkerStreams) {
        // A stream unloaded since is saved by its parked record; one loaded again since goes on
        // from a state at least as new as the one sent, which the store now holds.
        for (id, hash, seq) in sent {
            if let learner = id.withUnsafeBytes({ streams.find($0, hash: hash) }), learner.savedSeq < seq { learner.savedSeq = seq }
        }
        streams.committed(sentParked)
        failed()
    }

    /// The walk's records are not committed (or the checkpoint thread gave up on it): nothing
    /// counts as saved, and a walk under way stops.
    mutating func failed() {
        sent.removeAll(keepingCapacity: true)
        sentParked.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
        parkedIDs.removeAll(keepingCapacity: true)
        next = nil
    }

    /// The JSON of `configuration`, computed once per input width.
    mutating func modelJSON(_ configuration: ModelConfiguration) -> [UInt8] {
        if let json = modelJSON[configuration.inputs] { return json }
        let json = StreamRecord.modelJSON(configuration)
        modelJSON[configuration.inputs] = json
        return json
    }

    /// Sends the next changed streams' records, a slice of them or, when `final`, all the rest
    /// (waiting for room), then the done message. False when the checkpoint thread had no room
    /// for any.
    mutating func advance(_ streams: WorkerStreams, to socket: borrowing ZMQSocket, final: Bool) throws -> Bool {
        guard var i = next else { return true }
        let flags: ZMQFlags = final ? [] : .dontWait
        var sent = 0
        let now = Date().timeIntervalSince1970
        let total = ids.count + parkedIDs.count
        while i < total, final || sent < Self.slice {
            buffer.removeAll(keepingCapacity: true)
            buffer.append(CheckpointMessage.record.rawValue)
            var parked: (id: [UInt8], generation: Int)?
            var learner: StreamLearner?
            if i < ids.count {
                learner = ids[i].id.withUnsafeBytes { streams.find($0, hash: ids[i].hash) }
                guard let learner, learner.seq != learner.savedSeq else {
                    i += 1
                    continue
                }
                StreamRecord.encode(
                    id: learner.id, forecaster: learner.forecaster, seq: learner.seq, lastTimestamp: learner.policy.latestTime,
                    modelJSON: modelJSON(learner.forecaster.configuration), savedAt: now, into: &buffer)
            } else {
                let id = parkedIDs[i - ids.count]
                guard let record = streams.parked(id) else {
                    i += 1
                    continue
                }
                buffer += record.record
                parked = (id, record.generation)
            }
            switch try buffer.withUnsafeBytes({ try socket.send($0, flags: flags) }) {
            case .sent: break
            case .wouldBlock:
                next = i
                return sent > 0
            case .terminated:
                next = nil
                return true
            }
            if let parked { sentParked.append(parked) } else if let learner { self.sent.append((learner.id, learner.hash, learner.seq)) }
            sent += 1
            i += 1
        }
        next = i
        if i == total {
            let done = CheckpointMessage.frame(.walkDone, worker: worker, walk: number)
            if case .wouldBlock = try done.withUnsafeBytes({ try socket.send($0, flags: flags) }) {
                return sent > 0
            }
            next = nil
        }
        return true
    }
}

extension Daemon {
    /// Opens the store and restores every stream. A database file that is damaged as a whole
    /// (not SQLite, or corrupt pages) is moved aside, kept for inspection, and every stream
    /// starts afresh: the daemon starts rather than refusing to.
    func openAndRestore(_ directory: String) throws -> (CheckpointStore, [RestoredStreams]) {
        var startup = StartupExtension { [notifier] in notifier.extendTimeout($0) }
        startup.progress()
        do {
            let store = try CheckpointStore(directory: directory)
            return (store, try restore(from: store, startup: &startup))
        } catch let error where CheckpointStore.isCorruption(error) || { if case CheckpointStoreError.corrupt = error { true } else { false } }() {
            let aside = try CheckpointStore.moveAside(directory: directory)
            logger.error("checkpoints: \(error); moved to \(aside), every stream starts afresh")
            counters.refuse("checkpoint_store_damaged")
            let store = try CheckpointStore(directory: directory)
            return (store, try restore(from: store, startup: &startup))
        }
    }

    /// Reads every stored stream and builds its learner for the worker that owns it. A record
    /// of an older format is migrated. A record that cannot be used is reported and set aside,
    /// and its stream starts afresh; one that another configuration (or a newer rnnd) could use
    /// is dealt with as `on_model_change` says: refused (throws ``RestoreRefusal`` and changes nothing),
    /// kept in place unloaded, or set aside. A record of a stream that another shard owns is
    /// left in the store, unread: it is another instance's (or was, before a re-sharding), and
    /// restoring it here would learn the stream twice. Then the records set aside longer than
    /// their retention are deleted. While it reads, `startup` tells systemd it is not stuck.
    func restore(from store: CheckpointStore, startup: inout StartupExtension) throws -> [RestoredStreams] {
        let c = configuration
        let started = ContinuousClock.now
        let restored = (0..<c.workers).map { _ in RestoredStreams() }
        var read = 0, bytes = 0, skipped = 0, otherShards = 0
        let shard = c.streamShard
        var lastReport = started
        // Records come in id order, a chunk at a time, and each chunk is decoded and rebuilt on
        // every core: one task per worker, touching only that worker's streams (no locks).
        var chunk: [RestoredStreams.Pending] = []
        func rebuild() {
            let pending = chunk
            DispatchQueue.concurrentPerform(iterations: c.workers) { w in
                let owner = restored[w]
                for p in pending where p.worker == w { owner.rebuild(p, configuration: c) }
            }
            chunk.removeAll(keepingCapacity: true)
            if startup.progress(), ContinuousClock.now - lastReport >= .seconds(10) {
                lastReport = .now
                logger.info("restoring: \(read) streams (\(bytes / 1_000_000) MB) read so far")
            }
        }
        try store.forEachRecord { id, raw in
            let hash = id.withUnsafeBytes { streamHash($0) }
            if let shard, !shard.owns(hash: hash) {
                otherShards += 1
                return
            }
            guard read < c.maxStreams else {
                skipped += 1
                return
            }
            read += 1
            bytes += raw.count
            chunk.append(.init(id: id, hash: hash, worker: workerIndex(hash: hash, workers: c.workers), raw: Array(raw)))
            if chunk.count == 512 { rebuild() }
        }
        rebuild()

        var problems = RestoreProblems()
        var count = 0, migrated: [UInt16: Int] = [:]
        for owner in restored {
            count += owner.learners.count
            migrated.merge(owner.migrated, uniquingKeysWith: +)
            for p in owner.problems { problems.add(p.id, p.problem) }
            owner.problems = []
        }
        let (differences, settings) = problems.summary
        let n = problems.unmatched.count, streams = "\(n) stored stream\(n == 1 ? "" : "s")"
        if n > 0, c.onModelChange == .refuse {
            throw RestoreRefusal(description: """
                \(streams) cannot be restored under this configuration, which gives them another model \
                than they were trained with: \(differences). Nothing was started, so that their learned state \
                stays usable. Put \(settings.isEmpty ? "the model's settings" : settings.joined(separator: ", ")) back as \
                the records have them, or start with on_model_change = "keep" (--on-model-change keep: \
                those streams are not loaded, their records stay as they are and their samples are refused \
                until the configuration matches them again) or "fresh" (--on-model-change fresh: their \
                records are set aside, rnnd checkpoint restore-aside brings them back, and the streams \
                start afresh). docs/checkpoints.md, "Restoring"
                """)
        }
        for p in problems.unusable {
            logger.error(
                "checkpoint set aside: \(p.problem.description); the stream starts afresh",
                metadata: ["stream": "\(printableStreamID(p.id))", "reason": "\(p.problem.reason)"])
            counters.refuse("checkpoint_\(p.problem.reason)")
        }
        var setAside = problems.unusable
        if n > 0 {
            switch c.onModelChange {
            case .refuse: break
            case .keep:
                for p in problems.unmatched {
                    restored[workerIndex(hash: p.id.withUnsafeBytes { streamHash($0) }, workers: c.workers)].held.insert(p.id)
                }
                logger.error("""
                    checkpoints: \(streams) not restored, their records kept as they are (on_model_change = keep): \
                    \(differences). Their samples are refused (model_changed) until a start whose configuration \
                    matches them restores them\(settings.isEmpty ? "" : " (\(settings.joined(separator: ", ")))")
                    """)
            case .fresh:
                setAside += problems.unmatched
                for p in problems.unmatched { counters.refuse("checkpoint_\(p.problem.reason)") }
                logger.warning("""
                    checkpoints: \(streams) set aside and started afresh (on_model_change = fresh): \(differences); \
                    rnnd checkpoint restore-aside brings their records back
                    """)
            }
        }
        try store.setAside(setAside.map { ($0.id, $0.problem.reason, $0.problem.description) })
        startup.progress()
        for (format, n) in migrated.sorted(by: { $0.key < $1.key }) {
            // docs/checkpoints.md, "Format upgrades", says what each format's records become.
            let what = format == 1 ? " (the network as it was, a new forecaster around it)" : ""
            logger.notice("checkpoints: \(n) records of format \(format) migrated to format \(StreamRecord.formatVersion)\(what); the next checkpoint writes them")
        }
        if skipped > 0 {
            logger.warning("\(skipped) stored streams not restored: max_streams is \(c.maxStreams); their records are kept, and each is loaded on its stream's next sample")
        }
        if let shard, otherShards > 0 {
            logger.warning("\(otherShards) stored streams not restored: other shards than \(shard) own them; their records are kept (after a re-sharding, move them to their owners: docs/scaling.md)")
        }
        counters.streams.store(count, ordering: .relaxed)
        let seconds = (ContinuousClock.now - started).seconds
        let notes = (setAside.isEmpty ? [] : ["\(setAside.count) set aside"])
            + (c.onModelChange == .keep && n > 0 ? ["\(n) kept unloaded"] : [])
        logger.info("restored \(count) streams (\(bytes / 1_000_000) MB) from \(store.path) in \(String(format: "%.2f", seconds)) s\(notes.isEmpty ? "" : "; " + notes.joined(separator: ", "))")

        // Housekeeping: neither stops the start when it fails (another connection holding the
        // database past the busy timeout, say); the next start tries again.
        do {
            let pruned = try store.pruneSetAside(days: c.setAsideDays, perStream: c.setAsidePerStream)
            if pruned.records > 0 {
                logger.notice("checkpoints: deleted \(pruned.records) records set aside (\(pruned.bytes / 1_000_000) MB): older than set_aside_days = \(c.setAsideDays) or beyond the newest set_aside_per_stream = \(c.setAsidePerStream) of their stream")
            }
        } catch {
            logger.warning("checkpoints: the records set aside were not pruned: \(error)")
        }
        startup.progress()
        do { try store.truncateLog() } catch { logger.warning("checkpoints: the write-ahead log was not emptied: \(error)") }
        return restored
    }

    func checkpointer(_ context: ZMQContext, store: CheckpointStore, gate: StartupGate) {
        // Below the sample path in the scheduler's eyes (nice 10; on Linux the nice value is the
        // calling thread's, not the process's), so that when the cores are busy a checkpoint
        // takes longer rather than the forecasts.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        do {
            try checkpointerLoop(context, store: store, gate: gate)
        } catch {
            if !gate.report(error: "checkpoints: \(error)") { fail("checkpoints: \(error)") }
        }
    }

    /// Asks the workers for their changed streams every interval and writes each checkpoint in
    /// one transaction, retrying a failed one sooner; at stop, commits each worker's final streams
    /// on their own (``finalCheckpoint``), then returns.
    private func checkpointerLoop(_ context: ZMQContext, store: CheckpointStore, gate: StartupGate) throws {
        let c = configuration
        let pull = try ZMQSocket(context, type: .pull)
        try pull.setReceiveHighWaterMark(256)
        try pull.setReceiveTimeout(.milliseconds(100))
        try pull.bind(Self.checkpointsAddress)
        let requests = UnsafeMutablePointer<ZMQSocket>.allocate(capacity: c.workers)
        var made = 0
        defer {
            requests.deinitialize(count: made)
            requests.deallocate()
        }
        for i in 0..<c.workers {
            let push = try ZMQSocket(context, type: .push)
            try push.setLinger(.zero)
            try push.connect(Self.workerAddress(i))
            (requests + i).initialize(to: push)
            made += 1
        }
        _ = gate.report(error: nil)

        var walks = [UInt32](repeating: 0, count: c.workers)  // walks asked of each worker
        var drained = Set<Int>()  // workers that learned their last sample (at stop)

        /// Sends `worker` a request; false when its queue had no room (unless `wait`).
        func send(_ request: CheckpointRequest, to worker: Int, wait: Bool) throws -> Bool {
            let sent = try [request.rawValue].withUnsafeBytes { (b) throws(ZMQError) in
                try requests[worker].send(b, flags: wait ? [] : .dontWait)
            }
            guard case .sent = sent else { return false }
            if request == .walk { walks[worker] &+= 1 }
            return true
        }

        var soon = false  // a worker asked for a checkpoint before the interval
        /// Notes a worker's message outside a checkpoint: `drained` and `soon` matter; a record or
        /// the end of a walk given up on comes late, and is dropped.
        func note(_ frame: [UInt8]) {
            guard frame.count == 3 else { return }
            if frame[0] == CheckpointMessage.drained.rawValue { drained.insert(Int(frame[1]) | Int(frame[2]) << 8) }
            if frame[0] == CheckpointMessage.soon.rawValue { soon = true }
        }

        /// Waits up to `duration` (0: one receive), noting what arrives; false once the context is
        /// shut down.
        func idle(_ duration: Duration) throws -> Bool {
            let end = ContinuousClock.now + duration
            repeat {
                beats.add(checkpointerBeat, 1)
                switch try pull.receiveFrames() {
                case .frames(let frames): if let frame = frames.first { note(frame) }
                case .wouldBlock: break
                case .terminated: return false
                }
            } while ContinuousClock.now < end
            return true
        }

        /// One checkpoint: asks `workers` for their changed streams, writes the records as they
        /// come into one transaction and commits once every worker asked is through, then tells
        /// each the outcome. Returns the records and bytes written (nil when no worker had room
        /// for the request); throws, having committed nothing, when it fails.
        func attempt(_ workers: [Int], final: Bool, deadline: ContinuousClock.Instant?) throws -> (records: Int, bytes: Int)? {
            var waitingFor = Set<Int>()
            for w in workers where try send(.walk, to: w, wait: final) { waitingFor.insert(w) }
            let asked = waitingFor
            if asked.isEmpty { return nil }
            var written = 0, bytes = 0
            var failure: (any Error)?
            do {
                try store.transaction { writer in
                    func handle(_ frame: [UInt8]) {
                        guard let kind = frame.first.flatMap(CheckpointMessage.init(rawValue:)) else { return }
                        switch kind {
                        case .record:
                            // After a failed write SQLite may have rolled the transaction back
                            // already: the rest is read (the workers finish their walks) and dropped.
                            guard failure == nil else { return }
                            frame.withUnsafeBytes { raw in
                                let record = UnsafeRawBufferPointer(rebasing: raw[1...])
                                guard let (id, savedAt) = StreamRecord.peek(record) else { return }
                                do { try writer.put(id: id, record: Data(record), savedAt: savedAt) } catch {
                                    failure = error
                                }
                                written += 1
                                bytes += record.count
                            }
                        case .walkDone:
                            guard frame.count == 7 else { return }
                            let worker = Int(frame[1]) | Int(frame[2]) << 8
                            let walk = frame[3...].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
                            if worker < walks.count, walk == walks[worker] { waitingFor.remove(worker) }
                        case .drained, .soon:
                            note(frame)
                        }
                    }
                    var lastHeard = ContinuousClock.now
                    while !waitingFor.isEmpty {
                        beats.add(checkpointerBeat, 1)
                        switch try pull.receiveFrames() {
                        case .frames(let frames):
                            lastHeard = ContinuousClock.now
                            if let frame = frames.first { handle(frame) }
                        case .wouldBlock:
                            // Only a worker that stopped on an error falls silent this long.
                            if ContinuousClock.now - lastHeard > .seconds(10) {
                                throw CheckpointFailure.workersSilent(waitingFor.sorted())
                            }
                        case .terminated:
                            throw CheckpointFailure.shutDown
                        }
                        if let deadline, ContinuousClock.now > deadline { throw CheckpointFailure.outOfTime(c.stopTimeout) }
                    }
                    if let failure { throw failure }
                }
            } catch {
                for w in asked { _ = try? send(.failed, to: w, wait: final) }
                throw error
            }
            for w in asked { _ = try send(.committed, to: w, wait: final) }
            counters.checkpoints.add(1, ordering: .relaxed)
            counters.lastCheckpoint.store(Int(Date().timeIntervalSince1970), ordering: .relaxed)
            if let run = checkpointFailures.committed() {
                logger.notice(
                    "checkpoints commit again, after \(run.attempts) failed attempt\(run.attempts == 1 ? "" : "s") since \(Date(timeIntervalSince1970: run.since).formatted(.iso8601))")
            }
            return (written, bytes)
        }

        // Periodic checkpoints, until the workers drain at stop.
        let interval = Duration.seconds(c.checkpointInterval)
        var due = ContinuousClock.now + interval
        var failedInARow = 0
        while drained.isEmpty, !stopping.load(ordering: .relaxed) {
            guard try idle(.zero) else { return }
            guard ContinuousClock.now >= due || (soon && failedInARow == 0), drained.isEmpty, !stopping.load(ordering: .relaxed) else {
                continue
            }
            soon = false
            let started = ContinuousClock.now
            logger.debug("checkpoint: started, asking \(c.workers) workers")
            do {
                due = started + interval
                guard let (written, bytes) = try attempt(Array(0..<c.workers), final: false, deadline: nil) else { continue }
                failedInARow = 0
                let seconds = (ContinuousClock.now - started).seconds
                timings?.checkpoints.observe(UInt64(seconds * 1e9), slot: 0)
                logger.debug("checkpoint: \(written) streams (\(bytes / 1000) kB) in \(String(format: "%.3f", seconds)) s")
            } catch CheckpointFailure.shutDown {
                return
            } catch {
                // Sooner than the interval: 1, 2, 4, ... seconds after the failure, at most the interval.
                failedInARow += 1
                let retry = min(interval, .seconds(1 << min(failedInARow - 1, 20)))
                due = ContinuousClock.now + retry
                let reason = checkpointFailed(error)
                let line = "checkpoint failed (\(reason.rawValue), \(failedInARow) in a row); nothing of it was committed, its streams "
                    + "stay unsaved and the next attempt, in \(retry), writes them: \(error)"
                logger.error("\(line)")
            }
        }
        try finalCheckpoint(
            attempt: { try attempt([$0], final: true, deadline: $1) }, idle: idle, drained: { drained },
            release: { _ = try send(.release, to: $0, wait: true) })
    }

    /// At stop: commits each worker's final streams in a transaction of its own, as each worker
    /// drains (one worker that is slow or whose records cannot be written costs the others
    /// nothing), retrying failures with a growing pause within the stop budget. Sets
    /// ``finalCheckpointSaved`` when every worker's streams are committed.
    private func finalCheckpoint(
        attempt: (_ worker: Int, _ deadline: ContinuousClock.Instant) throws -> (records: Int, bytes: Int)?,
        idle: (Duration) throws -> Bool, drained: () -> Set<Int>, release: (Int) throws -> Void
    ) throws {
        let c = configuration
        let started = ContinuousClock.now
        // The main thread waits for the threads until `stopTimeout` − 3 s after the stop; the
        // attempts end a second before that (one under way then is given up).
        let stoppedAt = stopRequested.load(ordering: .relaxed)
        let budget = Duration.seconds(c.stopTimeout) - .seconds(4)
        let elapsed = stoppedAt == 0 ? .zero : Duration.nanoseconds(Int64(monotonicNanoseconds() &- stoppedAt))
        let deadline = started + budget - elapsed
        var pending = Set(0..<c.workers)
        var failures: [Int: Int] = [:]
        var written = 0, bytes = 0, longest = Duration.zero, pause = Duration.milliseconds(500)
        var lastError = ""
        while !pending.isEmpty {
            // The workers drained and not committed yet, those tried least first.
            let ready = pending.intersection(drained())
            guard let w = ready.min(by: { (failures[$0, default: 0], $0) < (failures[$1, default: 0], $1) }) else {
                if ContinuousClock.now >= deadline { break }
                guard try idle(.milliseconds(100)) else { return }
                continue
            }
            if failures[w, default: 0] > 0 {
                // A retry, after a pause that grows, only when it can end before the deadline.
                if ContinuousClock.now + pause + longest > deadline { break }
                guard try idle(pause) else { return }
                pause *= 2
            } else if ContinuousClock.now >= deadline {
                break
            }
            let attemptStarted = ContinuousClock.now
            do {
                if let (n, b) = try attempt(w, deadline) {
                    written += n
                    bytes += b
                    pending.remove(w)
                    try release(w)
                    logger.debug("final checkpoint: worker \(w)'s \(n) streams (\(b / 1000) kB) committed")
                    continue
                }
            } catch CheckpointFailure.shutDown {
                return
            } catch {
                let reason = checkpointFailed(error)
                lastError = "\(reason.rawValue): \(error)"
                logger.error("final checkpoint: worker \(w)'s streams not committed (attempt \(failures[w, default: 0] + 1)): \(error)")
            }
            failures[w, default: 0] += 1
            longest = max(longest, ContinuousClock.now - attemptStarted)
        }
        let seconds = (ContinuousClock.now - started).seconds
        if pending.isEmpty {
            finalCheckpointSaved.store(true, ordering: .relaxed)
            timings?.checkpoints.observe(UInt64(seconds * 1e9), slot: 0)
            logger.info("checkpoint: \(written) streams (\(bytes / 1000) kB) in \(String(format: "%.3f", seconds)) s")
            return
        }
        let unsaved = pending.sorted()
        let workers = "worker\(unsaved.count == 1 ? "" : "s") " + unsaved.map(String.init).joined(separator: ", ")
        let attempts = failures.values.reduce(0, +)
        let why = lastError.isEmpty ? "they did not drain in time" : "\(attempts) attempts failed, the latest: \(lastError)"
        let others = unsaved.count == c.workers ? "" : "; the other workers' \(written) streams are committed"
        let line = "final checkpoint failed after \(String(format: "%.1f", seconds)) s: what the streams of \(workers) learned since "
            + "their last commit is not saved (\(why)); the store keeps their previous checkpoint\(others)"
        logger.critical("\(line)")
        for w in unsaved where drained().contains(w) { try release(w) }
    }

    /// Counts a failed attempt and notes it for `/healthz`; returns its reason.
    private func checkpointFailed(_ error: any Error) -> CheckpointFailureReason {
        let reason: CheckpointFailureReason =
            switch StoreWriteFailure(error) {
            case .diskFull: .diskFull
            case .ioError: .ioError
            case .readOnly: .readOnly
            case .busy: .busy
            case .corrupt: .corrupt
            case nil: if case CheckpointFailure.workersSilent = error { .workersSilent } else { .other }
            }
        let text = "\(error)".replacingOccurrences(of: "\n", with: " ")
        checkpointFailures.failed(reason, error: text, at: Date().timeIntervalSince1970)
        return reason
    }
}

enum CheckpointFailure: Error, CustomStringConvertible {
    case workersSilent([Int])
    case shutDown
    /// The final checkpoint's share of the stop budget (`stop_timeout`, in seconds) ran out.
    case outOfTime(Double)

    var description: String {
        switch self {
        case .workersSilent(let workers): "workers \(workers) sent nothing for 10 s"
        case .shutDown: "the daemon shut down during the checkpoint"
        case .outOfTime(let budget): "the stop budget ran out (stop_timeout \(budget) s)"
        }
    }
}
