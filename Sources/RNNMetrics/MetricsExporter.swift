import Foundation
import Prometheus
import RNNWire
import Synchronization

/// The Prometheus text exposition of one daemon (docs/metrics.md lists every metric).
///
/// The daemon's threads count in atomics (``DaemonCounters``, the queue depths, the threads'
/// beats, ``DaemonTimings``), which stay the source of truth: nothing on the sample path knows
/// about Prometheus. A scrape loads their values into this daemon's own
/// `PrometheusCollectorRegistry` (one per daemon, not swift-metrics' process-wide
/// `MetricsSystem.bootstrap`, so that several daemons in one process, as in the tests, keep their
/// figures apart), which writes the counters and gauges with their HELP and TYPE lines; the
/// histograms follow in the same format, written here, because swift-prometheus's histograms
/// take one observation at a time behind a lock and cannot be loaded with bucket counts.
package final class MetricsExporter: Sendable {
    /// What the daemon's threads count; read, never written, here.
    package struct Sources: Sendable {
        package var counters: DaemonCounters
        package var queues: QueueDepths
        package var beats: AtomicCounters
        package var health: DaemonHealth
        package var checkpointFailures: CheckpointFailures
        package var timings: DaemonTimings
        package var quality: ForecastQuality
        /// The thread of each beat counter (publisher, workers, checkpoints, ingest), and of each
        /// queue (workers, then the publisher).
        package var threadOfBeat: [String]
        package var threadOfQueue: [String]

        package init(
            counters: DaemonCounters, queues: QueueDepths, beats: AtomicCounters, health: DaemonHealth,
            checkpointFailures: CheckpointFailures, timings: DaemonTimings, quality: ForecastQuality, threadOfBeat: [String],
            threadOfQueue: [String]
        ) {
            self.counters = counters
            self.queues = queues
            self.beats = beats
            self.health = health
            self.checkpointFailures = checkpointFailures
            self.timings = timings
            self.quality = quality
            self.threadOfBeat = threadOfBeat
            self.threadOfQueue = threadOfQueue
        }
    }

    private let sources: Sources
    private let registry = PrometheusCollectorRegistry()
    /// Held for a whole scrape, so that two scrapes at once do not interleave their loads.
    private let scraping = Mutex<Int>(16_384)

    private let received, learned, otherShard, forecasts, updates, skippedUpdates: Counter
    private let drifts, clockResets, valuesScored, valuesBanded, valuesInBand: Counter
    private let outliers, levelShifts, segments: Counter
    private let missingValues, stuckEpisodes: Counter
    private let stuckChannels: Gauge
    /// Per stream with a slot (``StreamBoard``) and name: its rolling forecast MSE, persistence MSE
    /// and band coverage, each made when the stream first has the figure.
    private let perStream = Mutex<[String: Gauge]>([:])
    private let refused, samplesDropped, forecastsDropped: [String: Counter]
    private let checkpointsCommitted: Counter
    private let checkpointsFailed: [CheckpointFailureReason: Counter]
    private let curveRejected, curveHandshakeFailed: Counter
    private let streams, quietStreams, parkedBytes, checkpointAge, checkpointFailuresInARow, queueCapacity: Gauge
    private let unloadedIdle, unloadedForRoom, reloaded: Counter
    private let queueDepth, threadStalled: [Gauge]
    private let threadLoops: [Counter]
    private let cpu: Counter
    private let resident, virtual, openFiles, maxFiles, startTime: Gauge

    /// Reasons a sample is refused as bad input (a bounded set: every label value exists from
    /// the start, at 0).
    package static let refusalReasons = SampleRejection.allCases.map(\.rawValue) + StreamRejection.allCases.map(\.rawValue)
    /// Drops for lack of room: of samples before learning, of forecasts after.
    package static let sampleDropReasons = [DropReason.workerQueueFull.rawValue]
    package static let forecastDropReasons = [DropReason.forecastQueueFull.rawValue]
    /// The prefix of the refusals the restore counts for checkpoint records it set aside.
    package static let setAsidePrefix = "checkpoint_"
    private static let refusedName = "rnnd_samples_refused_total"
    private static let refusedHelp = "Messages refused as bad input, by reason (docs/protocol.md); never learned from."
    private static let setAsideName = "rnnd_checkpoint_records_set_aside_total"
    private static let setAsideHelp = "Checkpoint records set aside at start-up, by reason; their streams started afresh (docs/checkpoints.md)."

    package init(_ sources: Sources, queueCapacity capacity: Int) {
        self.sources = sources
        let r = registry
        func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
            r.makeCounter(descriptor: Self.describe(name, help), labels: labels)
        }
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
            r.makeGauge(descriptor: Self.describe(name, help), labels: labels)
        }
        /// A counter per reason, each at 0 from the start.
        func byReason(_ reasons: [String], _ name: String, _ help: String) -> [String: Counter] {
            Dictionary(uniqueKeysWithValues: reasons.map { ($0, counter(name, help, [("reason", $0)])) })
        }
        received = counter("rnnd_samples_received_total", "Messages read from the SUB socket, good or bad.")
        learned = counter("rnnd_samples_learned_total", "Samples a model forecast for and learned from.")
        refused = byReason(Self.refusalReasons, Self.refusedName, Self.refusedHelp)
        samplesDropped = byReason(
            Self.sampleDropReasons, "rnnd_samples_dropped_total", "Good samples dropped before learning for lack of room: a worker's queue was full.")
        otherShard = counter("rnnd_samples_other_shard_total", "Messages of streams another shard owns (--shard), dropped unread.")
        forecasts = counter("rnnd_forecasts_published_total", "Forecasts handed to the PUB socket.")
        forecastsDropped = byReason(
            Self.forecastDropReasons, "rnnd_forecasts_dropped_total", "Forecasts not published for lack of room (the model learned the sample), by reason.")
        updates = counter("rnnd_weight_updates_total", "TBPTT weight updates.")
        skippedUpdates = counter("rnnd_weight_updates_skipped_total", "Weight updates skipped for a non-finite loss or gradient.")
        drifts = counter("rnnd_drifts_total", "Lasting changes of a stream's error regime detected (the drift policy applied), over every stream.")
        outliers = counter("rnnd_outliers_total", "Samples with a value far outside what its stream has shown, held back by the outlier gate (learned from as the latest good value), over every stream.")
        levelShifts = counter("rnnd_level_shifts_total", "Level shifts the outlier gate adopted (a new level, or a return to the one before), over every stream.")
        segments = counter("rnnd_segments_total", "New segments of a stream: a gap of more than 10 usual intervals, or its time set back; forecasts made before it are not scored, over every stream.")
        missingValues = counter(
            "rnnd_missing_values_total", "Missing values (null channels) of accepted samples, carried forward from their channel's previous value, over every stream.")
        stuckChannels = gauge("rnnd_stuck_channels", "Channels whose value has stayed exactly the same far longer than usual for them, now, over the streams in memory.")
        stuckEpisodes = counter("rnnd_stuck_episodes_total", "Times a channel became stuck, over every stream.")
        clockResets = counter(
            "rnnd_clock_resets_total",
            "Stream clocks set back that were accepted: clock_reset_after consecutive out-of-order samples in increasing time order, over every stream.")
        valuesScored = counter(
            "rnnd_forecast_values_scored_total", "Forecast values (per target and step ahead) scored against the value they forecast, over every stream.")
        valuesBanded = counter("rnnd_forecast_values_banded_total", "Of the forecast values scored, those published with a band.")
        valuesInBand = counter("rnnd_forecast_values_in_band_total", "Of the forecast values with a band, those the band held: divided by the banded ones, the coverage.")
        streams = gauge("rnnd_streams", "Streams with a model in memory.")
        quietStreams = gauge("rnnd_streams_quiet", "Streams in memory without a sample for quiet_after seconds (docs/checkpoints.md), as the workers last counted.")
        parkedBytes = gauge(
            "rnnd_streams_parked_bytes",
            "Bytes of the records of streams unloaded with changes no checkpoint holds yet, waiting for the next one (docs/checkpoints.md), as the workers last counted; a worker whose own pass 64 MiB refuses new streams as too_many_streams (the store does not keep up).")
        unloadedIdle = counter(
            "rnnd_streams_unloaded_total", "Streams saved and unloaded from memory: after idle_unload seconds without a sample, or to make room past max_streams.",
            [("reason", "idle")])
        unloadedForRoom = counter(
            "rnnd_streams_unloaded_total", "Streams saved and unloaded from memory: after idle_unload seconds without a sample, or to make room past max_streams.",
            [("reason", "max_streams")])
        reloaded = counter("rnnd_streams_reloaded_total", "Streams loaded again from their saved state on a new sample, after being unloaded.")
        checkpointsCommitted = counter("rnnd_checkpoints_committed_total", "Checkpoints committed to the state store.")
        checkpointsFailed = Dictionary(uniqueKeysWithValues: CheckpointFailureReason.allCases.map {
            ($0, counter("rnnd_checkpoints_failed_total", "Checkpoint attempts that failed, by reason; nothing of them was committed.", [("reason", $0.rawValue)]))
        })
        curveRejected = counter(
            "rnnd_curve_clients_refused_total", "CURVE connection attempts whose client key is not allowed (ZAP said 400), on both sockets.")
        curveHandshakeFailed = counter(
            "rnnd_curve_handshakes_failed_total", "CURVE handshakes that failed before ZAP: no CURVE, another server key, a malformed handshake.")
        checkpointAge = gauge("rnnd_checkpoint_age_seconds", "Seconds since the latest committed checkpoint (since the start, before the first).")
        checkpointFailuresInARow = gauge(
            "rnnd_checkpoint_consecutive_failures", "Checkpoint attempts that failed since the latest commit: 0 while checkpoints commit.")
        queueCapacity = gauge("rnnd_queue_capacity", "The bound of each queue, in records (queue_capacity).")
        queueDepth = sources.threadOfQueue.map {
            gauge("rnnd_queue_depth", "Records waiting in a thread's queue: samples for a worker, forecasts for the publisher.", [("thread", $0)])
        }
        threadLoops = sources.threadOfBeat.map {
            counter("rnnd_thread_loops_total", "Turns of a thread's loop: batches handled, and at least two a second when idle.", [("thread", $0)])
        }
        threadStalled = sources.threadOfBeat.map {
            gauge("rnnd_thread_stalled", "1 while a thread makes no progress (what stops the systemd watchdog), else 0.", [("thread", $0)])
        }
        cpu = counter("process_cpu_seconds_total", "User and system CPU time of every thread, in seconds.")
        resident = gauge("process_resident_memory_bytes", "Resident memory, in bytes.")
        virtual = gauge("process_virtual_memory_bytes", "Virtual memory, in bytes.")
        openFiles = gauge("process_open_fds", "Open file descriptors.")
        maxFiles = gauge("process_max_fds", "The limit of open file descriptors.")
        startTime = gauge("process_start_time_seconds", "When the process started, in seconds since the Unix epoch.")
        queueCapacity.set(to: Double(capacity))
        startTime.set(to: ProcessStatistics.startTime)
    }

    private static func describe(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// The body of `/metrics`: every metric, read now.
    package func exposition() -> [UInt8] {
        scraping.withLock { capacity in
            load()
            var text: [UInt8] = []
            text.reserveCapacity(capacity)
            registry.emit(into: &text)
            let t = sources.timings
            Self.appendHistogram(
                "rnnd_forecast_latency_seconds",
                help: "From the sample taken off the SUB socket to its forecast handed to the PUB socket.",
                t.latency, into: &text)
            Self.appendHistogram(
                "rnnd_weight_update_duration_seconds", help: "Time of each learn() that updated the weights (TBPTT over the window).",
                t.updates, into: &text)
            Self.appendHistogram(
                "rnnd_checkpoint_duration_seconds", help: "Time of each committed checkpoint, from its start to its commit.",
                t.checkpoints, into: &text)
            Self.appendHistogram(
                "rnnd_anomaly_score", help: "The anomaly score of every sample that got one (0: inside the band; docs/protocol.md), over every stream.",
                sources.quality.anomalies, into: &text)
            capacity = max(capacity, text.count + text.count / 4)
            return text
        }
    }

    /// The atomics' values into the registry's counters and gauges.
    private func load() {
        let c = sources.counters
        received.load(c.received.load(ordering: .relaxed))
        learned.load(c.accepted.load(ordering: .relaxed))
        otherShard.load(c.otherShard.load(ordering: .relaxed))
        forecasts.load(c.forecasts.load(ordering: .relaxed))
        updates.load(c.updates.load(ordering: .relaxed))
        skippedUpdates.load(c.skippedUpdates.load(ordering: .relaxed))
        streams.set(to: Double(c.streams.load(ordering: .relaxed)))
        quietStreams.set(to: Double(c.quietStreams.load(ordering: .relaxed)))
        parkedBytes.set(to: Double(c.parkedBytes.load(ordering: .relaxed)))
        unloadedIdle.load(c.unloadedIdle.load(ordering: .relaxed))
        unloadedForRoom.load(c.unloadedForRoom.load(ordering: .relaxed))
        reloaded.load(c.reloaded.load(ordering: .relaxed))
        drifts.load(c.drifts.load(ordering: .relaxed))
        outliers.load(c.outliers.load(ordering: .relaxed))
        levelShifts.load(c.levelShifts.load(ordering: .relaxed))
        segments.load(c.segments.load(ordering: .relaxed))
        missingValues.load(c.missingValues.load(ordering: .relaxed))
        stuckChannels.set(to: Double(c.stuckChannels.load(ordering: .relaxed)))
        stuckEpisodes.load(c.stuckEpisodes.load(ordering: .relaxed))
        clockResets.load(c.clockResets.load(ordering: .relaxed))
        let q = sources.quality
        valuesScored.load(q.scored)
        valuesBanded.load(q.banded)
        valuesInBand.load(q.covered)
        loadStreams(q.streams)
        checkpointsCommitted.load(c.checkpoints.load(ordering: .relaxed))
        let failures = sources.checkpointFailures
        for (reason, count) in failures.counts { checkpointsFailed[reason]?.load(count) }
        checkpointFailuresInARow.set(to: Double(failures.run?.attempts ?? 0))
        curveRejected.load(c.curveRejected.load(ordering: .relaxed))
        curveHandshakeFailed.load(c.curveHandshakeFailed.load(ordering: .relaxed))
        let last = c.lastCheckpoint.load(ordering: .relaxed)
        checkpointAge.set(to: max(0, Date().timeIntervalSince1970 - (last == 0 ? ProcessStatistics.startTime : Double(last))))

        for (reason, count) in c.refusalsByReason where reason != StreamShard.otherShardReason {
            if let counter = refused[reason] ?? samplesDropped[reason] ?? forecastsDropped[reason] {
                counter.load(count)
            } else if reason.hasPrefix(Self.setAsidePrefix) {
                // Made when first seen: a record set aside is rare, and its reasons are a bounded set
                // (RecordProblem.reason, and store_damaged for a whole database moved aside).
                registry.makeCounter(
                    descriptor: Self.describe(Self.setAsideName, Self.setAsideHelp),
                    labels: [("reason", String(reason.dropFirst(Self.setAsidePrefix.count)))]
                ).load(count)
            } else {
                // A refusal reason missing from refusalReasons: counted all the same.
                registry.makeCounter(descriptor: Self.describe(Self.refusedName, Self.refusedHelp), labels: [("reason", reason)]).load(count)
            }
        }
        for (i, gauge) in queueDepth.enumerated() { gauge.set(to: Double(sources.queues.depth(i))) }
        let stalled: [String]
        if case .stalled(let threads, _) = sources.health.current { stalled = threads } else { stalled = [] }
        for (i, thread) in sources.threadOfBeat.enumerated() {
            threadLoops[i].load(sources.beats[i])
            threadStalled[i].set(to: stalled.contains(thread) ? 1 : 0)
        }
        let process = ProcessStatistics.read()
        cpu.load(process.cpuSeconds)
        resident.set(to: Double(process.residentBytes))
        virtual.set(to: Double(process.virtualBytes))
        openFiles.set(to: Double(process.openFileDescriptors))
        maxFiles.set(to: Double(process.maxFileDescriptors))
    }

    /// The per-stream gauges: made for a stream once it has the figure (swift-prometheus would
    /// write a NaN as `nan`, which the text format does not allow), set at every scrape. At most
    /// `StreamBoard.capacity` streams, six series each.
    private func loadStreams(_ board: StreamBoard) {
        let now = Date().timeIntervalSince1970
        perStream.withLock { gauges in
            for row in board.rows() {
                for (name, help, value) in [
                    ("rnnd_stream_sample_age_seconds", Self.streamAgeHelp, row.lastSample.isFinite ? max(0, now - row.lastSample) : .nan),
                    ("rnnd_stream_forecast_mse", Self.streamMSEHelp, row.forecastMSE),
                    ("rnnd_stream_persistence_mse", Self.streamPersistenceHelp, row.persistenceMSE),
                    ("rnnd_stream_band_coverage_ratio", Self.streamCoverageHelp, row.coverage),
                    ("rnnd_stream_missing_values", Self.streamMissingHelp, Double(row.carried)),
                    ("rnnd_stream_stuck_channels", Self.streamStuckHelp, Double(row.stuck)),
                ] where value.isFinite {
                    let key = name + "\u{0}" + row.stream
                    let gauge = gauges[key] ?? registry.makeGauge(descriptor: Self.describe(name, help), labels: [("stream", row.stream)])
                    gauges[key] = gauge
                    gauge.set(to: value)
                }
            }
        }
    }

    private static let streamAgeHelp =
        "Seconds since a stream's latest sample (loaded or not: an unloaded stream keeps its series)."
    private static let streamMSEHelp =
        "Mean squared error of a stream's one-step forecasts over about its latest 1000 samples, in its units squared (every target)."
    private static let streamPersistenceHelp =
        "The same for persistence (the latest value as forecast): the baseline the forecast should stay under."
    private static let streamMissingHelp =
        "Missing values (null channels) a stream carried forward since it was loaded (0 again after a restart or an unload): which channels, the forecasts' \"missing\"."
    private static let streamStuckHelp =
        "A stream's channels stuck now (a value unchanged far longer than usual for the channel): which, the forecasts' \"stuck\"."
    private static let streamCoverageHelp =
        "Share of a stream's values inside the band of their one-step forecast, over about its latest 1000 banded forecasts."

    /// A histogram in the text format: HELP, TYPE, the cumulative buckets (`le` in seconds), then
    /// `_sum` and `_count`, the same count as the `+Inf` bucket.
    package static func appendHistogram(_ name: String, help: String, _ histogram: AtomicHistogram, into text: inout [UInt8]) {
        let s = histogram.snapshot()
        var lines = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (i, count) in s.cumulative.dropLast().enumerated() {
            let le = histogram.unit == 1e-9 ? Duration.nanoseconds(histogram.bounds[i]).bucketRepresentation : "\(histogram.values[i])"
            lines += "\(name)_bucket{le=\"\(le)\"} \(count)\n"
        }
        lines += "\(name)_bucket{le=\"+Inf\"} \(s.count)\n\(name)_sum \(s.sumSeconds)\n\(name)_count \(s.count)\n"
        text.append(contentsOf: lines.utf8)
    }
}

extension Counter {
    /// Sets the counter to `value`, a total kept elsewhere (`reset` and `increment` in one scrape,
    /// which no other scrape sees half done).
    fileprivate func load(_ value: Int) {
        reset()
        increment(by: Int64(value))
    }

    fileprivate func load(_ value: Double) {
        reset()
        increment(by: value)
    }
}
