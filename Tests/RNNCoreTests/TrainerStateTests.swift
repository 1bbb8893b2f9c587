import RNNCore
import TestSupport
import Testing

/// A trainer restored from `writeState` continues exactly as the original would have.
@Suite(.timeLimit(.minutes(1)))
struct TrainerStateTests {
    static let configurations: [ModelConfiguration] = {
        var all: [ModelConfiguration] = []
        for (cell, optimizer, k1, horizon) in [
            (CellKind.lstm, OptimizerKind.defaultAdam, 1, 1), (.gru, .momentum(0.9), 4, 2), (.elman, .sgd, 3, 3),
        ] {
            var c = ModelConfiguration()
            c.cell = cell
            c.optimizer = optimizer
            c.hidden = 9
            c.inputs = 3
            c.targets = [2, 0]
            c.horizon = horizon
            c.window = 7
            c.updateEvery = k1
            c.learningRate = 0.01
            c.normalization = .running(forgetting: 0.99)
            c.seed = 5
            all.append(c)
        }
        return all
    }()

    @Test(arguments: configurations)
    func aRestoredTrainerContinuesExactly(_ c: ModelConfiguration) throws {
        let series = noisySines(count: 120, channels: c.inputs, noise: 0.1, seed: 3).map { $0.map(Float.init) }
        let original = OnlineTrainer<Float>(configuration: c)
        for x in series[..<53] { original.step(x) }
        var bytes = [UInt8](repeating: 0, count: original.stateByteCount)
        bytes.withUnsafeMutableBytes { original.writeState(into: $0) }

        var other = c
        other.seed = 99  // different initial weights: everything must come from the state
        let restored = OnlineTrainer<Float>(configuration: other)
        try bytes.withUnsafeBytes { try restored.readState(from: $0) }
        #expect(restored.counters == original.counters)
        #expect(restored.normalizer == original.normalizer)
        for x in series[53...] {
            let a = original.step(x), b = restored.step(x)
            #expect(a == b)
            #expect(Array(original.forecast) == Array(restored.forecast))
        }
        #expect(Array(UnsafeBufferPointer(start: original.network.parameters, count: original.network.layout.count))
            == Array(UnsafeBufferPointer(start: restored.network.parameters, count: restored.network.layout.count)))
    }

    @Test func aStateOfTheWrongSizeOrWithImpossibleValuesIsRefused() throws {
        let c = Self.configurations[0]
        let trainer = OnlineTrainer<Float>(configuration: c)
        for x in noisySines(count: 10, channels: c.inputs, noise: 0.1, seed: 1) { trainer.step(x.map(Float.init)) }
        var bytes = [UInt8](repeating: 0, count: trainer.stateByteCount)
        bytes.withUnsafeMutableBytes { trainer.writeState(into: $0) }
        let fresh = OnlineTrainer<Float>(configuration: c)
        #expect(throws: TrainerStateError.wrongSize(expected: bytes.count, found: bytes.count - 4)) {
            try bytes.dropLast(4).withUnsafeBytes { try fresh.readState(from: $0) }
        }
        var negative = bytes
        negative.withUnsafeMutableBytes { $0.storeBytes(of: Int64(-1), toByteOffset: 0, as: Int64.self) }
        #expect(throws: TrainerStateError.impossibleValue) { try negative.withUnsafeBytes { try fresh.readState(from: $0) } }
        #expect(fresh.counters.samples == 0, "a refused state leaves the trainer as it was")
    }
}
