// A worker thread (docs/architecture.md, "The path of a sample"): owns a share of the streams
// (`StreamTable`); for each sample, the stream policy (RNNWire's `StreamPolicy`), then predict,
// hand the forecast to the publisher, learn; and, when asked, writes its streams' records for a
// checkpoint (Checkpointing.swift).

import Foundation
import Logging
import RNNBasics
import RNNCore
import RNNMetrics
import RNNState
import RNNWire
import Synchronization
import ZeroMQ

extension Daemon {
    /// The bytes of a worker's parked records (streams unloaded with changes no checkpoint holds
    /// yet) past which it asks for a checkpoint now, once per walk, rather than at the interval;
    /// and past which it refuses new streams rather than park more, the store not keeping up.
    static let parkedSoftBudget = 16 << 20
    static let parkedHardBudget = 64 << 20

    func worker(_ index: Int, _ context: ZMQContext, restored: RestoredStreams, gate: StartupGate) {
        do {
            try workerLoop(index, context, restored: restored, gate: gate)
        } catch {
            if !gate.report(error: "worker \(index): \(error)") { fail("worker \(index): \(error)") }
        }
    }

    private func workerLoop(_ index: Int, _ context: ZMQContext, restored: RestoredStreams, gate: StartupGate) throws {
        let c = configuration
        let pull = try ZMQSocket(context, type: .pull)
        try pull.setReceiveHighWaterMark(c.queueCapacity)
        try pull.bind(Self.workerAddress(index))
        // Idle, the loop still turns twice a second: its progress is what the watchdog sees.
        try pull.setReceiveTimeout(.milliseconds(500))
        let push = try ZMQSocket(context, type: .push)
        try push.setSendHighWaterMark(c.queueCapacity)
        try push.setLinger(.seconds(2))
        try push.connect(Self.forecastsAddress)
        let checkpoints = try ZMQSocket(context, type: .push)
        try checkpoints.setSendHighWaterMark(64)
        try checkpoints.setLinger(.seconds(5))
        try checkpoints.connect(Self.checkpointsAddress)
        _ = gate.report(error: nil)

        var message = ZMQMultipartBuffer(
            maxFrames: 1, capacity: RecordBatch.capacity(largestRecord: SampleRecord.size(idLength: WireLimits.maxTopicBytes, count: c.maxInputs)))
        let values = UnsafeMutablePointer<Float>.allocate(capacity: c.maxInputs)
        defer { values.deallocate() }
        let maxOutputs = c.model.horizon * c.maxInputs
        let forecasts = RecordBatch(
            largestRecord: ForecastRecord.size(idLength: WireLimits.maxTopicBytes, values: maxOutputs, channels: c.maxInputs))
        // The store, read-only, for streams unloaded earlier (WorkerStreams.swift); without it a
        // stream that comes back starts afresh, which the log says.
        var reader: CheckpointStore?
        do {
            let directory = c.resolvedStateDirectory(environment: ProcessInfo.processInfo.environment)
            reader = try CheckpointStore(directory: directory, create: false, readOnly: true)
        } catch {
            logger.error("worker \(index): cannot read the checkpoint store, so unloaded streams that come back start afresh: \(error)")
        }
        var streams = WorkerStreams(store: reader)
        var workspaces = restored.workspaces
        let held = restored.held
        let started = monotonicNanoseconds()
        for learner in restored.learners {
            learner.lastSample = started
            streams.insert(learner)
            learner.metricsSlot = quality?.streams.claim(learner.id)
        }
        var log = RateLimitedLog(logger: logger)
        var walk = CheckpointWalk(worker: index)
        var drained = false  // the stop marker came: no samples follow
        var settings = runtime.current, generation = 0
        let updateTimes = timings?.updates

        /// Hands the publisher the forecasts batched so far; false once the context is shutting down.
        func flush() throws -> Bool {
            defer { forecasts.clear() }
            let room = queues.reserve(c.workers, forecasts.count)
            let sent = room ? try push.send(forecasts.frame, flags: .dontWait) : .wouldBlock
            switch sent {
            case .sent: return true
            case .wouldBlock:
                if room { queues.release(c.workers, forecasts.count) }
                let r = DropReason.forecastQueueFull
                counters.refuse(r.rawValue, count: forecasts.count)
                log.warning(reason: r.rawValue, message: "the publisher's queue is full; \(forecasts.count) forecasts not published", stream: nil)
                return true
            case .terminated: return false
            }
        }

        /// Takes `learner` out of memory, its record parked until a checkpoint commits it unless
        /// its latest state is committed already (WorkerStreams.swift).
        var askedSoon = false
        func unload(_ learner: StreamLearner, _ why: String) {
            defer {
                if !askedSoon, streams.parkedBytes > Self.parkedSoftBudget {
                    let frame = CheckpointMessage.frame(.soon, worker: index)
                    if case .sent = (try? frame.withUnsafeBytes { try checkpoints.send($0, flags: .dontWait) }) ?? .wouldBlock { askedSoon = true }
                }
            }
            logger.debug("stream unloaded (\(why))", metadata: ["stream": "\(printableStreamID(learner.id))", "seq": "\(learner.seq)"])
            // Its channel watch leaves with it (it is not in the record): so do its stuck channels.
            counters.stuckChannels.subtract(learner.channels.stuck.count, ordering: .relaxed)
            streams.unload(learner) { l, record in
                StreamRecord.encode(
                    id: l.id, forecaster: l.forecaster, seq: l.seq, lastTimestamp: l.policy.latestTime,
                    modelJSON: walk.modelJSON(l.forecaster.configuration), savedAt: Date().timeIntervalSince1970, into: &record)
            }
            counters.streams.subtract(1, ordering: .relaxed)
        }

        /// The stream `id` as it was when unloaded, if it was: `.none` for a stream never seen (or
        /// whose record cannot be read: it starts afresh, and the log says why), `.refused` when
        /// its stored record has another model shape (kept, as at start-up with `keep`).
        func reload(_ id: [UInt8], hash: UInt64) -> Reloaded {
            let found: (record: [UInt8], savedSeq: Int?)?
            do { found = try streams.takeRecord(id) } catch {
                id.withUnsafeBytes { log.warning(reason: "reload_failed", message: "cannot read the stream's saved state; it starts afresh: \(error)", stream: $0) }
                return .none
            }
            guard let found else { return .none }
            do throws(RecordProblem) {
                let (learner, _) = try StreamLearner.restored(
                    id: id, hash: hash, record: found.record, configuration: c, workspaces: &workspaces)
                // A parked record is not in the store: the stream has what it had to save still.
                if let savedSeq = found.savedSeq { learner.savedSeq = savedSeq }
                return .loaded(learner)
            } catch {
                if case .modelChanged = error {
                    let r = StreamRejection.modelChanged
                    counters.refuse(r.rawValue)
                    id.withUnsafeBytes { log.warning(reason: r.rawValue, message: "the stream's saved state has another model shape (\(error)); kept, not loaded", stream: $0) }
                    return .refused
                }
                id.withUnsafeBytes { log.warning(reason: "reload_failed", message: "the stream's saved state cannot be used; it starts afresh: \(error)", stream: $0) }
                return .none
            }
        }

        /// Predicts, queues the forecast, then learns: one sample record.
        func handle(_ frame: UnsafeRawBufferPointer) throws -> Bool {
            let sample = SampleRecord.read(frame)
            for i in 0..<sample.count { values[i] = sample.value(i) }
            let hash = streamHash(sample.id)
            let learner: StreamLearner
            if let known = streams.find(sample.id, hash: hash) {
                learner = known
            } else if !held.isEmpty, held.contains(Array(sample.id)) {
                // Its stored record has another model shape and stays as it is (on_model_change = keep).
                let r = StreamRejection.modelChanged
                counters.refuse(r.rawValue)
                log.warning(reason: r.rawValue, message: "the stream's stored record has another model shape; kept, not loaded (on_model_change = keep)", stream: sample.id)
                return true
            } else {
                let id = Array(sample.id)
                // Room: past max_streams, this worker's least recently used stream leaves memory
                // (saved). A worker with no stream to give, or whose unloaded streams waiting
                // for a checkpoint pass their budget (the store does not keep up), refuses the
                // new one. The count never passes max_streams, whatever the other workers do.
                var refusal: String?
                var streamsNow = counters.streams.load(ordering: .relaxed)
                while refusal == nil {
                    if streamsNow < c.maxStreams {
                        let (exchanged, found) = counters.streams.compareExchange(
                            expected: streamsNow, desired: streamsNow + 1, ordering: .relaxed)
                        if exchanged { break }
                        streamsNow = found
                    } else if streams.parkedBytes > Self.parkedHardBudget {
                        refusal = "the streams unloaded for room and waiting for a checkpoint hold \(streams.parkedBytes >> 20) MiB: the store does not keep up"
                    } else if let oldest = streams.leastRecentlyUsed() {
                        unload(oldest, "max_streams")
                        counters.unloadedForRoom.add(1, ordering: .relaxed)
                        streamsNow = counters.streams.load(ordering: .relaxed)
                    } else {
                        refusal = "\(c.maxStreams) streams exist (--max-streams), none of them on this worker"
                    }
                }
                if let refusal {
                    let r = StreamRejection.tooManyStreams
                    counters.refuse(r.rawValue)
                    log.warning(reason: r.rawValue, message: "\(refusal): the new stream is refused", stream: sample.id)
                    return true
                }
                streamsNow += 1
                // Back from its saved state if it was unloaded (parked here, or in the store).
                var back: StreamLearner?
                switch reload(id, hash: hash) {
                case .loaded(let l): back = l
                case .none: back = nil
                case .refused:
                    counters.streams.subtract(1, ordering: .relaxed)
                    return true
                }
                if let back {
                    learner = back
                    counters.reloaded.add(1, ordering: .relaxed)
                } else {
                    let model = c.modelConfiguration(inputs: sample.count)
                    let workspace = workspaces[sample.count] ?? TrainingWorkspace(model)
                    workspaces[sample.count] = workspace
                    learner = StreamLearner(
                        id: id, hash: hash, forecaster: Forecaster(configuration: model, workspace: workspace), clock: c.clockPolicy)
                    logger.debug("new stream", metadata: ["stream": "\(String(decoding: sample.id, as: UTF8.self))", "inputs": "\(sample.count)"])
                    // At info, only the milestones, each once: a burst of 10,000 new streams
                    // writes 5 lines, and a churn at max_streams no more.
                    if milestones.reached(streamsNow) { logger.info("\(streamsNow) stream\(streamsNow == 1 ? "" : "s")") }
                }
                learner.forecaster.learningRate = settings.learningRate
                learner.forecaster.trainer.clipThreshold = settings.clipThreshold
                learner.metricsSlot = quality?.streams.claim(learner.id)
                streams.insert(learner)
            }
            learner.lastSample = monotonicNanoseconds()
            // The stream's policy (width, then time: the future-time check's reference clock is this
            // host's, docs/protocol.md, "Clock faults"), then its channels (missing values); the
            // policy takes the sample in only when both accept it.
            let now = sample.timestamp == nil ? nil : wallClockSeconds()
            switch learner.policy.admit(width: sample.count, time: sample.timestamp, now: now, values: values, channels: &learner.channels) {
            case .accepted: break
            case .clockReset:
                counters.clockResets.add(1, ordering: .relaxed)
                log.notice(
                    reason: "clock_reset",
                    message: "the stream's clock was set back: \(c.clockResetAfter) samples in a row before its latest time; "
                        + "their last is accepted and its time, \(sample.timestamp ?? 0), is the stream's latest",
                    stream: sample.id)
            case .refused(let reason):
                counters.refuse(reason.rawValue)
                let detail = switch reason {
                case .futureTime: "t \(sample.timestamp ?? 0) is more than \(c.maxClockSkew) s ahead of this host's clock"
                case .outOfOrder, .duplicateTimestamp: "t \(sample.timestamp ?? 0), the stream's latest \(learner.policy.latestTime ?? 0)"
                case .allChannelsMissing: "every value is null"
                case .nothingToCarry: "a null value of a channel with no value yet to carry forward"
                default: "width \(sample.count), stream width \(learner.forecaster.configuration.inputs)"
                }
                log.warning(reason: reason.rawValue, message: "sample refused (\(reason.rawValue)): \(detail)", stream: sample.id)
                return true
            }
            let watch = learner.channels
            if !watch.missing.isEmpty { counters.missingValues.add(watch.missing.count, ordering: .relaxed) }
            if let slot = learner.metricsSlot { quality?.streams.updateChannels(slot, carried: watch.carriedTotal, stuck: watch.stuck.count) }
            if !watch.becameStuck.isEmpty || !watch.recovered.isEmpty {
                counters.stuckChannels.add(watch.becameStuck.count - watch.recovered.count, ordering: .relaxed)
                counters.stuckEpisodes.add(watch.becameStuck.count, ordering: .relaxed)
                for j in watch.becameStuck {
                    log.notice(
                        reason: "stuck", message: "channel \(j) is stuck: the same value \(values[Int(j)]) for \(watch.runLength(Int(j))) samples, far longer than usual for it",
                        stream: sample.id)
                }
                for j in watch.recovered {
                    log.notice(reason: "stuck_recovered", message: "channel \(j) is no longer stuck: its value changed", stream: sample.id)
                }
            }
            let forecaster = learner.forecaster
            let before = forecaster.counters
            forecaster.predict(values, time: sample.timestamp)
            quality?.observe(forecaster, since: before, worker: index, slot: learner.metricsSlot)
            learner.seq += 1
            counters.accepted.add(1, ordering: .relaxed)
            let after = forecaster.counters
            if after.outliers > before.outliers { counters.outliers.add(after.outliers - before.outliers, ordering: .relaxed) }
            if after.levelShifts > before.levelShifts { counters.levelShifts.add(after.levelShifts - before.levelShifts, ordering: .relaxed) }
            if after.segments > before.segments { counters.segments.add(after.segments - before.segments, ordering: .relaxed) }
            if forecaster.driftDetected {
                counters.drifts.add(1, ordering: .relaxed)
                log.notice(
                    reason: "drift",
                    message: "drift: the forecast errors grew and stayed grown; learning rate ×\(Forecaster.driftBoost) "
                        + "easing back over \(Forecaster.driftBoostSamples) samples; the linear model's covariance reset",
                    stream: sample.id)
            }
            let size = ForecastRecord.size(idLength: sample.id.count, values: forecaster.outputs, channels: sample.count)
            if !forecasts.fits(size) {
                guard try flush() else { return false }
            }
            let length = ForecastRecord.write(
                id: sample.id, received: sample.received, seq: learner.seq, timestamp: sample.timestamp,
                forecaster: forecaster, missing: watch.missing, stuck: watch.stuck, into: forecasts.next)
            forecasts.append(length: length)
            let learning: UInt64 = updateTimes == nil ? 0 : monotonicNanoseconds()
            switch forecaster.learn() {
            case .updated:
                counters.updates.add(1, ordering: .relaxed)
                updateTimes?.observe(monotonicNanoseconds() &- learning, slot: index)
            case .skippedNonFinite: counters.skippedUpdates.add(1, ordering: .relaxed)
            case .waiting, .nothingToLearn, .rejectedInput: break
            }
            return true
        }

        // Quiet streams are counted, idle ones unloaded and the parked records' bytes reported,
        // about once a second.
        let quietAfter = UInt64(c.quietAfter * 1e9), idleUnload = UInt64(c.idleUnload * 1e9)
        var lastScan = monotonicNanoseconds(), quietReported = 0, parkedReported = 0
        func scan() {
            let now = monotonicNanoseconds()
            guard now &- lastScan >= 1_000_000_000 else { return }
            lastScan = now
            var quiet = 0
            var idle: [StreamLearner] = []
            for learner in streams.table.all {
                let age = now &- learner.lastSample
                if idleUnload > 0, age > idleUnload {
                    idle.append(learner)
                } else if age > quietAfter {
                    quiet += 1
                }
            }
            for learner in idle {
                unload(learner, "idle")
                counters.unloadedIdle.add(1, ordering: .relaxed)
            }
            counters.quietStreams.add(quiet - quietReported, ordering: .relaxed)
            quietReported = quiet
            counters.parkedBytes.add(streams.parkedBytes - parkedReported, ordering: .relaxed)
            parkedReported = streams.parkedBytes
        }
        defer {
            counters.quietStreams.subtract(quietReported, ordering: .relaxed)
            counters.parkedBytes.subtract(parkedReported, ordering: .relaxed)
        }

        while true {
            beats.add(1 + index, 1)
            if !drained { scan() }
            if runtime.generation.load(ordering: .acquiring) != generation {
                // SIGHUP changed the learning rate or clipping: every stream takes it now.
                generation = runtime.generation.load(ordering: .acquiring)
                settings = runtime.current
                for learner in streams.table.all {
                    learner.forecaster.learningRate = settings.learningRate
                    learner.forecaster.trainer.clipThreshold = settings.clipThreshold
                }
            }
            // During a checkpoint the walk goes on between batches, and whenever none is waiting.
            switch try pull.receiveMultipart(into: &message, flags: walk.isActive ? .dontWait : []) {
            case .wouldBlock:
                if walk.isActive, try !walk.advance(streams, to: checkpoints, final: false) {
                    usleep(200)  // the checkpoint thread's queue is full: let it write
                }
                continue
            case .truncated: continue
            case .terminated: return
            case .message: break
            }
            let frame = message.frame(0)
            if frame.isEmpty {
                // The stop marker: the last sample is learned. Finish a walk under way, pass the
                // marker on (the publisher finishes), and from now on only answer the checkpoint
                // thread's final walks, until it releases this worker.
                if walk.isActive { _ = try walk.advance(streams, to: checkpoints, final: true) }
                _ = try push.send(UnsafeRawBufferPointer(start: nil, count: 0))
                let done = CheckpointMessage.frame(.drained, worker: index)
                guard case .sent = try done.withUnsafeBytes({ try checkpoints.send($0) }) else { return }
                drained = true
                continue
            }
            if frame.count == 1 {  // from the checkpoint thread
                switch CheckpointRequest(rawValue: frame[0]) {
                case .walk:
                    askedSoon = false
                    walk.start(streams)
                    if drained { _ = try walk.advance(streams, to: checkpoints, final: true) }
                case .committed: walk.committed(&streams)
                case .failed: walk.failed()
                case .release: return
                case nil: break
                }
                continue
            }
            var open = true, taken = 0
            try RecordBatch.forEach(in: frame) { record in
                taken += 1
                if open { open = try handle(record) }
            }
            queues.release(index, taken)
            // The forecasts of one batch of samples go out together, as soon as it is learned.
            if open, !forecasts.isEmpty { open = try flush() }
            guard open else { return }
            if walk.isActive { _ = try walk.advance(streams, to: checkpoints, final: false) }
        }
    }
}

/// What `reload` found of a stream not in memory.
enum Reloaded {
    /// Its saved state, as a learner ready to go on.
    case loaded(StreamLearner)
    /// Nothing to go on from: a new stream (or one whose record cannot be used).
    case none
    /// Its stored record has another model shape: the sample is refused, the record kept.
    case refused
}
