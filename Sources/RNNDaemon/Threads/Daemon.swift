import Foundation
import Logging
import RNNBasics
import RNNCore
import RNNMetrics
import RNNState
import RNNWire
import Synchronization
import ZeroMQ

/// `rnnd run`: samples in on a SUB socket, a model per stream on worker threads, forecasts out on
/// a PUB socket (docs/architecture.md).
///
/// Threads, each owning its sockets for its whole life, each in a file of its own:
/// - ingest (Ingest.swift): the SUB socket; validates and decodes, routes each sample by the hash
///   of its stream id to one worker over an inproc pipe bounded at `queueCapacity` samples (full:
///   dropped and counted as `worker_queue_full`);
/// - workers (Worker.swift): a model per stream; predict, hand the forecast to the publisher,
///   then learn;
/// - publisher (Publisher.swift): encodes forecasts and owns the PUB socket;
/// - checkpoints (Checkpointing.swift): collects the workers' records and commits them;
/// - this file: start-up, the main thread's loop (signals, SIGHUP reloads, the watchdog).
/// Samples that arrive together travel between the threads in batches (`RecordBatch`); a
/// sample that arrives alone is passed on at once.
/// SIGINT or SIGTERM stops intake; an empty frame then drains the pipeline in order, so every
/// sample already read is learned from and its forecast published, and every stream not saved
/// yet is checkpointed, before `run()` returns: all within `stopTimeout`.
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
    /// The checkpoints that failed: the run since the last commit (`/healthz`), counts by reason.
    let checkpointFailures = CheckpointFailures()
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
    /// When SIGINT or SIGTERM arrived (``monotonicNanoseconds()``; 0 before): the stop budget
    /// counts from then.
    let stopRequested = Atomic<UInt64>(0)
    /// Set by the checkpoint thread once every worker's streams are committed at stop; otherwise
    /// the daemon exits 74.
    let finalCheckpointSaved = Atomic<Bool>(false)
    /// Set by a thread that failed after start-up; the daemon then stops with an error.
    let failure = Mutex<String?>(nil)
    /// The CURVE keys and allowed clients, when CURVE is configured (CurveAccess.swift).
    let curve = CurveAccess()
    /// The stream counts logged so far as the daemon grows (1, 10, 100, ... streams).
    let milestones = StreamMilestones()

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
        do { (store, restored) = try openAndRestore(directory) } catch let refusal as RestoreRefusal {
            logger.critical("checkpoints: \(refusal)")
            return 78  // EX_CONFIG: the configuration does not fit the stored streams
        } catch {
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
        var status = StatusLine(counters: counters, checkpointFailures: checkpointFailures)
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
        let checkpointMaxAge = Duration.seconds(c.resolvedCheckpointMaxAge)
        var checkpointsReported = false
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
            let checkpoints = checkpointHealth(maxAge: checkpointMaxAge)
            health.set(stalled.isEmpty ? checkpoints ?? .ready : .stalled(stalled.map(threadName(beat:)), limit: stallLimit))
            if let checkpoints, !checkpointsReported {
                logger.error("/healthz now answers 503: \(DaemonHealth.text(of: checkpoints))")
            } else if checkpoints == nil, checkpointsReported {
                logger.notice("/healthz: checkpoints commit again")
            }
            checkpointsReported = checkpoints != nil
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
        stopRequested.store(monotonicNanoseconds(), ordering: .relaxed)
        stopping.store(true, ordering: .relaxed)
        health.set(.stopping)
        // Within `stopTimeout` (systemd's TimeoutStopSec=, after which it kills): draining the
        // queues takes well under a second, the final checkpoint of 10,000 streams a few seconds,
        // its retries what is left; 3 s are kept for closing the sockets and exiting.
        let threadsTime = c.stopTimeout - 3
        var timedOut = false
        if finished.wait(timeout: .now() + threadsTime) == .timedOut {
            logger.error("threads did not finish within \(threadsTime) s of the stop (stop_timeout \(c.stopTimeout) s); closing the sockets")
            context.shutdown()
            _ = finished.wait(timeout: .now() + 1)
            timedOut = true
        }
        if exitCode == 0 {
            if !finalCheckpointSaved.load(ordering: .relaxed) {
                logger.critical("exiting 74 (EX_IOERR): what some streams learned since their last checkpoint is lost (the final checkpoint above says why)")
                exitCode = 74  // EX_IOERR
            } else if timedOut {
                exitCode = 70
            }
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
            + "outliers=\(counters.outliers.load(ordering: .relaxed)) level_shifts=\(counters.levelShifts.load(ordering: .relaxed)) "
            + "segments=\(counters.segments.load(ordering: .relaxed)) "
            + "missing_values=\(counters.missingValues.load(ordering: .relaxed)) "
            + "stuck_episodes=\(counters.stuckEpisodes.load(ordering: .relaxed)) "
            + "clock_resets=\(counters.clockResets.load(ordering: .relaxed)) "
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
                counters: counters, queues: queues, beats: beats, health: health, checkpointFailures: checkpointFailures,
                timings: timings, quality: quality,
                threadOfBeat: (0..<beats.count).map(threadName(beat:)),
                threadOfQueue: (0..<configuration.workers).map { "rnnd-worker-\($0)" } + ["rnnd-publisher"]),
            queueCapacity: configuration.queueCapacity)
    }

    func fail(_ message: String) {
        failure.withLock { if $0 == nil { $0 = message } }
    }

    /// What `/healthz` says of the checkpoints: nil while they commit, or while the last commit
    /// is younger than `maxAge` (a failure or two before a retry commits is no alarm).
    func checkpointHealth(maxAge: Duration) -> DaemonHealth.State? {
        guard let run = checkpointFailures.run else { return nil }
        let last = counters.lastCheckpoint.load(ordering: .relaxed)
        let since = last == 0 ? ProcessStatistics.startTime : Double(last)
        guard Date().timeIntervalSince1970 - since > maxAge.seconds else { return nil }
        return .checkpointsFailing(run, lastCommit: last == 0 ? nil : Double(last), limit: maxAge)
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
            var status = StatusLine(counters: counters, checkpointFailures: checkpointFailures)
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
/// since the previous line, refusals, and the age of the latest checkpoint (and why they fail,
/// when they do).
struct StatusLine {
    let counters: DaemonCounters
    let checkpointFailures: CheckpointFailures
    private var lastLearned: Int
    private var lastTime = ContinuousClock.now

    init(counters: DaemonCounters, checkpointFailures: CheckpointFailures) {
        self.counters = counters
        self.checkpointFailures = checkpointFailures
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
        var age = last == 0 ? "no checkpoint yet" : "last checkpoint \(max(0, Int(Date().timeIntervalSince1970) - last)) s ago"
        if let run = checkpointFailures.run {
            age += ", checkpoints failing (\(run.reason.rawValue), \(run.attempts) attempt\(run.attempts == 1 ? "" : "s"))"
        }
        return "\(counters.streams.load(ordering: .relaxed)) streams, \(Int(rate.rounded())) samples/s learned, \(refused) refused or dropped, \(age)"
    }
}
