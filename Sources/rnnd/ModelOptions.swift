import ArgumentParser
import RNNCore

/// The model and training flags shared by `run`, `replay`, `fit` and `bench` (DESIGN.md §5).
struct ModelOptions: ParsableArguments {
    @Option(help: "Recurrent cell: lstm, gru or elman.")
    var model: CellKind = .lstm

    @Option(help: "Hidden units.")
    var hidden: Int = 64

    @Option(help: "Steps back-propagated through (k2).")
    var window: Int = 32

    @Option(name: .customLong("update-every"), help: "Samples between weight updates (k1, 1 ... window).")
    var updateEvery: Int = 1

    @Option(help: "Optimizer: adam, sgd or momentum.")
    var optimizer: OptimizerChoice = .adam

    @Option(help: "Learning rate.")
    var lr: Double = 1e-3

    @Option(help: "Clipping threshold.")
    var clip: Double = 1.0

    @Option(name: .customLong("clip-mode"), help: "Clipping: norm (global L2), value, step (per-step delta) or none.")
    var clipMode: ClipMode = .norm

    @Option(help: "Forecast steps ahead.")
    var horizon: Int = 1

    @Option(help: "Seed of the weight initialisation.")
    var seed: UInt64 = 0

    @Option(name: .customLong("elman-activation"), help: "Elman nonlinearity: tanh, relu or sigmoid.")
    var elmanActivation: Activation = .tanh

    @Option(help: "Loss: squared or huber.")
    var loss: LossChoice = .squared

    @Option(name: .customLong("huber-delta"), help: "Huber threshold, in normalised units.")
    var huberDelta: Double = 1.0

    enum OptimizerChoice: String, ExpressibleByArgument, CaseIterable { case adam, sgd, momentum }
    enum LossChoice: String, ExpressibleByArgument, CaseIterable { case squared, huber }

    /// The configuration for a stream of `inputs` channels.
    func configuration(inputs: Int) -> ModelConfiguration {
        var c = ModelConfiguration()
        c.cell = model
        c.hidden = hidden
        c.inputs = inputs
        c.window = window
        c.updateEvery = updateEvery
        c.horizon = horizon
        c.seed = seed
        c.learningRate = lr
        c.clipThreshold = clip
        c.clipMode = clipMode
        c.elmanActivation = elmanActivation
        c.loss = loss == .huber ? .huber(delta: huberDelta) : .squared
        switch optimizer {
        case .adam: c.optimizer = .defaultAdam
        case .sgd: c.optimizer = .sgd
        case .momentum: c.optimizer = .momentum(0.9)
        }
        return c
    }

    /// Rejects, before anything runs, a configuration the core would refuse.
    func validate(inputs: Int) throws {
        let problems = configuration(inputs: inputs).problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "; ")) }
    }
}

extension CellKind: ExpressibleByArgument {}
extension ClipMode: ExpressibleByArgument {}
extension Activation: ExpressibleByArgument {}
