import Foundation
import RNNCore
import Testing

/// One reference run of the forecaster written by `Fixtures/generate.py` (float64), column by
/// column: one entry per sample, taken after that sample's `predict`.
struct ForecasterFixture: Decodable {
    var name: String
    var initial: [String: [Double]]
    /// Float32 values, written exactly.
    var samples: [[Double]]
    var times: [Double?]
    /// The published forecast of every output.
    var forecast: [[Double]]
    /// Per output: the smoothing, linear, network and direct experts' forecasts (persistence is
    /// the sample, or the gate's output where `gated` has one).
    var experts: [[[Double]]]
    /// Per output: the band's half-width, null where there is no band.
    var half_width: [[Double?]]
    var anomaly: [Double?]
    /// Cumulative `scored`, `banded`, `covered`, `drifts`.
    var counters: [[Int]]
    /// Samples at which a drift was raised.
    var drifts: [Int]
    /// Combination weights per output (persistence, smoothing, linear, network, direct) at some samples.
    var weights: [String: [[Double]]]
    /// The outlier gate's output `x̃` where it differs from the sample (what persistence forecasts).
    var gated: [String: [Double]]
    /// Samples that started a new segment (a gap, a clock set back) or adopted a level.
    var segments: [Int]
    var level_shifts: [Int]
}

/// Differences from the reference per quantity: the worst one, and the first that exceeds the
/// tolerance (recorded as an issue once per quantity, with the sample and both values).
struct Differences {
    var name: String
    var worst: [String: (difference: Double, sample: Int)] = [:]
    var failures: [String: Int] = [:]

    mutating func check(_ quantity: String, _ actual: Double, _ expected: Double, tolerance: Double, scale: Double = 1, at n: Int) {
        let difference = abs(actual - expected) / max(scale, abs(expected))
        if difference > worst[quantity]?.difference ?? -1 { worst[quantity] = (difference, n) }
        guard !(difference <= tolerance) else { return }
        failures[quantity, default: 0] += 1
        if failures[quantity] == 1 {
            Issue.record("\(name) \(quantity) at n=\(n): \(actual) vs \(expected) (relative difference \(difference))")
        }
    }

    mutating func check(_ quantity: String, _ holds: Bool, _ detail: @autoclosure () -> String, at n: Int) {
        guard !holds else { return }
        failures[quantity, default: 0] += 1
        if failures[quantity] == 1 { Issue.record("\(name) \(quantity) at n=\(n): \(detail())") }
    }

    var summary: String {
        let lines = worst.keys.sorted().map { q in
            "  \(q): worst \(worst[q]!.difference) at n=\(worst[q]!.sample)"
                + (failures[q].map { ", \($0) beyond tolerance" } ?? "")
        }
        return ([name] + lines + failures.keys.filter { worst[$0] == nil }.sorted().map { "  \($0): \(failures[$0]!) failures" })
            .joined(separator: "\n")
    }
}

/// The forecaster (Float network, Double ensemble) against the float64 reference: every
/// expert, the combination and its weights, the bands, anomaly scores, drifts and counters.
@Suite(.timeLimit(.minutes(2)))
struct ForecasterFixtureTests {
    static let names = [
        "forecaster_gru_i2_p2_drift", "forecaster_lstm_i1_untimed", "forecaster_lstm_i1_p2_adafactor", "forecaster_lstm_i1_daily_residual",
        "forecaster_lstm_i1_routine_reset", "forecaster_lstm_i1_incidents", "forecaster_lstm_i1_slow_fall",
        "forecaster_lstm_i1_quickening", "forecaster_lstm_i1_sentinel", "forecaster_lstm_i1_boot_sentinel",
        "forecaster_lstm_i1_sentinels",
    ]

    /// Relative to `max(1, |reference|)`: the network runs in Float and trains for hundreds of
    /// samples, so its forecasts drift from float64 by far more than one rounding (1.2e-5 at
    /// worst where the readings agree). The smoothing expert is Double arithmetic on exact
    /// samples, held to the file's 8 significant digits.
    static let tolerance = 1e-4

    @Test(arguments: names)
    func matchesTheReference(name: String) throws {
        try replay(try FixtureFile<ForecasterFixture>.load(name))
    }

    func replay(_ file: FixtureFile<ForecasterFixture>) throws {
        let name = file.run.name
        let f = file.run
        let forecaster = Forecaster(configuration: file.model.configuration)
        try file.model.load(f.initial, into: forecaster.trainer.network)
        let targets = forecaster.targets, outputs = forecaster.outputs
        var d = Differences(name: name)
        for (n, sample) in f.samples.enumerated() {
            let x = sample.map { Float($0) }
            #expect(forecaster.predict(x, time: f.times[n]))
            d.check("drift", forecaster.driftDetected == f.drifts.contains(n),
                    "drift \(forecaster.driftDetected), reference \(f.drifts.contains(n))", at: n)
            let c = forecaster.counters, rc = f.counters[n]
            d.check("segments", c.segments == f.segments.count { $0 <= n }, "segments \(c.segments), reference \(f.segments.count { $0 <= n })", at: n)
            d.check("level shifts", c.levelShifts == f.level_shifts.count { $0 <= n },
                    "level shifts \(c.levelShifts), reference \(f.level_shifts.count { $0 <= n })", at: n)
            d.check("counters", [c.scored, c.banded, c.covered, c.drifts] == rc,
                    "scored/banded/covered/drifts \([c.scored, c.banded, c.covered, c.drifts]) vs \(rc)", at: n)
            switch (forecaster.anomaly, f.anomaly[n]) {
            case (let a?, let r?): d.check("anomaly", a, r, tolerance: 1e-3, at: n)
            case (nil, nil): break
            case (let a, let r): d.check("anomaly presence", false, "\(String(describing: a)) vs \(String(describing: r))", at: n)
            }
            for o in 0..<outputs {
                let published = Double(forecaster.forecast[o])
                d.check("forecast", published, f.forecast[n][o], tolerance: Self.tolerance, at: n)
                let channel = targets[o % targets.count]
                d.check("persistence", forecaster.expertForecast(.persistence, output: o), f.gated[String(n)]?[channel] ?? sample[channel],
                        tolerance: 1e-12, at: n)
                for (e, expert) in [Expert.smoothing, .linear, .network, .direct].enumerated() where e < f.experts[n][o].count {
                    d.check(expert.name, forecaster.expertForecast(expert, output: o), f.experts[n][o][e],
                            tolerance: expert == .smoothing ? 1e-7 : Self.tolerance, at: n)
                }
                let lower = Double(forecaster.lower[o]), upper = Double(forecaster.upper[o])
                if let half = f.half_width[n][o] {
                    d.check("band half-width", (upper - lower) / 2, half, tolerance: Self.tolerance, at: n)
                    d.check("band centre", (upper + lower) / 2, f.forecast[n][o], tolerance: Self.tolerance, at: n)
                } else {
                    d.check("band presence", lower.isNaN && upper.isNaN, "band [\(lower), \(upper)] where the reference has none", at: n)
                }
                if let weights = f.weights[String(n)]?[o] {
                    for (w, expected) in zip(forecaster.combinationWeights(output: o), weights) {
                        d.check("weights", w, expected, tolerance: Self.tolerance, at: n)
                    }
                }
            }
            _ = forecaster.learn()
        }
        print(d.summary)
    }
}
