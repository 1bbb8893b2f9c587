import RealModule
import RNNBasics
import RNNCore

/// Throughput and latency of the numeric core on a synthetic stream, one thread: what
/// `rnnd bench` prints. The stream is the peers' (`sin(f_j t) + 0.1 noise`,
/// f_j = 0.05 + 0.03 j, one sample a minute), generated before timing starts. What is timed is a
/// stream's whole per-sample path, `Forecaster.step`: the network's step and update, and the
/// ensemble, band, anomaly and drift work around it.
public struct Benchmark: Sendable {
    public struct Result: Sendable, Codable {
        public var model: String
        public var hidden: Int
        public var inputs: Int
        public var window: Int
        public var updateEvery: Int
        /// The optimizer's name (`adafactor`, `adam`, ...).
        public var optimizer: String
        /// What a checkpoint writes for this stream: its forecaster's state (network, optimizer,
        /// window and forecaster), the record's bulk.
        public var stateBytes: Int
        public var samples: Int
        public var seconds: Double
        /// Learning throughput: the forecaster's predict + learn, samples per second (median of
        /// three rounds).
        public var samplesPerSecond: Double
        /// One forward step (the forecast path), mean in microseconds.
        public var inferenceMicroseconds: Double
        /// The network's matrix-product FLOPs per learned sample (forward, recomputed window,
        /// backward); the forecaster's own work is not counted (docs/numerics.md, "Memory and cost").
        public var flopsPerSample: Double
        public var gflops: Double
        /// `gflops` as a share of the single-core fp32 peak given.
        public var peakShare: Double
        /// Weight updates during the timed part (warm-up excluded).
        public var updates: Int
    }

    public var configuration: ModelConfiguration
    /// Wall time to spend learning, split in three rounds; ignored when `samples` is set.
    public var seconds: Double
    /// A fixed number of learned samples instead of a time budget (for allocation counts).
    public var samples: Int?
    /// Single-core fp32 peak in GFLOP/s that the share is computed against.
    public var peakGFLOPs: Double

    public init(configuration: ModelConfiguration, seconds: Double = 3, samples: Int? = nil, peakGFLOPs: Double = 85) {
        self.configuration = configuration
        self.seconds = seconds
        self.samples = samples
        self.peakGFLOPs = peakGFLOPs
    }

    public func run() -> Result {
        let c = configuration
        let streamLength = 200_000
        var rng = SplitMix64(seed: c.seed &+ 1)
        var stream = [Float](repeating: 0, count: streamLength * c.inputs)
        for t in 0..<streamLength {
            for j in 0..<c.inputs {
                let f = 0.05 + 0.03 * Double(j)
                stream[t * c.inputs + j] = Float(Double.sin(f * Double(t)) + 0.1 * rng.normal())
            }
        }
        let forecaster = Forecaster(configuration: c)
        let trainer = forecaster.trainer
        let clock = ContinuousClock()
        var index = 0, time = 1_700_000_000.0
        return stream.withUnsafeBufferPointer { data in
            func next() -> UnsafePointer<Float> {
                defer { index = (index + 1) % streamLength }
                return data.baseAddress! + index * c.inputs
            }
            func step() {
                time += 60
                forecaster.step(next(), time: time)
            }
            // Warm up past the window and, beyond horizon 1, until the direct expert has learned
            // and solved: the rounds then time what a stream in its steady state costs.
            let settled = c.effectiveDirectLookback > 0 ? c.effectiveDirectLookback + c.horizon + 1 + 32 : 0
            for _ in 0..<max(3 * c.window, settled) { step() }

            var rates: [Double] = []
            var learned = 0
            let updatesBefore = trainer.counters.updates
            let started = clock.now
            if let fixed = samples {
                for _ in 0..<fixed { step() }
                learned = fixed
                rates.append(Double(fixed) / (clock.now - started).seconds)
            } else {
                for _ in 0..<3 {
                    let t0 = clock.now
                    var count = 0
                    repeat {
                        for _ in 0..<16 { step() }
                        count += 16
                    } while (clock.now - t0).seconds < seconds / 3
                    rates.append(Double(count) / (clock.now - t0).seconds)
                    learned += count
                }
            }
            let elapsed = (clock.now - started).seconds
            rates.sort()
            let rate = rates[rates.count / 2]

            // Inference: forward steps alone, from a state of its own, in batches of 50.
            let net = trainer.network
            let s = net.stateSize
            let state = UnsafeMutablePointer<Float>.allocate(capacity: 2 * s + net.gateRows + c.hidden + c.outputs)
            defer { state.deallocate() }
            state.initialize(repeating: 0, count: 2 * s + net.gateRows + c.hidden + c.outputs)
            let other = state + s, gates = other + s, aux = gates + net.gateRows, y = aux + c.hidden
            // The network's input of a step (levels, changes, calendar phases): stream values.
            let x = UnsafeMutablePointer<Float>.allocate(capacity: net.inputs)
            defer { x.deallocate() }
            for f in 0..<net.inputs { x[f] = data[f % data.count] }
            var batchMeans: [Double] = []
            for _ in 0..<40 {
                let t0 = clock.now
                for _ in 0..<25 {
                    net.forwardStep(x: x, previous: state, next: other, gates: gates, aux: aux, y: y)
                    net.forwardStep(x: x, previous: other, next: state, gates: gates, aux: aux, y: y)
                }
                batchMeans.append((clock.now - t0).seconds / 50 * 1e6)
            }
            let inference = batchMeans.reduce(0, +) / Double(batchMeans.count)
            let flops = trainer.flopsPerSample
            let gflops = rate * flops / 1e9
            return Result(
                model: c.cell.rawValue, hidden: c.hidden, inputs: c.inputs, window: c.window,
                updateEvery: c.updateEvery, optimizer: OptimizerName(c.optimizer).rawValue,
                stateBytes: forecaster.stateByteCount, samples: learned, seconds: elapsed,
                samplesPerSecond: rate, inferenceMicroseconds: inference, flopsPerSample: flops,
                gflops: gflops, peakShare: gflops / peakGFLOPs, updates: trainer.counters.updates - updatesBefore)
        }
    }
}
