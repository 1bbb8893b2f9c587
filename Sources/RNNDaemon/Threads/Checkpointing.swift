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
// changed. A worker answers between batches of samples, a few streams at a time, so the sample
// path never stops for a whole checkpoint; the checkpoint thread writes what arrives into one
// SQLite transaction and commits when every worker is through. On stop, each worker sends
// every changed stream once more after its last sample, so nothing learned is lost.

/// The streams a worker starts with: restored learners and the workspaces they compute in.
/// Built on the main thread before the worker exists, then owned by the worker alone.
final class RestoredStreams: @unchecked Sendable {
    var learners: [StreamLearner] = []
    var workspaces: [Int: TrainingWorkspace<Float>] = [:]
    /// Records that could not be used, for the caller to report and act on (by the
    /// configuration's `onModelChange`, or set aside).
    var problems: [(id: [UInt8], problem: RecordProblem)] = []
    /// Records of format 1, migrated as they were read.
    var migrated = 0
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
            let record = try StreamRecord.decode(p.raw, template: c.model)
            guard record.id == p.id else { throw RecordProblem.unreadableConfiguration("it names stream \(record.printableID)") }
            let current = c.modelConfiguration(inputs: record.model.inputs)
            let workspace = workspaces[current.inputs] ?? TrainingWorkspace(current)
            workspaces[current.inputs] = workspace
            let learner = StreamLearner(id: p.id, hash: p.hash, forecaster: try record.forecaster(current: current, workspace: workspace))
            learner.seq = record.seq
            learner.policy = StreamPolicy(width: record.model.inputs, latestTime: record.lastTimestamp)
            learner.savedSeq = record.seq
            if record.formatRead != StreamRecord.formatVersion {
                // Written in the current format at the next checkpoint, whether it learns or not.
                learner.savedSeq = -1
                migrated += 1
            }
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
        "linear_lags": "model.linear_lags (--linear-lags)", "optimizer": "model.optimizer (--optimizer)",
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
    /// The periodic walk is through.
    case walkDone = 2
    /// The walk at stop is through; the worker sends nothing more.
    case finalDone = 3
    // Both done messages carry the worker's index (UInt16, little-endian) after the kind.
}

/// A worker's walk over its streams during a checkpoint.
struct CheckpointWalk {
    /// The one-byte requests the checkpoint thread sends a worker.
    static let requestChanged: UInt8 = 1, requestAll: UInt8 = 2
    /// Streams sent per call between two batches of samples.
    static let slice = 16

    /// The worker walking, named in its done messages.
    let worker: Int
    private var next: Int?
    private var all = false
    private var buffer: [UInt8] = []
    /// The configuration's JSON per input width (the only thing that differs between streams).
    private var modelJSON: [Int: [UInt8]] = [:]

    init(worker: Int) { self.worker = worker }

    var isActive: Bool { next != nil }

    /// Starts over from the first stream: `all` sends unchanged streams too (after a failed
    /// checkpoint, whose records may not have been committed).
    mutating func start(all: Bool) {
        next = 0
        self.all = all
    }

    /// Sends the next streams' records, a slice of them or, when `final`, all the rest (waiting
    /// for room). False when the checkpoint thread had no room for any.
    mutating func advance(_ learners: [StreamLearner], to socket: borrowing ZMQSocket, final: Bool) throws -> Bool {
        guard var i = next else { return true }
        let flags: ZMQFlags = final ? [] : .dontWait
        var sent = 0
        let now = Date().timeIntervalSince1970
        while i < learners.count, final || sent < Self.slice {
            let learner = learners[i]
            if all || learner.seq != learner.savedSeq {
                let inputs = learner.forecaster.configuration.inputs
                let json = modelJSON[inputs] ?? StreamRecord.modelJSON(learner.forecaster.configuration)
                modelJSON[inputs] = json
                buffer.removeAll(keepingCapacity: true)
                buffer.append(CheckpointMessage.record.rawValue)
                StreamRecord.encode(
                    id: learner.id, forecaster: learner.forecaster, seq: learner.seq, lastTimestamp: learner.policy.latestTime,
                    modelJSON: json, savedAt: now, into: &buffer)
                switch try buffer.withUnsafeBytes({ try socket.send($0, flags: flags) }) {
                case .sent: break
                case .wouldBlock:
                    next = i
                    return sent > 0
                case .terminated:
                    next = nil
                    return true
                }
                learner.savedSeq = learner.seq
                sent += 1
            }
            i += 1
        }
        next = i
        if i == learners.count {
            let done = final ? CheckpointMessage.finalDone : .walkDone
            let message = [done.rawValue, UInt8(truncatingIfNeeded: worker), UInt8(truncatingIfNeeded: worker >> 8)]
            if case .wouldBlock = try message.withUnsafeBytes({ try socket.send($0, flags: flags) }) {
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
    /// of format 1 is migrated. A record that cannot be used is reported and set aside, and its
    /// stream starts afresh; one that another configuration (or a newer rnnd) could use is dealt
    /// with as `on_model_change` says: refused (throws ``RestoreRefusal`` and changes nothing),
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
        var count = 0, migrated = 0
        for owner in restored {
            count += owner.learners.count
            migrated += owner.migrated
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
        if migrated > 0 {
            logger.notice("checkpoints: \(migrated) records of format 1 migrated to format \(StreamRecord.formatVersion) (the network as it was, a new forecaster around it); the next checkpoint writes them")
        }
        if skipped > 0 {
            logger.warning("\(skipped) stored streams not restored: max_streams is \(c.maxStreams); their records are kept")
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
    /// one transaction; returns once every worker has sent its streams at stop.
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

        let interval = Duration.milliseconds(Int64(c.checkpointInterval * 1000))
        var due = ContinuousClock.now + interval
        var finished = Set<Int>()  // workers that sent their streams at stop: they send no more
        var lastFailed = false
        while finished.count < c.workers {
            beats.add(checkpointerBeat, 1)
            var first: [UInt8]?
            switch try pull.receiveFrames() {
            case .frames(let frames): first = frames.first
            case .wouldBlock: break
            case .terminated: return
            }
            // A checkpoint starts when one is due (unless stopping: the workers then send their
            // streams unasked), or when a worker sends streams unasked: at stop.
            var waitingFor: Set<Int>
            if first != nil {
                waitingFor = Set(0..<c.workers).subtracting(finished)
            } else if ContinuousClock.now >= due, !stopping.load(ordering: .relaxed) {
                due = ContinuousClock.now + interval
                waitingFor = []
                let request = lastFailed ? CheckpointWalk.requestAll : CheckpointWalk.requestChanged
                for i in 0..<c.workers where !finished.contains(i) {
                    let sent = try [request].withUnsafeBytes { (b) throws(ZMQError) in try requests[i].send(b, flags: ZMQFlags.dontWait) }
                    if case .sent = sent {
                        waitingFor.insert(i)
                    }
                }
                if waitingFor.isEmpty { continue }
                logger.debug("checkpoint: started, asking \(waitingFor.count) workers")
            } else {
                continue
            }
            let started = ContinuousClock.now
            var written = 0, bytes = 0, final = false
            var failure: (any Error)?
            do {
                try store.transaction { writer in
                    func handle(_ frame: [UInt8]) {
                        guard let kind = frame.first.flatMap(CheckpointMessage.init(rawValue:)) else { return }
                        switch kind {
                        case .record:
                            frame.withUnsafeBytes { raw in
                                let record = UnsafeRawBufferPointer(rebasing: raw[1...])
                                guard let (id, savedAt) = StreamRecord.peek(record) else { return }
                                do { try writer.put(id: id, record: Data(record), savedAt: savedAt) } catch {
                                    if failure == nil { failure = error }
                                }
                                written += 1
                                bytes += record.count
                            }
                        case .walkDone, .finalDone:
                            guard frame.count == 3 else { return }
                            let worker = Int(frame[1]) | Int(frame[2]) << 8
                            waitingFor.remove(worker)
                            if kind == .finalDone {
                                finished.insert(worker)
                                final = true
                            }
                        }
                    }
                    if let first { handle(first) }
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
                    }
                    if let failure { throw failure }
                }
                lastFailed = false
                counters.checkpoints.add(1, ordering: .relaxed)
                counters.lastCheckpoint.store(Int(Date().timeIntervalSince1970), ordering: .relaxed)
            } catch {
                lastFailed = true
                counters.checkpointsFailed.add(1, ordering: .relaxed)
                logger.error("checkpoint failed; nothing of it was committed, the next one writes every stream: \(error)")
            }
            let seconds = (ContinuousClock.now - started).seconds
            let line: Logger.Message = "checkpoint: \(written) streams (\(bytes / 1000) kB) in \(String(format: "%.3f", seconds)) s"
            if !lastFailed {
                timings?.checkpoints.observe(UInt64(seconds * 1e9), slot: 0)
                logger.log(level: final ? .info : .debug, line)
            }
        }
    }
}

enum CheckpointFailure: Error, CustomStringConvertible {
    case workersSilent([Int])
    case shutDown

    var description: String {
        switch self {
        case .workersSilent(let workers): "workers \(workers) sent nothing for 10 s"
        case .shutDown: "the daemon shut down during the checkpoint"
        }
    }
}
