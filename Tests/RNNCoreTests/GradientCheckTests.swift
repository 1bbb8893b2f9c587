import RNNCore
import TestSupport
import Testing

/// Back-propagation through time against central finite differences, in Double, for every
/// parameter of every cell, on a window whose carried state comes from earlier windows.
@Suite(.timeLimit(.minutes(2)))
struct GradientCheckTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var cell: CellKind
        var activation: Activation = .tanh
        var head: Activation = .identity
        var loss: LossFunction = .squared
        var hidden = 5
        var window = 6
        var updateEvery = 2
        var horizon = 2
        var formulation = Formulation.change
        var testDescription: String {
            "\(cell) g1=\(activation) g2=\(head) \(loss) H=\(hidden) k2=\(window) k1=\(updateEvery) P=\(horizon) \(formulation)"
        }

        var configuration: ModelConfiguration {
            var c = ModelConfiguration()
            c.cell = cell
            c.elmanActivation = activation
            c.headActivation = head
            c.loss = loss
            c.hidden = hidden
            c.inputs = 3
            c.targets = [0, 2]
            c.horizon = horizon
            c.window = window
            c.updateEvery = updateEvery
            c.learningRate = 0.02
            c.clipThreshold = 1
            c.seed = 7
            c.formulation = formulation
            return c
        }
    }

    static let cases: [Case] = [
        Case(cell: .elman), Case(cell: .elman, activation: .relu), Case(cell: .elman, activation: .sigmoid),
        Case(cell: .lstm), Case(cell: .gru),
        // The level formulation (the fixtures' contract) as well as the change formulation.
        Case(cell: .lstm, formulation: .level), Case(cell: .gru, horizon: 3, formulation: .level),
        Case(cell: .lstm, head: .tanh, loss: .huber(delta: 0.3)),
        Case(cell: .gru, head: .sigmoid, loss: .huber(delta: 0.3), updateEvery: 1, horizon: 1),
        Case(cell: .elman, updateEvery: 6, horizon: 1),
        // Sizes past one SIMD block, with remainders, so the vector paths are checked too.
        Case(cell: .lstm, hidden: 19, window: 4, updateEvery: 1, horizon: 1),
        Case(cell: .gru, hidden: 37, window: 3, updateEvery: 1, horizon: 1),
    ]

    /// A trainer that has learned `samples` samples (hourly, so that the calendar inputs move)
    /// and predicted one more, so that its current window starts after a carried, non-zero state.
    static func trained(_ c: ModelConfiguration, samples: Int = 17) -> OnlineTrainer<Double> {
        let trainer = OnlineTrainer<Double>(configuration: c)
        let data = noisySines(count: samples + 1, channels: c.inputs, noise: 0.2, seed: 3)
        for (i, x) in data.dropLast().enumerated() { trainer.step(x, time: 1_700_000_000 + 3600 * Double(i)) }
        trainer.predict(data.last!, time: 1_700_000_000 + 3600 * Double(samples))
        return trainer
    }

    @Test(arguments: cases)
    func analyticGradientMatchesFiniteDifferences(_ test: Case) throws {
        let trainer = Self.trained(test.configuration)
        let net = trainer.network
        let (loss, steps) = trainer.windowLossAndGradient()
        #expect(steps == test.window, "the window is full")
        #expect(loss > 0)
        let carried = (0..<net.stateSize).map { net.windowState(0)[$0] }
        #expect(carried.contains { $0 != 0 }, "the window starts from a carried state")
        let analytic = (0..<net.layout.count).map { net.gradients[$0] }
        // Every parameter of small models; an even spread of 400 of larger ones.
        let stride = max(1, net.layout.count / 400)
        for slot in net.layout.tensors {
            var worst = 0.0, worstIndex = slot.offset
            for i in Swift.stride(from: slot.offset, to: slot.offset + slot.count, by: stride) {
                let numeric = finiteDifference(trainer, index: i) { trainer.windowLoss() }
                // Relative where the gradient is large; absolute (1e-9) near zero, where the
                // finite difference's rounding (about 1e-10 of the loss) dominates.
                let error = relativeError(analytic[i], numeric, floor: 1e-4)
                if error > worst { worst = error; worstIndex = i }
            }
            #expect(worst < 1e-5, "\(slot.name): worst relative error \(worst) at \(worstIndex - slot.offset): analytic \(analytic[worstIndex])")
        }
    }

    /// The update applied with each clipping mode, against the finite-difference gradient
    /// clipped by hand: its norm and its direction.
    @Test(arguments: [ClipMode.norm, .value, .step, .none], [CellKind.elman, .lstm, .gru])
    func clippedUpdateHasTheRightNormAndDirection(mode: ClipMode, cell: CellKind) throws {
        var c = Case(cell: cell, updateEvery: 1, horizon: 2).configuration
        c.optimizer = .sgd
        c.learningRate = 1e-3
        c.clipMode = mode
        // Tight enough that norm and value clipping bind, loose enough for step clipping to be
        // inactive, where the exact gradient is the reference.
        c.clipThreshold = mode == .step ? 1e6 : 0.05
        let trainer = Self.trained(c)
        let count = trainer.network.layout.count
        let numeric = (0..<count).map { i in finiteDifference(trainer, index: i) { trainer.windowLoss() } }
        let before = (0..<count).map { trainer.network.parameters[$0] }
        guard case .updated(_, let norm, let clipped) = trainer.learn() else {
            Issue.record("no update")
            return
        }
        let applied = (0..<count).map { (before[$0] - trainer.network.parameters[$0]) / c.learningRate }
        let numericNorm = numeric.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(relativeError(norm, numericNorm) < 1e-6, "reported pre-clip norm")
        switch mode {
        case .norm:
            #expect(clipped && numericNorm > c.clipThreshold)
            let expected = numeric.map { $0 * c.clipThreshold / (numericNorm + 1e-6) }
            for i in 0..<count { #expect(abs(applied[i] - expected[i]) < 1e-6, "component \(i)") }
            let appliedNorm = applied.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(appliedNorm - c.clipThreshold) < 1e-5)
        case .value:
            #expect(clipped)
            for i in 0..<count {
                let expected = min(max(numeric[i], -c.clipThreshold), c.clipThreshold)
                #expect(abs(applied[i] - expected) < 1e-6, "component \(i)")
            }
        case .step, .none:
            for i in 0..<count { #expect(abs(applied[i] - numeric[i]) < 1e-6 * max(1, abs(numeric[i])), "component \(i)") }
        }
        let cosine = zip(applied, numeric).reduce(0) { $0 + $1.0 * $1.1 }
            / (applied.reduce(0) { $0 + $1 * $1 }.squareRoot() * numericNorm)
        #expect(cosine > (mode == .value ? 0.5 : 1 - 1e-9), "direction: cosine \(cosine)")
    }

    /// Step clipping bounds the back-propagated state gradient: a tight threshold changes the
    /// gradient and shrinks it, a loose one leaves it exact (PyTorch fixtures check the values).
    @Test(arguments: [CellKind.elman, .lstm, .gru])
    func stepClippingShrinksTheBackPropagatedDelta(cell: CellKind) {
        var loose = Case(cell: cell).configuration
        loose.clipMode = .step
        loose.clipThreshold = 1e6
        // Identical histories; then only b's threshold is tightened.
        let a = Self.trained(loose), b = Self.trained(loose)
        b.clipThreshold = 1e-3
        let count = a.network.layout.count
        _ = a.windowLossAndGradient()
        _ = b.windowLossAndGradient()
        // Step clipping acts on the state gradient, so only the cell's tensors feel it; the
        // head's gradient comes straight from the loss.
        func cellGradientNorm(_ t: OnlineTrainer<Double>) -> Double {
            let layout = t.network.layout
            let cellEnd = layout["Wy"]!.offset
            return (0..<cellEnd).reduce(0.0) { $0 + t.network.gradients[$1] * t.network.gradients[$1] }.squareRoot()
        }
        let normA = cellGradientNorm(a), normB = cellGradientNorm(b)
        #expect(normB < 0.1 * normA, "tight \(normB) against loose \(normA)")
        // Each step's delta has norm at most 1e-3 and meets inputs and states of norm below 4.
        #expect(normB < 1e-3 * Double(loose.window) * 2 * 4, "tight \(normB)")
        for i in a.network.layout["Wy"]!.offset..<count {
            #expect(a.network.gradients[i] == b.network.gradients[i], "head gradient \(i)")
        }
    }
}
