import Foundation
import Logging
import RNNCore
import Synchronization
import ZeroMQ

/// `rnnd run`: samples in on a SUB socket, a model per stream on worker threads, forecasts out on
/// a PUB socket (DESIGN.md §2).
///
/// Threads, each owning its sockets for its whole life:
/// - ingest: the SUB socket; validates and decodes, routes each sample by the hash of its
///   stream id to one worker over an inproc pipe bounded at `queueCapacity` samples (full:
///   dropped and counted as `worker_queue_full`);
/// - workers: a model per stream; predict, hand the forecast to the publisher, then learn;
/// - publisher: encodes forecasts and owns the PUB socket.
/// Samples that arrive together travel between the threads in batches (`RecordBatch`); a
/// sample that arrives alone is passed on at once.
/// SIGINT or SIGTERM stops intake; an empty frame then drains the pipeline in order, so every
/// sample already read is learned from and its forecast published before `run()` returns.
/// With `--metrics-listen`, an HTTP server serves the counters and `/healthz` besides
/// (``MetricsServer``), from before the restore until the threads have finished.
public final class Daemon: Sendable {
    public let configuration: DaemonConfiguration
    public let counters = DaemonCounters()
    /// Samples queued for each worker, and forecasts for the publisher (the last slot).
    let queues: QueueDepths
    /// Each thread's progress: publisher 0, workers 1...W, checkpoints W+1, ingest W+2.
    let beats: AtomicCounters
    /// Whether every thread makes progress, as the main thread last saw (`/healthz`).
    let health = DaemonHealth()
    /// The latencies and durations of the metrics; nil without `--metrics-listen`, and then no
    /// thread reads a clock for them.
    let timings: DaemonTimings?
    /// The forecasts' quality for the metrics; nil without `--metrics-listen`.
    let quality: ForecastQuality?
    /// What SIGHUP may change while running.
    let runtime: RuntimeBox
    /// Reads the configuration again (the file and the command line), for SIGHUP.
    let reloader: (@Sendable () throws -> DaemonConfiguration)?
    let notifier: SystemdNotifier
    let logger: Logger
    let stopping = Atomic<Bool>(false)
    /// Set by a thread that failed after start-up; the daemon then stops with an error.
    let failure = Mutex<String?>(nil)
    /// The CURVE keys and allowed clients, when CURVE is configured (CurveAccess.swift).
    let curve = CurveAccess()

    static let forecastsAddress = "inproc://rnnd-forecasts"
    static let checkpointsAddress = "inproc://rnnd-checkpoints"
    static func workerAddress(_ i: Int) -> String { "inproc://rnnd-worker-\(i)" }

    public init(
        configuration: DaemonConfiguration, logger: Logger = Logger(label: "rnnd"),
        notifier: SystemdNotifier = SystemdNotifier(), reload: (@Sendable () throws -> DaemonConfiguration)? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.notifier = notifier
        reloader = reload
        queues = QueueDepths(queues: configuration.workers + 1, capacity: configuration.queueCapacity)
        beats = AtomicCounters(count: configuration.workers + 3)
        runtime = RuntimeBox(RuntimeSettings(configuration))
        let metrics = configuration.metricsAddress != nil
        timings = metrics ? DaemonTimings(workers: configuration.workers) : nil
        quality = metrics ? ForecastQuality(workers: configuration.workers, streamLabels: configuration.metricsStreamLabels) : nil
    }

    var checkpointerBeat: Int { configuration.workers + 1 }
    var ingestBeat: Int { configuration.workers + 2 }

    func threadName(beat i: Int) -> String {
        switch i {
        case 0: "rnnd-publisher"
        case checkpointerBeat: "rnnd-checkpoints"
        case ingestBeat: "rnnd-ingest"
        default: "rnnd-worker-\(i - 1)"
        }
    }

    /// Runs until SIGINT or SIGTERM (or a fatal error); returns the process exit status.
    public func run() -> Int32 {
        // Block the stop signals before any thread exists (libzmq's included), so that only
        // the wait below receives them.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let c = configuration
        if let problem = loadCurve() {
            logger.critical("CURVE: \(problem)")
            return 78  // EX_CONFIG
        }
        // The state directory: locked for this process's life, then every stream restored.
        let directory = c.resolvedStateDirectory(environment: ProcessInfo.processInfo.environment)
        let lock: StateDirectoryLock
        do { lock = try StateDirectoryLock(directory: directory) } catch {
            logger.critical("checkpoints: \(error)")
            return 73  // EX_CANTCREAT
        }
        defer { withExtendedLifetime(lock) {} }

        // Before the restore, which can take seconds: /healthz says "starting" meanwhile, and an
        // address in use ends the start at once.
        var metrics: MetricsServer?
        if let address = c.metricsAddress, let timings, let quality {
            do {
                let server = try MetricsServer(address: address, exporter: metricsExporter(timings, quality), health: health, logger: logger)
                let bound = try server.startWaiting()
                logger.info("metrics on: http://\(bound)")
                metrics = server
            } catch {
                logger.critical("metrics: \(error)")
                return 69  // EX_UNAVAILABLE, as for a ZeroMQ address
            }
        }
        defer { metrics?.stopWaiting() }

        let store: CheckpointStore, restored: [RestoredStreams]
        do { (store, restored) = try openAndRestore(directory) } catch {
            logger.critical("checkpoints: \(error)")
            return 73  // EX_CANTCREAT
        }

        let context: ZMQContext
        do { context = try ZMQContext(ioThreads: 1) } catch {
            logger.critical("cannot create the ZeroMQ context: \(error)")
            return 70
        }
        let finished = DispatchGroup()
        func start(_ name: String, _ body: @escaping @Sendable (StartupGate) -> Void) -> Bool {
            let gate = StartupGate()
            finished.enter()
            let thread = Thread {
                // Visible in top -H, ps -L and /proc/PID/task/*/comm (at most 15 bytes); Linux
                // takes the name written to the thread's own comm file.
                try? String(name.prefix(15)).write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
                body(gate)
                finished.leave()
            }
            thread.name = name
            thread.start()
            if let error = gate.wait() {
                logger.critical("\(name): \(error)")
                return false
            }
            return true
        }
        // The ZAP handler first: the CURVE sockets ask it from their first connection on.
        var started = !c.curveEnabled || start("rnnd-zap") { self.zapHandler(context, gate: $0) }
        if started { started = start("rnnd-publisher") { self.publisher(context, gate: $0) } }
        for i in 0..<c.workers where started {
            let streams = restored[i]
            started = start("rnnd-worker-\(i)") { self.worker(i, context, restored: streams, gate: $0) }
        }
        if started { started = start("rnnd-checkpoints") { self.checkpointer(context, store: store, gate: $0) } }
        if started { started = start("rnnd-ingest") { self.ingest(context, gate: $0) } }
        guard started else {
            stopping.store(true, ordering: .relaxed)
            context.shutdown()
            _ = finished.wait(timeout: .now() + 5)
            return 69
        }
        logger.info("ready: \(c.workers) workers, model \(c.model.cell.rawValue) H=\(c.model.hidden) k2=\(c.model.window) k1=\(c.model.updateEvery) horizon=\(c.model.horizon)")
        var status = StatusLine(counters: counters)
        notifier.ready(status: status.next())
        health.set(.ready)

        var exitCode: Int32 = 0
        var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        var effective = c
        var watch = ProgressWatch(threads: beats.count)
        // A thread that has not moved for this long is stuck: with systemd's watchdog on, the
        // pings stop and systemd restarts rnnd; without it, the log says so.
        let stallLimit = notifier.watchdogInterval.map { $0 / 2 } ?? .seconds(30)
        var lastPing = ContinuousClock.now, lastStatus = ContinuousClock.now, stallReported = false
        while true {
            let signal = sigtimedwait(&signals, nil, &timeout)
            if signal == SIGINT || signal == SIGTERM {
                notifier.stopping()
                logger.notice("\(signal == SIGTERM ? "SIGTERM" : "SIGINT"): stopping intake, finishing the samples in flight")
                break
            }
            if signal == SIGHUP { effective = reload(effective) }
            if let message = failure.withLock({ $0 }) {
                logger.critical("stopping after an error: \(message)")
                exitCode = 70
                break
            }
            let now = ContinuousClock.now
            let stalled = watch.stalled(beats, limit: stallLimit)
            health.set(stalled.isEmpty ? .ready : .stalled(stalled.map(threadName(beat:)), limit: stallLimit))
            if stalled.isEmpty {
                stallReported = false
                if let interval = notifier.watchdogInterval, now - lastPing >= interval / 4 {
                    notifier.watchdog()
                    lastPing = now
                }
            } else if !stallReported {
                stallReported = true
                let names = stalled.map(threadName(beat:)).joined(separator: ", ")
                logger.critical("\(names) made no progress for \(stallLimit)\(notifier.watchdogInterval == nil ? "" : "; watchdog pings stop, so systemd restarts rnnd")")
            }
            if now - lastStatus >= .seconds(5) {
                notifier.status(status.next())
                lastStatus = now
            }
        }
        stopping.store(true, ordering: .relaxed)
        health.set(.stopping)
        // Within systemd's default stop timeout of 90 s (the units set 30): draining the queues
        // takes well under a second, the final checkpoint of 10,000 streams a few seconds.
        if finished.wait(timeout: .now() + 25) == .timedOut {
            logger.error("threads did not finish within 25 s; closing the sockets")
            context.shutdown()
            _ = finished.wait(timeout: .now() + 2)
            exitCode = 70
        }
        logger.info("stopped: \(summary())")
        return exitCode
    }

    /// Counters in one line, for the log.
    public func summary() -> String {
        let refusals = counters.refusalsByReason.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return "received=\(counters.received.load(ordering: .relaxed)) "
            + "learned=\(counters.accepted.load(ordering: .relaxed)) "
            + "forecasts=\(counters.forecasts.load(ordering: .relaxed)) "
            + "updates=\(counters.updates.load(ordering: .relaxed)) "
            + "skipped_updates=\(counters.skippedUpdates.load(ordering: .relaxed)) "
            + "drifts=\(counters.drifts.load(ordering: .relaxed)) "
            + "streams=\(counters.streams.load(ordering: .relaxed)) "
            + "refused={\(refusals.joined(separator: ", "))}"
            + (configuration.curveEnabled
                ? " \(DaemonCounters.curveRejectedReason)=\(counters.curveRejected.load(ordering: .relaxed))"
                    + " \(DaemonCounters.curveHandshakeFailedReason)=\(counters.curveHandshakeFailed.load(ordering: .relaxed))"
                : "")
    }

    /// The metrics of this daemon, as `/metrics` serves them.
    func metricsExporter(_ timings: DaemonTimings, _ quality: ForecastQuality) -> MetricsExporter {
        MetricsExporter(
            .init(
                counters: counters, queues: queues, beats: beats, health: health, timings: timings, quality: quality,
                threadOfBeat: (0..<beats.count).map(threadName(beat:)),
                threadOfQueue: (0..<configuration.workers).map { "rnnd-worker-\($0)" } + ["rnnd-publisher"]),
            queueCapacity: configuration.queueCapacity)
    }

    func fail(_ message: String) {
        failure.withLock { if $0 == nil { $0 = message } }
    }

    // MARK: - Ingest

    private func ingest(_ context: ZMQContext, gate: StartupGate) {
        do {
            try ingestLoop(context, gate: gate)
        } catch {
            if !gate.report(error: "samples socket: \(error)") { fail("ingest: \(error)") }
        }
    }

    private func ingestLoop(_ context: ZMQContext, gate: StartupGate) throws {
        let c = configuration
        let workers = c.workers, shard = c.streamShard
        let sub = try ZMQSocket(context, type: .sub)
        if let keys = curve.keys { try sub.serveCurve(keys, domain: CurveAccess.samplesDomain) }
        // Messages far beyond the limit are cut off by libzmq (the peer is disconnected);
        // the rest are read and counted as payload_too_large.
        try sub.setMaxMessageSize(c.maxMessageBytes + WireLimits.maxTopicBytes + 1024)
        try sub.setReceiveHighWaterMark(c.queueCapacity)
        try sub.setReceiveTimeout(.milliseconds(100))
        for topic in c.topics { try sub.subscribe(topic) }
        for endpoint in c.subscribe {
            try sub.attach(endpoint)
            if endpoint.hasPrefix("@") {
                let bound = try sub.lastEndpoint
                logger.info("samples in: \(bound)")
            }
        }
        let pushes = UnsafeMutablePointer<ZMQSocket>.allocate(capacity: workers)
        var made = 0
        defer {
            pushes.deinitialize(count: made)
            pushes.deallocate()
        }
        for i in 0..<workers {
            let push = try ZMQSocket(context, type: .push)
            // The bound is `queues`, in samples; a batch holds at least one.
            try push.setSendHighWaterMark(c.queueCapacity)
            try push.setLinger(.seconds(2))
            try push.connect(Self.workerAddress(i))
            (pushes + made).initialize(to: push)
            made += 1
        }
        _ = gate.report(error: nil)

        var message = ZMQMultipartBuffer(maxFrames: 3, capacity: WireLimits.maxTopicBytes + c.maxMessageBytes + 1024)
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: c.maxInputs)
        defer { values.deallocate() }
        let largestRecord = SampleRecord.size(idLength: WireLimits.maxTopicBytes, count: c.maxInputs)
        let batches = (0..<workers).map { _ in RecordBatch(largestRecord: largestRecord) }
        let decoder = SampleDecoder(maxValues: c.maxInputs)
        var log = RateLimitedLog(logger: logger)
        let timed = timings != nil  // the latency metric: when each sample came off the socket

        /// Hands worker `worker` its batch; false once the context is shutting down.
        func flush(_ worker: Int) throws -> Bool {
            let batch = batches[worker]
            defer { batch.clear() }
            let room = queues.reserve(worker, batch.count)
            let sent = room ? try pushes[worker].send(batch.frame, flags: .dontWait) : .wouldBlock
            switch sent {
            case .sent: return true
            case .wouldBlock:
                if room { queues.release(worker, batch.count) }
                let r = DropReason.workerQueueFull
                counters.refuse(r.rawValue, count: batch.count)
                log.warning(reason: r.rawValue, message: "worker \(worker)'s queue is full: learning cannot keep up; \(batch.count) samples dropped", stream: nil)
                return true
            case .terminated: return false
            }
        }
        // On the way out, also after an error: what is batched goes first, then the stop
        // marker follows every sample already handed to each worker, so they drain and stop.
        defer {
            for i in 0..<made {
                if !batches[i].isEmpty { _ = try? flush(i) }
                _ = try? pushes[i].send(UnsafeRawBufferPointer(start: nil, count: 0))
            }
        }
        var batched = 0
        var topics = c.topics, generation = 0
        receiving: while !stopping.load(ordering: .relaxed) {
            beats.add(ingestBeat, 1)
            if runtime.generation.load(ordering: .acquiring) != generation {
                // SIGHUP changed the topics: subscribe to the new prefixes, drop the old ones.
                generation = runtime.generation.load(ordering: .acquiring)
                let new = runtime.current.topics
                for topic in new where !topics.contains(topic) { try sub.subscribe(topic) }
                for topic in topics where !new.contains(topic) { try sub.unsubscribe(topic) }
                topics = new
            }
            let frames: Int
            // While samples are batched, only look for more that are already here; when none
            // are, the batches go out before waiting.
            switch try sub.receiveMultipart(into: &message, flags: batched > 0 ? .dontWait : []) {
            case .wouldBlock:
                if batched > 0 {
                    for i in 0..<workers where !batches[i].isEmpty {
                        guard try flush(i) else { break receiving }
                    }
                    batched = 0
                }
                continue
            case .terminated: break receiving
            case .truncated(let kept, _):
                counters.received.add(1, ordering: .relaxed)
                if let shard, kept > 0, !shard.owns(hash: streamHash(message.frame(0))) {
                    counters.otherShard.add(1, ordering: .relaxed)
                    continue
                }
                let reason = kept >= message.maxFrames ? SampleRejection.wrongFrameCount : .payloadTooLarge
                refuse(reason.rawValue, reason.description, stream: kept > 0 ? message.frame(0) : nil, log: &log)
                continue
            case .message(let n): frames = n
            }
            let received: UInt64 = timed ? monotonicNanoseconds() : 0
            counters.received.add(1, ordering: .relaxed)
            // Another instance's stream: counted, neither checked nor decoded (its owner does
            // both, and logs what is wrong), so that each message is refused by one instance.
            let hash = streamHash(message.frame(0))
            if let shard, !shard.owns(hash: hash) {
                counters.otherShard.add(1, ordering: .relaxed)
                continue
            }
            guard frames == 2 else {
                let r = SampleRejection.wrongFrameCount
                refuse(r.rawValue, r.description, stream: frames > 0 ? message.frame(0) : nil, log: &log)
                continue
            }
            let topic = message.frame(0), payload = message.frame(1)
            if let reason = validateStreamID(topic) {
                refuse(reason.rawValue, reason.description, stream: reason == .emptyTopic ? nil : topic, log: &log)
                continue
            }
            if payload.count > c.maxMessageBytes {
                let r = SampleRejection.payloadTooLarge
                refuse(r.rawValue, r.description, stream: topic, log: &log)
                continue
            }
            let sample: DecodedSample
            switch decoder.decode(payload, into: values) {
            case .failure(let reason):
                refuse(reason.rawValue, reason.description, stream: topic, log: &log)
                continue
            case .success(let s): sample = s
            }
            let worker = workerIndex(hash: hash, workers: workers)
            let batch = batches[worker]
            if !batch.fits(SampleRecord.size(idLength: topic.count, count: sample.count)) {
                guard try flush(worker) else { break receiving }
            }
            let length = SampleRecord.write(
                id: topic, received: received, values: UnsafeBufferPointer(rebasing: values[0..<sample.count]),
                timestamp: sample.timestamp, into: batch.next)
            batch.append(length: length)
            batched += 1
        }
    }

    private func refuse(_ reason: String, _ what: String, stream: UnsafeRawBufferPointer?, log: inout RateLimitedLog) {
        counters.refuse(reason)
        log.warning(reason: reason, message: what, stream: stream)
    }

    // MARK: - Workers

    private func worker(_ index: Int, _ context: ZMQContext, restored: RestoredStreams, gate: StartupGate) {
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
        let forecasts = RecordBatch(largestRecord: ForecastRecord.size(idLength: WireLimits.maxTopicBytes, values: maxOutputs))
        var table = StreamTable()
        var workspaces = restored.workspaces
        for learner in restored.learners {
            table.insert(learner)
            learner.metricsSlot = quality?.streams.claim(learner.id)
        }
        var log = RateLimitedLog(logger: logger)
        var walk = CheckpointWalk(worker: index)
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

        /// Predicts, queues the forecast, then learns: one sample record.
        func handle(_ frame: UnsafeRawBufferPointer) throws -> Bool {
            let sample = SampleRecord.read(frame)
            for i in 0..<sample.count { values[i] = sample.value(i) }
            let hash = streamHash(sample.id)
            let learner: StreamLearner
            if let known = table.find(sample.id, hash: hash) {
                learner = known
            } else {
                let streams = counters.streams.add(1, ordering: .relaxed).newValue
                guard streams <= c.maxStreams else {
                    counters.streams.subtract(1, ordering: .relaxed)
                    let r = StreamRejection.tooManyStreams
                    counters.refuse(r.rawValue)
                    log.warning(reason: r.rawValue, message: "\(c.maxStreams) streams exist (--max-streams): new streams are refused, existing ones go on", stream: sample.id)
                    return true
                }
                let model = c.modelConfiguration(inputs: sample.count)
                let workspace = workspaces[sample.count] ?? TrainingWorkspace(model)
                workspaces[sample.count] = workspace
                learner = StreamLearner(id: Array(sample.id), hash: hash, forecaster: Forecaster(configuration: model, workspace: workspace))
                learner.forecaster.learningRate = settings.learningRate
                learner.forecaster.trainer.clipThreshold = settings.clipThreshold
                learner.metricsSlot = quality?.streams.claim(learner.id)
                table.insert(learner)
                logger.debug("new stream", metadata: ["stream": "\(String(decoding: sample.id, as: UTF8.self))", "inputs": "\(sample.count)"])
                // At info, only the milestones: a burst of 10,000 new streams writes 5 lines.
                if isPowerOfTen(streams) { logger.info("\(streams) stream\(streams == 1 ? "" : "s")") }
            }
            if let reason = learner.check(width: sample.count, timestamp: sample.timestamp) {
                counters.refuse(reason.rawValue)
                log.warning(reason: reason.rawValue, message: "sample refused (\(reason.rawValue)): width \(sample.count), stream width \(learner.forecaster.configuration.inputs)", stream: sample.id)
                return true
            }
            let forecaster = learner.forecaster
            let before = forecaster.counters
            forecaster.predict(values, time: sample.timestamp)
            quality?.observe(forecaster, since: before, worker: index, slot: learner.metricsSlot)
            learner.seq += 1
            if let t = sample.timestamp { learner.lastTimestamp = t }
            counters.accepted.add(1, ordering: .relaxed)
            if forecaster.driftDetected {
                counters.drifts.add(1, ordering: .relaxed)
                log.notice(
                    reason: "drift",
                    message: "drift: the forecast errors grew and stayed grown; learning rate ×\(Forecaster.driftBoost) "
                        + "easing back over \(Forecaster.driftBoostSamples) samples; the linear model's covariance reset",
                    stream: sample.id)
            }
            let size = ForecastRecord.size(idLength: sample.id.count, values: forecaster.outputs)
            if !forecasts.fits(size) {
                guard try flush() else { return false }
            }
            let length = ForecastRecord.write(
                id: sample.id, received: sample.received, seq: learner.seq, timestamp: sample.timestamp,
                forecaster: forecaster, into: forecasts.next)
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

        while true {
            beats.add(1 + index, 1)
            if runtime.generation.load(ordering: .acquiring) != generation {
                // SIGHUP changed the learning rate or clipping: every stream takes it now.
                generation = runtime.generation.load(ordering: .acquiring)
                settings = runtime.current
                for learner in table.all {
                    learner.forecaster.learningRate = settings.learningRate
                    learner.forecaster.trainer.clipThreshold = settings.clipThreshold
                }
            }
            // During a checkpoint the walk goes on between batches, and whenever none is waiting.
            switch try pull.receiveMultipart(into: &message, flags: walk.isActive ? .dontWait : []) {
            case .wouldBlock:
                if walk.isActive, try !walk.advance(table.all, to: checkpoints, final: false) {
                    usleep(200)  // the checkpoint thread's queue is full: let it write
                }
                continue
            case .truncated: continue
            case .terminated: return
            case .message: break
            }
            let frame = message.frame(0)
            if frame.isEmpty {
                // The stop marker: every changed stream to the checkpoint thread, then pass the
                // marker on and finish.
                walk.start(all: false)
                _ = try walk.advance(table.all, to: checkpoints, final: true)
                _ = try push.send(UnsafeRawBufferPointer(start: nil, count: 0))
                return
            }
            if frame.count == 1 {  // a checkpoint request
                walk.start(all: frame[0] == CheckpointWalk.requestAll)
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
            if walk.isActive { _ = try walk.advance(table.all, to: checkpoints, final: false) }
        }
    }

    // MARK: - Publisher

    private func publisher(_ context: ZMQContext, gate: StartupGate) {
        do {
            try publisherLoop(context, gate: gate)
        } catch {
            if !gate.report(error: "forecasts socket: \(error)") { fail("publisher: \(error)") }
        }
    }

    private func publisherLoop(_ context: ZMQContext, gate: StartupGate) throws {
        let c = configuration
        let pull = try ZMQSocket(context, type: .pull)
        try pull.setReceiveHighWaterMark(c.queueCapacity)
        try pull.bind(Self.forecastsAddress)
        try pull.setReceiveTimeout(.milliseconds(500))  // idle, the loop still turns (the watchdog)
        // XPUB with NODROP rather than PUB: a subscriber too slow to take a forecast makes the
        // send report "would block" instead of dropping it silently, so the drop is counted.
        let pub = try ZMQSocket(context, type: .xpub)
        if let keys = curve.keys { try pub.serveCurve(keys, domain: CurveAccess.forecastsDomain) }
        // What subscribers send is subscriptions, a byte and a prefix: a prefix longer than a
        // forecast's topic (the topic prefix and the stream id, 510 bytes at most) matches
        // nothing, so a larger message is cut off and its sender disconnected.
        try pub.setMaxMessageSize(1024)
        try pub.setOption(.xpubNoDrop, 1)
        try pub.setSendHighWaterMark(max(c.queueCapacity, 10_000))
        try pub.setLinger(.seconds(1))
        try pub.attach(c.publish)
        if c.publish.hasPrefix("@") {
            let bound = try pub.lastEndpoint
            logger.info("forecasts out: \(bound)")
        }
        _ = gate.report(error: nil)

        let maxValues = c.model.horizon * c.maxInputs
        let batchCapacity = RecordBatch.capacity(largestRecord: ForecastRecord.size(idLength: WireLimits.maxTopicBytes, values: maxValues))
        var message = ZMQMultipartBuffer(maxFrames: 1, capacity: batchCapacity)
        // The forecast, then its lower and upper bounds.
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3 * maxValues)
        // The encoded frames, copied out of the encoder's arrays so the socket is used outside
        // any closure; room for the longest forecast (a float takes at most 15 characters, an
        // escaped byte of the stream id 6; three numbers a value with the band).
        let frameCapacity = c.forecastTopicPrefix.utf8.count + 7 * WireLimits.maxTopicBytes + 3 * 16 * maxValues + 256
        let frames = UnsafeMutableRawPointer.allocate(byteCount: frameCapacity, alignment: 8)
        defer {
            values.deallocate()
            frames.deallocate()
        }
        var encoder = ForecastEncoder(topicPrefix: Array(c.forecastTopicPrefix.utf8))
        // XPUB passes subscriptions up as messages; they are read and discarded now and then.
        var subscriptions = ZMQMultipartBuffer(maxFrames: 1, capacity: 512)
        var log = RateLimitedLog(logger: logger)
        let latency = timings?.latency

        /// Encodes and publishes one forecast record; false once the context is shutting down.
        func publish(_ record: UnsafeRawBufferPointer) throws -> Bool {
            let f = ForecastRecord.read(record)
            let n = f.values.count / 4, band = !f.lower.isEmpty
            for i in 0..<n {
                values[i] = f.values.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                if band {
                    values[n + i] = f.lower.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                    values[2 * n + i] = f.upper.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                }
            }
            encoder.encode(
                stream: f.id, seq: f.seq, timestamp: f.timestamp, horizon: f.horizon,
                forecast: UnsafeBufferPointer(rebasing: values[0..<n]),
                lower: band ? UnsafeBufferPointer(rebasing: values[n..<(2 * n)]) : nil,
                upper: band ? UnsafeBufferPointer(rebasing: values[(2 * n)..<(3 * n)]) : nil,
                anomaly: f.anomaly, updates: f.updates)
            let topicCount = encoder.topic.count, payloadCount = encoder.payload.count
            precondition(topicCount + payloadCount <= frameCapacity, "forecast frames exceed their buffer")
            encoder.topic.withUnsafeBytes { frames.copyMemory(from: $0.baseAddress!, byteCount: topicCount) }
            encoder.payload.withUnsafeBytes { (frames + topicCount).copyMemory(from: $0.baseAddress!, byteCount: payloadCount) }
            switch try pub.send(UnsafeRawBufferPointer(start: frames, count: topicCount), flags: [.sendMore, .dontWait]) {
            case .sent:
                // Once the first frame is taken, the rest of the message is too.
                _ = try pub.send(UnsafeRawBufferPointer(start: frames + topicCount, count: payloadCount))
                counters.forecasts.add(1, ordering: .relaxed)
                latency?.observe(monotonicNanoseconds() &- f.received, slot: 0)
                return true
            case .wouldBlock:
                let r = DropReason.subscriberSlow
                counters.refuse(r.rawValue)
                log.warning(reason: r.rawValue, message: "a subscriber's queue is full (it reads too slowly); forecast not published", stream: f.id)
                return true
            case .terminated:
                return false
            }
        }

        var stopped = 0, handled = 0
        while stopped < c.workers {
            beats.add(0, 1)
            if handled & 255 == 0 {
                while case .message = try pub.receiveMultipart(into: &subscriptions, flags: .dontWait) {}
            }
            handled &+= 1
            switch try pull.receiveMultipart(into: &message) {
            case .wouldBlock, .truncated: continue
            case .terminated: return
            case .message: break
            }
            let frame = message.frame(0)
            if frame.isEmpty {
                stopped += 1
                continue
            }
            var open = true, taken = 0
            try RecordBatch.forEach(in: frame) { record in
                taken += 1
                if open { open = try publish(record) }
            }
            queues.release(c.workers, taken)
            guard open else { return }
        }
    }
}

/// 1, 10, 100, ...
func isPowerOfTen(_ n: Int) -> Bool {
    var n = n
    while n >= 10, n % 10 == 0 { n /= 10 }
    return n == 1
}

/// Start-up handshake between a service thread and `run()`: the thread reports whether its
/// sockets are bound before the next one starts.
final class StartupGate: Sendable {
    private let result = Mutex<String??>(nil)
    private let semaphore = DispatchSemaphore(value: 0)

    /// Reports the start-up's outcome once; false when it was reported already (the error
    /// then happened later, while running).
    func report(error: String?) -> Bool {
        let first = result.withLock { state in
            guard state == nil else { return false }
            state = .some(error)
            return true
        }
        if first { semaphore.signal() }
        return first
    }

    func wait() -> String? {
        semaphore.wait()
        return result.withLock { $0 } ?? nil
    }
}

/// Warnings about bad input, at most one per reason per second from each thread, with the
/// number suppressed in between, so a flood cannot fill the journal.
struct RateLimitedLog {
    let logger: Logger
    private var last: [String: ContinuousClock.Instant] = [:]
    private var suppressed: [String: Int] = [:]

    init(logger: Logger) { self.logger = logger }

    mutating func warning(reason: String, message: String, stream: UnsafeRawBufferPointer?) {
        log(.warning, reason: reason, message: message, stream: stream)
    }

    mutating func notice(reason: String, message: String, stream: UnsafeRawBufferPointer?) {
        log(.notice, reason: reason, message: message, stream: stream)
    }

    private mutating func log(_ level: Logger.Level, reason: String, message: String, stream: UnsafeRawBufferPointer?) {
        let now = ContinuousClock.now
        if let previous = last[reason], now - previous < .seconds(1) {
            suppressed[reason, default: 0] += 1
            return
        }
        last[reason] = now
        var metadata: Logger.Metadata = ["reason": "\(reason)"]
        if let stream { metadata["stream"] = "\(printable(stream))" }
        if let n = suppressed.removeValue(forKey: reason), n > 0 { metadata["suppressed"] = "\(n)" }
        logger.log(level: level, "\(message)", metadata: metadata)
    }

    /// The stream id as text when it is UTF-8, else in hex.
    private func printable(_ id: UnsafeRawBufferPointer) -> String {
        if validateStreamID(id) == nil { return String(decoding: id, as: UTF8.self) }
        return "0x" + id.prefix(64).map { String(format: "%02x", $0) }.joined()
    }
}

extension Daemon {
    /// SIGHUP: reads the configuration again and applies what can change while running
    /// (learning rate and clipping of every stream, the topics, the log level); says what needs
    /// a restart. A configuration with errors changes nothing. Returns the configuration now in
    /// effect.
    func reload(_ current: DaemonConfiguration) -> DaemonConfiguration {
        notifier.reloading()
        defer {
            var status = StatusLine(counters: counters)
            notifier.ready(status: status.next())
        }
        guard let reloader else {
            logger.warning("SIGHUP: no configuration to read again; nothing changed")
            return current
        }
        let new: DaemonConfiguration
        do { new = try reloader() } catch {
            logger.error("SIGHUP: the configuration has errors; nothing changed: \(error)")
            return current
        }
        reloadAllowedClients()
        let (applied, needRestart) = current.reloadChanges(to: new)
        var effective = current
        effective.model.learningRate = new.model.learningRate
        effective.model.clipThreshold = new.model.clipThreshold
        effective.topics = new.topics
        effective.logLevel = new.logLevel
        runtime.update(RuntimeSettings(effective))
        var level = logger
        level.logLevel = Logger.Level(rawValue: new.logLevel) ?? level.logLevel
        if applied.isEmpty && needRestart.isEmpty {
            logger.notice("SIGHUP: configuration read again; nothing changed")
        } else {
            if !applied.isEmpty { logger.notice("SIGHUP: applied \(applied.joined(separator: "; "))") }
            if !needRestart.isEmpty {
                logger.warning("SIGHUP: not applied, these need a restart: \(needRestart.joined(separator: "; "))")
            }
        }
        return effective
    }
}

/// The one-line status systemd shows (`systemctl status`): streams, samples learned per second
/// since the previous line, refusals, and the age of the latest checkpoint.
struct StatusLine {
    let counters: DaemonCounters
    private var lastLearned: Int
    private var lastTime = ContinuousClock.now

    init(counters: DaemonCounters) {
        self.counters = counters
        lastLearned = counters.accepted.load(ordering: .relaxed)
    }

    mutating func next() -> String {
        let learned = counters.accepted.load(ordering: .relaxed), now = ContinuousClock.now
        let seconds = (now - lastTime).seconds
        let rate = seconds > 0.1 ? Double(learned - lastLearned) / seconds : 0
        lastLearned = learned
        lastTime = now
        let refused = counters.refusedOrDropped
        let last = counters.lastCheckpoint.load(ordering: .relaxed)
        let age = last == 0 ? "no checkpoint yet" : "last checkpoint \(max(0, Int(Date().timeIntervalSince1970) - last)) s ago"
        return "\(counters.streams.load(ordering: .relaxed)) streams, \(Int(rate.rounded())) samples/s learned, \(refused) refused or dropped, \(age)"
    }
}
