import Foundation
@testable import RNNDaemon
@testable import RNNMetrics
@testable import RNNWire
import Synchronization
import Testing

/// The metrics in process: the lock-free histograms, the exposition read strictly, the HTTP
/// answers of /metrics and /healthz in every health state; and the strict reader itself.
@Suite(.timeLimit(.minutes(1)))
struct MetricsTests {
    @Test func histogramBucketsAreCumulativeAcrossSlots() {
        let h = AtomicHistogram(seconds: [1e-6, 1e-3, 1], slots: 3)
        #expect(h.bounds == [1_000, 1_000_000, 1_000_000_000])
        h.observe(500, slot: 0)            // ≤ 1 µs
        h.observe(1_000, slot: 1)          // = 1 µs: a bound belongs to its bucket (le)
        h.observe(1_001, slot: 2)          // ≤ 1 ms
        h.observe(999_999_999, slot: 0)    // ≤ 1 s
        h.observe(5_000_000_000, slot: 1)  // above every bound: +Inf only
        let s = h.snapshot()
        #expect(s.cumulative == [2, 3, 4, 5])
        #expect(s.count == 5)
        #expect(abs(s.sumSeconds - 6.000002500) < 1e-9)
    }

    @Test func histogramTakesObservationsFromSeveralThreadsAtOnce() {
        let h = AtomicHistogram(seconds: DaemonTimings.updateBounds, slots: 4)
        DispatchQueue.concurrentPerform(iterations: 4) { slot in
            for i in 0..<100_000 { h.observe(UInt64(i % 1_000) * 1_000, slot: slot) }
        }
        let s = h.snapshot()
        #expect(s.count == 400_000)
        #expect(zip(s.cumulative, s.cumulative.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(abs(s.sumSeconds - 4 * 100 * 499_500e-6) < 1e-6)
    }

    /// Sources as a daemon with two workers would have them, with some counts in.
    static func sources() -> MetricsExporter.Sources {
        let counters = DaemonCounters()
        counters.received.store(20, ordering: .relaxed)
        counters.accepted.store(9, ordering: .relaxed)
        counters.forecasts.store(8, ordering: .relaxed)
        counters.updates.store(7, ordering: .relaxed)
        counters.skippedUpdates.store(1, ordering: .relaxed)
        counters.streams.store(2, ordering: .relaxed)
        counters.parkedBytes.store(19_360, ordering: .relaxed)
        counters.otherShard.store(3, ordering: .relaxed)
        counters.refuse("malformed_json", count: 4)
        counters.refuse("out_of_order")
        counters.refuse("worker_queue_full", count: 2)
        counters.refuse("forecast_queue_full")
        counters.refuse("checkpoint_checksum_mismatch")
        let queues = QueueDepths(queues: 3, capacity: 100)
        _ = queues.reserve(1, 17)
        let beats = AtomicCounters(count: 5)
        beats.add(2, 42)
        let health = DaemonHealth()
        health.set(.stalled(["rnnd-worker-1"], limit: .seconds(30)))
        let failures = CheckpointFailures()
        failures.failed(.busy, error: "database is locked", at: 1_700_000_000)
        _ = failures.committed()
        failures.failed(.diskFull, error: "SQLite error 13: database or disk is full", at: 1_700_000_100)
        failures.failed(.diskFull, error: "SQLite error 13: database or disk is full", at: 1_700_000_101)
        let timings = DaemonTimings(workers: 2)
        timings.latency.observe(300_000, slot: 0)
        timings.updates.observe(40_000, slot: 1)
        return .init(
            counters: counters, queues: queues, beats: beats, health: health, checkpointFailures: failures, timings: timings,
            quality: ForecastQuality(workers: 2, streamLabels: 0),
            threadOfBeat: ["rnnd-publisher", "rnnd-worker-0", "rnnd-worker-1", "rnnd-checkpoints", "rnnd-ingest"],
            threadOfQueue: ["rnnd-worker-0", "rnnd-worker-1", "rnnd-publisher"])
    }

    /// docs/metrics.md names every family the exposition has and every value of its `reason`
    /// labels, and docs/protocol.md every reason a sample is refused for, so that neither page
    /// falls behind a new metric or reason.
    @Test func theDocsNameEveryFamilyAndReason() throws {
        let docs = ReplayCommandTests.root.appendingPathComponent("docs")
        let metricsPage = try String(contentsOf: docs.appendingPathComponent("metrics.md"), encoding: .utf8)
        let protocolPage = try String(contentsOf: docs.appendingPathComponent("protocol.md"), encoding: .utf8)
        let m = try PrometheusText(String(decoding: MetricsExporter(Self.sources(), queueCapacity: 100).exposition(), as: UTF8.self))
        #expect(m.families.count >= 40)
        // (Each check on a Bool of its own: an expectation on `page.contains` would print the page.)
        for name in m.families.keys.sorted() {
            let named = metricsPage.contains("`\(name)")
            #expect(named, "docs/metrics.md does not name \(name)")
        }
        let reasons = Set(m.families.values.flatMap { $0.samples.compactMap { $0.labels["reason"] } })
        #expect(reasons.count >= 25)
        for reason in reasons.sorted() {
            let named = metricsPage.contains("`\(reason)`") || metricsPage.contains("\"\(reason)\"")
            #expect(named, "docs/metrics.md does not name the reason \(reason)")
        }
        for reason in SampleRejection.allCases.map(\.rawValue) + StreamRejection.allCases.map(\.rawValue) {
            let named = protocolPage.contains("`\(reason)`")
            #expect(named, "docs/protocol.md does not name the refusal \(reason)")
        }
    }

    @Test func theExpositionIsStrictPrometheusTextWithTheCounts() throws {
        let exporter = MetricsExporter(Self.sources(), queueCapacity: 100)
        let text = String(decoding: exporter.exposition(), as: UTF8.self)
        let m = try PrometheusText(text)
        for family in m.families.values {
            #expect(family.help?.isEmpty == false && family.type != nil, "\(family.name): HELP and TYPE")
            #expect(family.name.hasPrefix("rnnd_") || family.name.hasPrefix("process_"), "\(family.name)")
            #expect((family.type == "counter") == family.name.hasSuffix("_total"), "\(family.name): counters and only counters end in _total")
        }
        #expect(m.value("rnnd_samples_received_total") == 20)
        #expect(m.value("rnnd_samples_learned_total") == 9)
        #expect(m.value("rnnd_forecasts_published_total") == 8)
        #expect(m.value("rnnd_weight_updates_total") == 7)
        #expect(m.value("rnnd_weight_updates_skipped_total") == 1)
        #expect(m.value("rnnd_streams") == 2)
        #expect(m.value("rnnd_streams_parked_bytes") == 19_360)
        #expect(m.value("rnnd_samples_other_shard_total") == 3)
        #expect(m.value("rnnd_samples_refused_total", ["reason": "malformed_json"]) == 4)
        #expect(m.value("rnnd_samples_refused_total", ["reason": "out_of_order"]) == 1)
        #expect(m.value("rnnd_samples_refused_total", ["reason": "too_many_streams"]) == 0, "every reason exists from the start")
        let reasons = Set(m.families["rnnd_samples_refused_total"]?.samples.compactMap { $0.labels["reason"] } ?? [])
        #expect(reasons == Set(SampleRejection.allCases.map(\.rawValue) + StreamRejection.allCases.map(\.rawValue)))
        #expect(m.value("rnnd_samples_dropped_total", ["reason": "worker_queue_full"]) == 2)
        #expect(m.value("rnnd_forecasts_dropped_total", ["reason": "forecast_queue_full"]) == 1)
        // A slow subscriber's losses are libzmq's, uncounted: no series claims to count them.
        let forecastDrops = m.families["rnnd_forecasts_dropped_total"]?.samples.compactMap { $0.labels["reason"] }
        #expect(forecastDrops == ["forecast_queue_full"])
        #expect(m.value("rnnd_checkpoint_records_set_aside_total", ["reason": "checksum_mismatch"]) == 1)
        #expect(m.value("rnnd_checkpoints_failed_total", ["reason": "disk_full"]) == 2)
        #expect(m.value("rnnd_checkpoints_failed_total", ["reason": "busy"]) == 1)
        #expect(m.value("rnnd_checkpoints_failed_total", ["reason": "io_error"]) == 0, "every reason exists from the start")
        let failureReasons = Set(m.families["rnnd_checkpoints_failed_total"]?.samples.compactMap { $0.labels["reason"] } ?? [])
        #expect(failureReasons == Set(CheckpointFailureReason.allCases.map(\.rawValue)))
        #expect(m.value("rnnd_checkpoint_consecutive_failures") == 2, "the two since the commit")
        #expect(m.value("rnnd_queue_depth", ["thread": "rnnd-worker-1"]) == 17)
        #expect(m.value("rnnd_queue_depth", ["thread": "rnnd-publisher"]) == 0)
        #expect(m.value("rnnd_queue_capacity") == 100)
        #expect(m.value("rnnd_thread_loops_total", ["thread": "rnnd-worker-1"]) == 42)
        #expect(m.value("rnnd_thread_stalled", ["thread": "rnnd-worker-1"]) == 1)
        #expect(m.value("rnnd_thread_stalled", ["thread": "rnnd-worker-0"]) == 0)
        #expect(m.value("rnnd_forecast_latency_seconds_count") == 1)
        #expect(m.value("rnnd_forecast_latency_seconds_bucket", ["le": "0.00025"]) == 0)
        #expect(m.value("rnnd_forecast_latency_seconds_bucket", ["le": "0.0005"]) == 1)
        #expect(m.value("rnnd_forecast_latency_seconds_sum") == 0.0003)
        #expect(m.value("rnnd_weight_update_duration_seconds_count") == 1)
        #expect(m.value("rnnd_checkpoint_duration_seconds_count") == 0)
        #expect((m.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((m.value("process_open_fds") ?? 0) >= 3)
        #expect((m.value("process_cpu_seconds_total") ?? 0) > 0)
        let start = try #require(m.value("process_start_time_seconds"))
        #expect(start <= Date().timeIntervalSince1970 && start > Date().timeIntervalSince1970 - 3600, "the test process started within the hour")
        // A second scrape gives the same counts (loaded, not added up).
        let again = try PrometheusText(String(decoding: exporter.exposition(), as: UTF8.self))
        #expect(again.value("rnnd_samples_received_total") == 20)
        #expect(again.value("rnnd_samples_refused_total", ["reason": "malformed_json"]) == 4)
    }

    /// Where Prometheus's linter is installed, if it is.
    static let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Prometheus's own linter, where it is installed (Debian: apt-get install prometheus); shown
    /// as skipped where it is not.
    @Test(.enabled(if: promtool != nil, "promtool is not installed (Debian: apt-get install prometheus)"))
    func promtoolFindsNothingToReport() throws {
        let promtool = try #require(Self.promtool)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: promtool)
        process.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(MetricsExporter(Self.sources(), queueCapacity: 100).exposition()))
        try input.fileHandleForWriting.close()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && report.isEmpty, "\(report)")
    }

    /// What /metrics and /healthz answer, without the HTTP framing (MetricsEndToEndTests goes
    /// through HTTP): in-process servers would need Swift's cooperative pool, which the test
    /// runner's synchronous tests keep busy.
    @Test func healthzAnswersForEveryStateAndOnlyGETAndHEADAreServed() throws {
        let health = DaemonHealth()
        let exporter = MetricsExporter(Self.sources(), queueCapacity: 100)
        func answer(_ method: String, _ path: String) -> MetricsServer.Answer {
            MetricsServer.answer(method: method, path: path, exporter: exporter, health: health)
        }
        let cases: [(DaemonHealth.State, Int, String)] = [
            (.starting, 503, "starting: restoring the state and binding the sockets\n"),
            (.ready, 200, "ok: every thread is making progress\n"),
            (.stalled(["rnnd-worker-1", "rnnd-ingest"], limit: .seconds(15)), 503, "stalled: rnnd-worker-1, rnnd-ingest made no progress for 15.0 seconds\n"),
            (.stopping, 503, "stopping: finishing the samples in flight and the last checkpoint\n"),
            (.checkpointsFailing(.init(since: 1_700_000_000, attempts: 3, reason: .diskFull, error: "SQLite error 13: database or disk is full"),
                lastCommit: nil, limit: .seconds(180)), 503,
             "checkpoints failing since 2023-11-14T22:13:20Z (3 attempts; none committed since the start, the limit 180.0 seconds): "
                + "disk_full: SQLite error 13: database or disk is full\n"),
        ]
        for (state, status, text) in cases {
            health.set(state)
            let a = answer("GET", "/healthz")
            #expect(a.status == status && String(decoding: a.body, as: UTF8.self) == text, "\(state)")
            #expect(a.headers["Content-Length"] == String(a.body.count))
        }

        let get = answer("GET", "/metrics")
        #expect(get.status == 200 && get.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(get.headers["Content-Length"] == String(get.body.count))
        _ = try PrometheusText(String(decoding: get.body, as: UTF8.self))
        let head = answer("HEAD", "/metrics")
        #expect(head.status == 200 && head.body.isEmpty)
        #expect(Int(head.headers["Content-Length"] ?? "") ?? 0 > 1000, "HEAD says how long GET's body is")
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let a = answer(method, "/metrics")
            #expect(a.status == 405 && a.headers["Allow"] == "GET, HEAD", "\(method)")
        }
        for path in ["/", "/metricsx", "/metrics/x", "/health", "/healthz/"] {
            #expect(answer("GET", path).status == 404, "\(path)")
        }
    }

    /// The reader refuses what Prometheus would refuse, so that passing it means something.
    @Test(arguments: [
        ("no_newline 1", "does not end with a line feed"),
        ("1bad 1\n", "bad metric name"),
        ("m{1x=\"a\"} 1\n", "bad label name"),
        ("m{__x=\"a\"} 1\n", "bad label name"),
        ("m{a=b} 1\n", "must be quoted"),
        ("m{a=\"\\t\"} 1\n", "bad escape"),
        ("m{a=\"x\",a=\"y\"} 1\n", "twice"),
        ("m{a=\"x\" 1\n", "expected ',' or '}'"),
        ("m 1.2.3\n", "bad value"),
        ("m inf\n", "bad value"),
        ("m 1 2 3\n", "at most a timestamp"),
        ("m 1 1.5\n", "bad timestamp"),
        ("m 1\nm 2\n", "appears twice"),
        ("# TYPE m gauge\n# TYPE m gauge\nm 1\n", "a second TYPE"),
        ("# HELP m a\n# HELP m b\nm 1\n", "a second HELP"),
        ("# HELP m bad \\t escape\nm 1\n", "bad escape in HELP"),
        ("m 1\n# TYPE m gauge\n", "TYPE after samples"),
        ("# TYPE m widget\nm 1\n", "unknown type"),
        ("a 1\nb 1\na{x=\"1\"} 1\n", "not together"),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", "not cumulative"),
        ("# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", "not increasing"),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", "no le=\"+Inf\""),
        ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n", "≠ _count"),
        ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", "no _sum"),
        ("# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n", "without a valid le"),
    ])
    func theStrictReaderRefusesMalformedText(text: String, problem: String) {
        #expect {
            _ = try PrometheusText(text)
        } throws: { error in
            "\(error)".contains(problem)
        }
    }

    @Test func theStrictReaderAcceptsTheFormatsCorners() throws {
        let text = """
            # A comment, then the directives with blanks around, escapes everywhere.
            # HELP m_total A \\\\ backslash and a \\n line feed.
            # TYPE m_total counter
            m_total{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb",} 3 1700000000000
            # TYPE g gauge
            g{x="1"} +Inf
            g{x="2"} -Inf
            g{x="3"} NaN
            g{x="4"} -1.5e-3

            # TYPE h histogram
            h_bucket{le="0.5"} 1
            h_bucket{le="+Inf"} 2
            h_sum 0.75
            h_count 2

            """
        let m = try PrometheusText(text)
        #expect(m.families["m_total"]?.help == "A \\ backslash and a \n line feed.")
        #expect(m.value("m_total", ["path": "C:\\dir", "quote": "say \"hi\"", "nl": "a\nb"]) == 3)
        #expect(m.value("g", ["x": "1"]) == .infinity && m.value("g", ["x": "2"]) == -.infinity)
        #expect(m.value("g", ["x": "3"])?.isNaN == true && m.value("g", ["x": "4"]) == -0.0015)
        #expect(m.value("h_count") == 2 && m.order == ["m_total", "g", "h"])
    }
}
