import Foundation
@testable import RNNDaemon
@testable import RNNMetrics
import Testing
import ZeroMQ

/// `rnnd run --metrics-listen` through the real binary: /metrics read strictly as Prometheus text
/// counts exactly what the test sent, /healthz answers, and a bad or taken address stops the start.
@Suite(.timeLimit(.minutes(2)))
struct MetricsEndToEndTests {
    typealias RunningDaemon = DaemonEndToEndTests.RunningDaemon

    /// Reads /metrics from `address` and parses it strictly.
    static func scrape(_ address: String) throws -> PrometheusText {
        let reply = try HTTPProbe.request("GET", "/metrics", at: address)
        #expect(reply.status == 200)
        #expect(reply.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        return try PrometheusText(reply.text)
    }

    /// A scrape once nothing is in flight: every sample received so far learned (or refused or
    /// dropped) and its forecast published, and the same counts 100 ms later.
    static func settled(_ address: String) throws -> PrometheusText {
        let deadline = Date().addingTimeInterval(5)
        var last = try scrape(address)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            let now = try scrape(address)
            func total(_ m: PrometheusText, _ name: String) -> Double { m.families[name]?.samples.reduce(0) { $0 + $1.value } ?? -1 }
            let counts = ["rnnd_samples_received_total", "rnnd_forecasts_published_total", "rnnd_forecast_latency_seconds_count"]
            if counts.allSatisfy({ total(now, $0) == total(last, $0) }),
                total(now, "rnnd_samples_learned_total") == total(now, "rnnd_forecasts_published_total") + total(now, "rnnd_forecasts_dropped_total"),
                now.value("rnnd_forecast_latency_seconds_count") == now.value("rnnd_forecasts_published_total")
            {
                return now
            }
            last = now
        }
        Issue.record("the counts did not settle within 5 s")
        return last
    }

    /// Whether the log of a daemon that exited says `text`, once its last bytes are read.
    static func logs(_ daemon: RunningDaemon, _ text: String) -> Bool {
        let deadline = Date().addingTimeInterval(2)
        while !daemon.text.contains(text) && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        return daemon.text.contains(text)
    }

    @Test func metricsCountWhatWasSent() throws {
        let daemon = try RunningDaemon(ServiceEndToEndTests.model + ["--metrics-listen", "127.0.0.1:0"])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let address = try daemon.await("metrics on: http://")
        let samplesIn = try daemon.await("samples in:"), forecastsOut = try daemon.await("forecasts out:")
        _ = try daemon.await("ready")
        let health = try HTTPProbe.request("GET", "/healthz", at: address)
        #expect(health.status == 200 && health.text.hasPrefix("ok"), "\(health.status) \(health.text)")

        // Past the slow joiner (its warm-up stream is counted too), then what is counted from here,
        // once the last warm-up samples are through (the forecast that ended the warm-up need not
        // be of the last one sent).
        let client = try ForecastClient(samplesIn: samplesIn, forecastsOut: forecastsOut, warmup: #"{"v": 1}"#)
        let before = try Self.settled(address)

        // N good samples on two streams, M bad ones of known reasons in between.
        let n = 40
        var refusals: [String: Int] = [:]
        func bad(_ reason: String, _ frames: [[UInt8]]) throws {
            #expect(try client.pub.sendMultipart(frames) == .sent)
            refusals[reason, default: 0] += 1
        }
        for i in 0..<n / 2 {
            let t = 1_700_000_000 + Double(i)
            try client.send("plant/a", #"{"v": \#(sin(Double(i))), "t": \#(t)}"#)
            try client.send("plant/b", #"{"v": \#(cos(Double(i))), "t": \#(t)}"#)
            switch i {
            case 3, 5, 7: try bad("malformed_json", [Array("plant/a".utf8), Array("not json".utf8)])
            case 4, 9: try bad("non_finite_value", [Array("plant/b".utf8), Array(#"{"v": 1e39}"#.utf8)])
            case 6: try bad("width_changed", [Array("plant/a".utf8), Array(#"{"v": [1, 2]}"#.utf8)])
            case 8: try bad("out_of_order", [Array("plant/b".utf8), Array(#"{"v": 1, "t": 1600000000}"#.utf8)])
            case 10: try bad("wrong_frame_count", [Array("plant/a".utf8), Array(#"{"v": 1}"#.utf8), Array("extra".utf8)])
            case 11: try bad("empty_topic", [[], Array(#"{"v": 1}"#.utf8)])
            default: break
            }
        }
        let m = refusals.values.reduce(0, +)
        try client.collect(until: { $0["plant/a", default: []].count + $0["plant/b", default: []].count >= n }, seconds: 20)
        #expect(client.messages["plant/a", default: []].count + client.messages["plant/b", default: []].count == n)

        // The publisher counts a forecast and observes its latency just after handing it over, so
        // the last ones may lag the subscriber by a moment.
        var after = try Self.scrape(address)
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline,
            (after.value("rnnd_forecast_latency_seconds_count") ?? 0) - (before.value("rnnd_forecast_latency_seconds_count") ?? 0) < Double(n)
        {
            Thread.sleep(forTimeInterval: 0.05)
            after = try Self.scrape(address)
        }
        func delta(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            guard let a = after.value(name, labels), let b = before.value(name, labels) else { return nil }
            return a - b
        }
        #expect(delta("rnnd_samples_received_total") == Double(n + m))
        #expect(delta("rnnd_samples_learned_total") == Double(n))
        #expect(delta("rnnd_forecasts_published_total") == Double(n))
        #expect(delta("rnnd_forecast_latency_seconds_count") == Double(n))
        for reason in MetricsExporter.refusalReasons {
            #expect(delta("rnnd_samples_refused_total", ["reason": reason]) == Double(refusals[reason] ?? 0), "\(reason)")
        }
        #expect(after.value("rnnd_streams") == 3, "plant/a, plant/b and the warm-up stream")

        // The whole scrape, not only the deltas: every sample accounted for, histograms that agree
        // with their counters.
        func total(_ name: String) -> Double { after.families[name]?.samples.reduce(0) { $0 + $1.value } ?? -1 }
        #expect(total("rnnd_samples_received_total") == total("rnnd_samples_learned_total") + total("rnnd_samples_refused_total")
            + total("rnnd_samples_dropped_total") + total("rnnd_samples_other_shard_total"))
        #expect(total("rnnd_samples_learned_total") == total("rnnd_forecasts_published_total") + total("rnnd_forecasts_dropped_total"))
        #expect(after.value("rnnd_forecast_latency_seconds_count") == after.value("rnnd_forecasts_published_total"))
        #expect(after.value("rnnd_weight_update_duration_seconds_count") == after.value("rnnd_weight_updates_total"))
        #expect((after.value("rnnd_weight_updates_total") ?? 0) > 0)
        let latency = try #require(after.value("rnnd_forecast_latency_seconds_sum"))
        #expect(latency > 0 && latency / Double(n) < 1, "a forecast takes well under a second here: \(latency / Double(n)) s")
        for family in after.families.values {
            #expect(family.help?.isEmpty == false && family.type != nil, "\(family.name): HELP and TYPE")
        }
        #expect(after.value("rnnd_thread_stalled", ["thread": "rnnd-worker-1"]) == 0)
        #expect((after.value("process_resident_memory_bytes") ?? 0) > 1_000_000)

        // Only the two paths, only GET and HEAD.
        #expect(try HTTPProbe.request("GET", "/metrics/x", at: address).status == 404)
        #expect(try HTTPProbe.request("DELETE", "/healthz", at: address).status == 405)
        let head = try HTTPProbe.request("HEAD", "/healthz", at: address)
        #expect(head.status == 200 && head.body.isEmpty)

        #expect(daemon.stop() == 0, "SIGTERM drains and exits 0 with the metrics server running")
        #expect(throws: HTTPProbe.Failure.self, "the server stopped with the daemon") { try HTTPProbe.request("GET", "/healthz", at: address) }
    }

    /// The forecasts' own figures: values scored, banded and held over every stream, the anomaly
    /// scores, drifts, and the rolling errors and coverage of the first streams by id, and of no
    /// more than `--metrics-stream-labels`.
    @Test func forecastQualityIsMeasured() throws {
        let daemon = try RunningDaemon([
            "--sub", "@tcp://127.0.0.1:*", "--pub", "@tcp://127.0.0.1:*", "--workers", "1",
            "--model", "gru", "--hidden", "8", "--window", "8", "--metrics-listen", "127.0.0.1:0", "--metrics-stream-labels", "3",
        ])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let address = try daemon.await("metrics on: http://")
        let client = try ForecastClient(samplesIn: try daemon.await("samples in:"), forecastsOut: try daemon.await("forecasts out:"), warmup: #"{"v": 1}"#)
        let before = try Self.settled(address)

        // Two calm streams, then one that changes its regime at sample 700: a drift.
        let counts = ["q/a": 300, "q/b": 300, "q/drifty": 1200]
        for i in 0..<1200 {
            let t = 1_700_000_000 + 60 * Double(i)
            if i < 300 {
                try client.send("q/a", #"{"v": \#(sin(Double(i) * 0.3)), "t": \#(t)}"#)
                try client.send("q/b", #"{"v": \#(cos(Double(i) * 0.2) * 10), "t": \#(t)}"#)
            }
            let v = i < 700 ? sin(Double(i) * 0.3) + 0.01 * Double(i % 7) : 6 + 3 * sin(Double(i) * 0.9) + 0.1 * Double(i % 5)
            try client.send("q/drifty", #"{"v": \#(v), "t": \#(t)}"#)
        }
        try client.collect(until: { m in counts.allSatisfy { m[$0.key, default: []].count >= $0.value } }, seconds: 30)
        let after = try Self.settled(address)
        func delta(_ name: String) -> Double { (after.value(name) ?? 0) - (before.value(name) ?? 0) }

        // What the subscriber saw: forecasts with a band before a sample, and anomaly scores.
        var banded = 0, scores = 0
        for (stream, n) in counts {
            let messages = try client.messages[stream, default: []].map {
                try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])
            }
            try #require(messages.count == n)
            banded += messages.dropLast().filter { $0["lower"] as? [[Double]] != nil }.count
            scores += messages.filter { $0["anomaly"] is Double }.count
        }
        #expect(delta("rnnd_forecast_values_scored_total") == Double(counts.values.reduce(0) { $0 + $1 - 1 }))
        #expect(delta("rnnd_forecast_values_banded_total") == Double(banded))
        let held = delta("rnnd_forecast_values_in_band_total")
        #expect(held <= Double(banded) && abs(held / Double(banded) - 0.9) < 0.05, "\(held) of \(banded) in their band")
        #expect(delta("rnnd_anomaly_score_count") == Double(scores))
        #expect(delta("rnnd_drifts_total") >= 1, "the change of regime")

        // Series of their own for the first three streams: the warm-up stream (with a figure only
        // if it took more than one sample), then q/a and q/b; none for q/drifty.
        let labelled = Set(after.families["rnnd_stream_forecast_mse"]?.samples.compactMap { $0.labels["stream"] } ?? [])
        #expect(labelled.subtracting(["warmup"]) == ["q/a", "q/b"], "\(labelled)")
        for stream in ["q/a", "q/b"] {
            let mse = try #require(after.value("rnnd_stream_forecast_mse", ["stream": stream]))
            let persistence = try #require(after.value("rnnd_stream_persistence_mse", ["stream": stream]))
            let coverage = try #require(after.value("rnnd_stream_band_coverage_ratio", ["stream": stream]))
            #expect(mse > 0 && persistence > 0 && mse < persistence, "\(stream): the model ahead of persistence on a sine")
            #expect(coverage > 0.7 && coverage <= 1, "\(stream): \(coverage)")
        }
        #expect(daemon.stop() == 0)
    }

    /// Whether this machine has an IPv6 loopback to bind.
    static let hasIPv6Loopback = (try? TakenPort(host: "::1", v6: true)) != nil

    @Test(.enabled(if: hasIPv6Loopback, "this machine has no IPv6 loopback (::1) to bind"))
    func ipv6LoopbackServesToo() throws {
        let daemon = try RunningDaemon(ServiceEndToEndTests.model + ["--metrics-listen", "[::1]:0"])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let address = try daemon.await("metrics on: http://")
        #expect(address.hasPrefix("[::1]:"))
        _ = try daemon.await("ready")
        #expect(try HTTPProbe.request("GET", "/healthz", at: address).status == 200)
        _ = try Self.scrape(address)
        #expect(daemon.stop() == 0)
    }

    @Test func aTakenPortExits69() throws {
        let taken = try TakenPort()
        let daemon = try RunningDaemon(ServiceEndToEndTests.model + ["--metrics-listen", "127.0.0.1:\(taken.port)"])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        daemon.waitUntilExit()
        #expect(daemon.process.terminationStatus == 69)
        #expect(Self.logs(daemon, "cannot listen on 127.0.0.1:\(taken.port)"), "\(daemon.text)")
        #expect(!daemon.text.contains("ready:") && !daemon.text.contains("restored"), "nothing started")
    }

    @Test(arguments: ["localhost:9557", "127.0.0.1", "127.0.0.1:70000", "::1:9557", ""])
    func badValuesExit64(value: String) throws {
        let daemon = try RunningDaemon(["--metrics-listen", value])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        daemon.waitUntilExit()
        #expect(daemon.process.terminationStatus == 64)
        #expect(Self.logs(daemon, "metrics.listen (--metrics-listen)"), "\(daemon.text)")
    }
}
