import ArgumentParser
import Foundation
import RNNCore
import RNNDaemon
import RNNTools

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the numeric core's learning throughput and inference latency on one thread.",
        discussion: """
            Learns a synthetic stream (sines plus noise, the stream of the peer benchmarks in \
            ../shared/peers) with predict-then-learn TBPTT and prints samples per second, the \
            mean forward step, GFLOP/s of the matrix products and their share of the core's peak.
            """
    )

    @OptionGroup var model: ModelOptions

    @Option(help: "Input channels of the synthetic stream.")
    var inputs: Int = 1

    @Option(help: "Seconds of learning to time (three rounds; the median is reported).")
    var seconds: Double = 3

    @Option(help: "Learn exactly this many samples instead of timing rounds (for allocation counts).")
    var samples: Int?

    @Option(name: .customLong("peak-gflops"), help: "Single-core fp32 peak to compare against (GFLOP/s).")
    var peakGFLOPs: Double = 85

    @Flag(help: "Print exactly one JSON object.")
    var json = false

    func validate() throws {
        try model.validate(inputs: inputs)
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        if let samples, samples < 1 { throw ValidationError("--samples must be at least 1") }
    }

    func run() throws {
        var configuration = model.configuration(inputs: inputs)
        configuration.normalization = .running(forgetting: nil)
        let result = Benchmark(configuration: configuration, seconds: seconds, samples: samples, peakGFLOPs: peakGFLOPs).run()
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            var text = String(decoding: try encoder.encode(result), as: UTF8.self)
            // The peers' key for the inference step.
            text = text.replacingOccurrences(of: "\"inference_microseconds\"", with: "\"inference_us\"")
            print(text)
        } else {
            let r = result
            print("""
                rnnd bench: \(r.model) H=\(r.hidden) D=\(r.inputs) k2=\(r.window) k1=\(r.updateEvery) \(r.optimizer), one thread
                  state        \(r.stateBytes) bytes per stream (its checkpoint record's state)
                  learning     \(format(r.samplesPerSecond, 0)) samples/s  (\(r.samples) samples, \(r.updates) updates in \(format(r.seconds, 2)) s)
                  inference    \(format(r.inferenceMicroseconds, 3)) µs per forward step
                  arithmetic   \(format(r.flopsPerSample / 1e6, 3)) MFLOP per sample, \(format(r.gflops, 2)) GFLOP/s = \(format(100 * r.peakShare, 1))% of \(format(peakGFLOPs, 0)) GFLOP/s peak
                """)
        }
    }

    private func format(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
}
