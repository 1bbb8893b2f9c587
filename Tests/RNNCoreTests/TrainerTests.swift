import RNNCore
import RealModule
import TestSupport
import Testing

@Suite(.timeLimit(.minutes(2)))
struct TrainerTests {
    /// A sine sampled six times a period plus noise: one value cannot tell rising from falling,
    /// so the best forecast from the latest value alone has an error of about
    /// sin²(ω)/2 = 0.375 and persistence about 1 - cos(ω) = 0.5; only memory does better.
    @Test func lstmLearnsATaskThatNeedsMemory() {
        var c = ModelConfiguration()
        c.cell = .lstm
        c.hidden = 12
        c.window = 6
        c.updateEvery = 2
        c.learningRate = 0.01
        c.seed = 1
        let trainer = OnlineTrainer<Float>(configuration: c)
        var rng = SplitMix64(seed: 9)
        let omega = 2 * Double.pi / 6, noise = 0.05
        var previous = 0.0, forecast = 0.0
        var modelError = 0.0, persistenceError = 0.0, scored = 0
        let total = 5000
        for t in 0..<total {
            let x = Double.sin(omega * Double(t)) + noise * rng.normal()
            if t >= total - 1000 {
                modelError += (forecast - x) * (forecast - x)
                persistenceError += (previous - x) * (previous - x)
                scored += 1
            }
            trainer.step([Float(x)])
            forecast = Double(trainer.forecast[0])
            previous = x
        }
        modelError /= Double(scored)
        persistenceError /= Double(scored)
        #expect(persistenceError > 0.4)
        #expect(modelError < 0.05, "model MSE \(modelError), persistence \(persistenceError)")
        #expect(trainer.counters.updates == total / 2)
    }

    @Test(arguments: CellKind.allCases)
    func sameSeedSameModelDifferentSeedDifferentModel(cell: CellKind) {
        var c = ModelConfiguration()
        c.cell = cell
        c.hidden = 8
        c.inputs = 2
        c.window = 4
        c.horizon = 2
        c.seed = 42
        let data = noisySines(count: 50, channels: 2, noise: 0.1, seed: 5).map { $0.map(Float.init) }
        let a = OnlineTrainer<Float>(configuration: c), b = OnlineTrainer<Float>(configuration: c)
        for x in data { a.step(x); b.step(x) }
        let n = a.network.layout.count
        #expect((0..<n).allSatisfy { a.network.parameters[$0] == b.network.parameters[$0] })
        #expect(Array(a.forecast) == Array(b.forecast))
        c.seed = 43
        let other = RecurrentNetwork<Float>(c)
        let fresh = RecurrentNetwork<Float>({ var d = c; d.seed = 42; return d }())
        #expect((0..<n).contains { other.parameters[$0] != fresh.parameters[$0] })
    }

    @Test func parameterLayoutIsFlatAndComplete() {
        let lstm = ParameterLayout(cell: .lstm, inputs: 1, hidden: 64, outputs: 1)
        #expect(lstm.count == 4 * 64 * 1 + 4 * 64 * 64 + 4 * 64 + 64 + 1)
        let gru = ParameterLayout(cell: .gru, inputs: 3, hidden: 5, outputs: 4)
        #expect(gru.tensors.map(\.name) == ["Wx", "Wh", "b", "bhn", "Wy", "by"])
        #expect(gru.count == 15 * 3 + 15 * 5 + 15 + 5 + 4 * 5 + 4)
        for layout in [lstm, gru] {
            var next = 0
            for slot in layout.tensors {
                #expect(slot.offset == next)
                next += slot.count
            }
            #expect(next == layout.count)
        }
    }

    @Test func nonFiniteInputIsRejectedAndOverflowSkipsTheUpdate() {
        var c = ModelConfiguration()
        c.hidden = 8
        c.window = 4
        c.updateEvery = 1  // every sample an update, so that the absurd one is learned at once
        c.normalization = .none
        c.clipMode = .value
        // The level formulation: the change formulation divides the jump by its running RMS, so
        // that the value below does not overflow there.
        c.formulation = .level
        let trainer = OnlineTrainer<Float>(configuration: c)
        for t in 0..<10 { trainer.step([Float(t % 3)]) }
        let before = trainer.counters.updates
        #expect(trainer.step([.nan]) == .rejectedInput)
        #expect(trainer.step([.infinity]) == .rejectedInput)
        #expect(trainer.counters.rejectedSamples == 2)
        #expect(trainer.counters.samples == 10)
        // A finite but absurd value overflows the Float gradient: skipped, not learned.
        #expect(trainer.step([3e38]) == .skippedNonFinite)
        #expect(trainer.counters.skippedUpdates == 1)
        #expect(trainer.counters.updates == before)
        let n = trainer.network.layout.count
        #expect((0..<n).allSatisfy { trainer.network.parameters[$0].isFinite })
        // It goes on learning afterwards.
        for t in 0..<10 { trainer.step([Float(t % 3)]) }
        #expect(trainer.counters.updates > before)
        #expect((0..<n).allSatisfy { trainer.network.parameters[$0].isFinite })
    }

    @Test func normalizerMatchesTwoPassStatistics() {
        let data = noisySines(count: 500, channels: 3, noise: 0.5, seed: 11).map { $0.map { 100 + 20 * $0 } }
        var normalizer = RunningNormalizer(channels: 3, normalization: .running(forgetting: nil))
        for x in data { normalizer.update(x) }
        for j in 0..<3 {
            let mean = data.reduce(0) { $0 + $1[j] } / 500
            let variance = data.reduce(0) { $0 + ($1[j] - mean) * ($1[j] - mean) } / 500
            #expect(abs(normalizer.mean[j] - mean) < 1e-9 * abs(mean))
            #expect(abs(normalizer.variance[j] - variance) < 1e-9 * variance)
        }
        // With forgetting, the statistics follow a level shift; without, they lag behind it.
        var forgetting = RunningNormalizer(channels: 1, normalization: .running(forgetting: 0.99))
        var plain = RunningNormalizer(channels: 1, normalization: .running(forgetting: nil))
        for t in 0..<2000 {
            let x = [t < 1000 ? 0.0 : 10.0]
            forgetting.update(x)
            plain.update(x)
        }
        #expect(abs(forgetting.mean[0] - 10) < 1e-3)
        #expect(abs(plain.mean[0] - 5) < 1e-9)
    }

    /// Raw sensor units in, raw units out: a series around 1000 with a slow swing of ±5.
    @Test func forecastsComeOutInTheOriginalUnits() {
        var c = ModelConfiguration()
        c.hidden = 8
        c.window = 8
        c.horizon = 3
        c.learningRate = 0.01
        let trainer = OnlineTrainer<Float>(configuration: c)
        var error = 0.0, count = 0
        for t in 0..<3000 {
            trainer.step([Float(1000 + 5 * Double.sin(0.05 * Double(t)))])
            if t > 2000 {
                let oneAhead = Double(trainer.forecast[0]), next = 1000 + 5 * Double.sin(0.05 * Double(t + 1))
                error += (oneAhead - next) * (oneAhead - next)
                count += 1
            }
        }
        #expect(trainer.forecast.count == 3)
        // The series' variance is 12.5 in raw units: a forecast in the wrong units or scale
        // would be off by orders of magnitude.
        #expect(error / Double(count) < 1.25, "MSE \(error / Double(count)) in raw units (swing ±5)")
        for v in trainer.forecast { #expect(abs(Double(v) - 1000) < 10) }
    }

    @Test func configurationProblemsAreExplained() {
        var c = ModelConfiguration()
        c.window = 4
        c.updateEvery = 4
        c.horizon = 2
        #expect(c.problems().contains { $0.contains("window (k2 = 4) must be at least update-every + horizon - 1 = 5") })
        c.updateEvery = 5
        #expect(c.problems().contains { $0.contains("must not exceed the window") })
        c = ModelConfiguration()
        c.targets = [3]
        #expect(c.problems().contains { $0.contains("target channel 3 does not exist") })
        #expect(ModelConfiguration().problems().isEmpty)
    }

    @Test func floatSquareRootIsAccurate() {
        var worst: Float = 0
        var x: Float = 1e-30
        while x < 1e30 {
            let r = Float.squareRoot8(SIMD8(repeating: x))[0]
            worst = max(worst, abs(r - x.squareRoot()) / x.squareRoot())
            x *= 1.37
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        #expect(Float.squareRoot8(SIMD8(repeating: 0))[0] == 0)
    }
}

/// Trainers sharing one workspace learn exactly as trainers with their own.
@Suite(.timeLimit(.minutes(1)))
struct WorkspaceTests {
    @Test(arguments: CellKind.allCases)
    func sharedWorkspaceGivesTheSameModels(cell: CellKind) {
        var c = ModelConfiguration()
        c.cell = cell
        c.hidden = 12
        c.inputs = 2
        c.window = 6
        c.updateEvery = 2
        c.horizon = 2
        let shared = TrainingWorkspace<Float>(c)
        let a = OnlineTrainer<Float>(configuration: c, workspace: shared)
        var d = c
        d.seed = 9
        let b = OnlineTrainer<Float>(configuration: d, workspace: shared)
        let aloneA = OnlineTrainer<Float>(configuration: c), aloneB = OnlineTrainer<Float>(configuration: d)
        let first = noisySines(count: 60, channels: 2, noise: 0.1, seed: 1).map { $0.map(Float.init) }
        let second = noisySines(count: 60, channels: 2, noise: 0.3, seed: 2).map { $0.map(Float.init) }
        for (x, y) in zip(first, second) {
            a.step(x); b.step(y); aloneA.step(x); aloneB.step(y)
        }
        let n = a.network.layout.count
        #expect((0..<n).allSatisfy { a.network.parameters[$0] == aloneA.network.parameters[$0] })
        #expect((0..<n).allSatisfy { b.network.parameters[$0] == aloneB.network.parameters[$0] })
        #expect(Array(a.forecast) == Array(aloneA.forecast))
        #expect(Array(b.forecast) == Array(aloneB.forecast))
    }

    /// A stream's own memory, for the daemon's many-streams budget: an LSTM with 32 hidden
    /// units and a window of 32 (6 inputs a step: level, change and 4 calendar phases) holds
    /// about 63 KB once the workspace is shared, and its forecaster (the linear model, the band
    /// windows) about 6 KB more.
    @Test func ownMemoryOfAStream() {
        var c = ModelConfiguration()
        c.hidden = 32
        let forecaster = Forecaster(configuration: c, workspace: TrainingWorkspace(c))
        let trainer = forecaster.trainer
        #expect(trainer.network.layout.count == 4 * 32 * (6 + 32 + 1) + 32 + 1)
        #expect(trainer.bytes < 64_000, "\(trainer.bytes) bytes")
        #expect(forecaster.bytes < 70_000, "\(forecaster.bytes) bytes")
        #expect(trainer.network.workspace.bytes > 40_000)
    }
}
