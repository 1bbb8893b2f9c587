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
            (.lstm, .defaultAdafactor, 2, 2), (.gru, .adafactor(beta1: 0.9, beta2: 0.999, epsilon: 1e-8), 2, 1),
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

    /// A stream saved with Adam goes on with Adafactor (the default since issue 17) where it
    /// stood, and back: the moments are converted as docs/numerics.md says, nothing else changes.
    @Test(arguments: [0.0, 0.9])
    func adamMomentsBecomeAdafactorsAndBack(beta1: Double) throws {
        var adam = Self.configurations[0]
        adam.updateEvery = 2
        var adafactor = adam
        adafactor.optimizer = .adafactor(beta1: beta1, beta2: 0.999, epsilon: 1e-8)
        let series = noisySines(count: 90, channels: adam.inputs, noise: 0.1, seed: 4).map { $0.map(Float.init) }
        let original = OnlineTrainer<Float>(configuration: adam)
        for x in series[..<60] { original.step(x) }
        var bytes = [UInt8](repeating: 0, count: original.stateByteCount)
        bytes.withUnsafeMutableBytes { original.writeState(into: $0) }

        #expect(throws: TrainerStateError.self) {
            try bytes.withUnsafeBytes { _ = try OnlineTrainer<Float>(configuration: adafactor, state: $0) }
        }
        let converted = try bytes.withUnsafeBytes {
            try OnlineTrainer<Float>(configuration: adafactor, state: $0, saved: adam)
        }
        let layout = original.network.layout, from = original.optimizer, to = converted.optimizer
        #expect(to.steps == from.steps)
        #expect(Array(UnsafeBufferPointer(start: converted.network.parameters, count: layout.count))
            == Array(UnsafeBufferPointer(start: original.network.parameters, count: layout.count)))
        // The first moment, rounded to bfloat16: within half a bfloat16 step of Adam's (none at β1 = 0).
        #expect(to.keepsFirstMoment == (beta1 > 0))
        for i in 0..<(beta1 > 0 ? layout.count : 0) {
            let m = Float(bitPattern: UInt32(to.compactMoment1[i]) << 16)
            #expect(abs(m - from.moment1[i]) <= abs(from.moment1[i]) / 256 + 1e-30)
        }
        // Wh (stored H × 4H): its row and column means of Adam's v.
        let wh = layout["Wh"]!, rows = wh.cols, cols = wh.rows
        var statistics = 0
        for slot in layout.tensors where slot.offset < wh.offset {
            let r = slot.transposed ? slot.cols : slot.rows, c = slot.transposed ? slot.rows : slot.cols
            statistics += !slot.isBias && r >= 2 && c >= 2 ? r + c : r * c
        }
        for i in 0..<rows {
            let mean = (0..<cols).map { Double(from.moment2[wh.offset + i * cols + $0]) }.reduce(0, +) / Double(cols)
            #expect(abs(Double(to.moment2[statistics + i]) - mean) <= 1e-6 * mean + 1e-30)
        }
        for j in 0..<cols {
            let mean = (0..<rows).map { Double(from.moment2[wh.offset + $0 * cols + j]) }.reduce(0, +) / Double(rows)
            #expect(abs(Double(to.moment2[statistics + rows + j]) - mean) <= 1e-6 * mean + 1e-30)
        }
        // It learns on from there, and the record of a stream written with Adafactor reads back as
        // Adam, with v = r c / mean(r).
        for x in series[60...] { #expect(converted.step(x) != .skippedNonFinite) }
        var again = [UInt8](repeating: 0, count: converted.stateByteCount)
        again.withUnsafeMutableBytes { converted.writeState(into: $0) }
        #expect(again.count < bytes.count)
        let back = try again.withUnsafeBytes {
            try OnlineTrainer<Float>(configuration: adam, state: $0, saved: adafactor)
        }
        #expect(back.counters == converted.counters)
        let r = (0..<rows).map { Double(converted.optimizer.moment2[statistics + $0]) }
        let meanRow = r.reduce(0, +) / Double(rows)
        for (i, j) in [(0, 0), (3, 17), (rows - 1, cols - 1)] {
            let v = r[i] * Double(converted.optimizer.moment2[statistics + rows + j]) / meanRow
            #expect(abs(Double(back.optimizer.moment2[wh.offset + i * cols + j]) - v) <= 1e-6 * v + 1e-30)
        }
    }
}
