import ArgumentParser
import Foundation
import RNNCore
import RNNDaemon

/// The model and training flags shared by `run`, `replay`, `fit` and `bench` (docs/configuration.md).
struct ModelOptions: ParsableArguments {
    @Option(help: "Recurrent cell: lstm, gru or elman.")
    var model: CellKind = .lstm

    @Option(help: "Hidden units.")
    var hidden: Int = 64

    @Option(help: "Steps back-propagated through (k2); at least horizon + update-every - 1 when not given.")
    var window: Int = ModelConfiguration.defaultWindow

    @Option(name: .customLong("update-every"), help: "Samples between weight updates (k1, 1 ... window).")
    var updateEvery: Int = 2

    @Option(help: "Optimizer: adafactor, adam, sgd or momentum (adam beyond horizon 1 when --optimizer and --lr are not given).")
    var optimizer: OptimizerName = .adafactor

    @Option(help: "Learning rate (0.001 beyond horizon 1 when --optimizer and --lr are not given).")
    var lr: Double = 2e-3

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
        c.optimizer = optimizer.kind
        c.fitToHorizon()
        return c
    }

    /// Rejects, before anything runs, a configuration the core would refuse.
    func validate(inputs: Int) throws {
        let problems = configuration(inputs: inputs).problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "; ")) }
    }
}

/// The model flags of `rnnd run`, where a flag overrides the configuration file only when it is
/// given: the same names as ``ModelOptions``, with no values of their own.
struct OptionalModelOptions: ParsableArguments {
    @Option(help: "Recurrent cell: lstm, gru or elman (default: lstm).")
    var model: CellKind?

    @Option(help: "Hidden units, 1 ... 4096 (default: 64).")
    var hidden: Int?

    @Option(help: "Steps back-propagated through, k2, 1 ... 10000 (default: 20, or horizon + update-every - 1 when longer).")
    var window: Int?

    @Option(name: .customLong("update-every"), help: "Samples between weight updates, k1, 1 ... window (default: 2).")
    var updateEvery: Int?

    @Option(help: "Optimizer: adafactor, adam, sgd or momentum (default: adafactor; adam beyond horizon 1).")
    var optimizer: OptimizerName?

    @Option(help: "Learning rate (default: 0.002; 0.001 beyond horizon 1).")
    var lr: Double?

    @Option(help: "Clipping threshold (default: 1.0).")
    var clip: Double?

    @Option(name: .customLong("clip-mode"), help: "Clipping: norm (global L2), value, step (per-step delta) or none (default: norm).")
    var clipMode: ClipMode?

    @Option(help: "Forecast steps ahead, 1 ... 1000, and horizon × max-inputs at most 1048576 (default: 1).")
    var horizon: Int?

    @Option(help: "Seed of the weight initialisation (default: 0).")
    var seed: UInt64?

    @Option(name: .customLong("elman-activation"), help: "Elman nonlinearity: tanh, relu or sigmoid (default: tanh).")
    var elmanActivation: Activation?

    @Option(help: "Loss: squared or huber (default: squared).")
    var loss: ModelOptions.LossChoice?

    @Option(name: .customLong("huber-delta"), help: "Huber threshold, in normalised units; used with --loss huber (default: 1.0).")
    var huberDelta: Double?

    @Option(help: "What the network forecasts: change (from the latest value) or level (default: change).")
    var formulation: Formulation?

    @Option(help: "Time of day and of week as network inputs, for samples with a time: on or off (default: on).")
    var calendar: Switch?

    @Option(help: "Combine the network with persistence, smoothing, the linear model and (beyond horizon 1) the direct and seasonal experts, by their recent errors: on or off (default: on).")
    var ensemble: Switch?

    @Option(name: .customLong("linear-lags"), help: "Past changes the linear model regresses on, 0 ... 64; 0: no linear model (default: 4).")
    var linearLags: Int?

    @Option(
        name: .customLong("direct-lookback"),
        help: "Past samples the direct expert (every step ahead from a long look-back) regresses on, 0 ... 4096; 0: none (default: 672 beyond horizon 1, none at horizon 1).")
    var directLookback: Int?

    @Option(
        help: ArgumentHelp("Experts the forecast combines, comma-separated among \(Self.expertNames) (default: all that are on)."),
        transform: { text in
            try text.split(separator: ",").map { name in
                let name = name.trimmingCharacters(in: .whitespaces)
                guard let e = Expert(name: name) else {
                    throw ValidationError("no expert '\(name)': \(Self.expertNames)")
                }
                return e
            }
        })
    var experts: [Expert]?
    /// Every expert's name, for `--experts`' help and its error.
    static let expertNames = Expert.allCases.map(\.name).joined(separator: ", ")

    @Option(help: "Coverage of the prediction bands, in (0, 1); 0: no bands and no anomaly score (default: 0.9).")
    var coverage: Double?

    @Option(help: "Detect changes in the error regime and re-adapt (docs/tuning.md): on or off (default: on).")
    var drift: Switch?

    @Option(
        name: .customLong("normalization-forgetting"),
        help: "Forgetting factor of the input normalisation, in (0, 1]; 1 weighs every sample the same (default: 0.9999, about the latest 10,000 samples).")
    var normalizationForgetting: Double?

    /// Sets the values that were given, over `configuration` (from the defaults and the file).
    /// The Huber threshold is kept from below unless `--huber-delta` is given.
    func apply(to configuration: inout ModelConfiguration) {
        if let model { configuration.cell = model }
        if let hidden { configuration.hidden = hidden }
        if let window { configuration.window = window }
        if let updateEvery { configuration.updateEvery = updateEvery }
        if let optimizer { configuration.optimizer = optimizer.kind }
        if let lr { configuration.learningRate = lr }
        if let clip { configuration.clipThreshold = clip }
        if let clipMode { configuration.clipMode = clipMode }
        if let horizon { configuration.horizon = horizon }
        if let seed { configuration.seed = seed }
        if let elmanActivation { configuration.elmanActivation = elmanActivation }
        let below: Double? = if case .huber(let delta) = configuration.loss { delta } else { nil }
        switch loss ?? (below == nil ? .squared : .huber) {
        case .squared: configuration.loss = .squared
        case .huber: configuration.loss = .huber(delta: huberDelta ?? below ?? 1)
        }
        if let formulation { configuration.formulation = formulation }
        if let calendar { configuration.calendar = calendar == .on }
        if let ensemble { configuration.ensemble = ensemble == .on }
        if let linearLags { configuration.linearLags = linearLags }
        if let directLookback { configuration.directLookback = directLookback }
        if let experts { configuration.experts = experts }
        if let coverage { configuration.coverage = coverage }
        if let drift { configuration.drift = drift == .on }
        if let normalizationForgetting {
            configuration.normalization = .running(forgetting: normalizationForgetting == 1 ? nil : normalizationForgetting)
        }
    }
}

/// The configuration `rnnd run` would resolve: defaults < the `--config` file < the flags that
/// `flags` sets. A bad file exits 78 (EX_CONFIG) with `rnnd <command>: <error>` on stderr; bad
/// flags are a usage error (64).
func resolveConfiguration(
    command: String, file: String?, flags: (inout DaemonConfiguration) -> Void
) throws -> DaemonConfiguration {
    do throws(ConfigurationError) {
        return try DaemonConfiguration.resolve(file: file, flags: flags)
    } catch where error.exitCode == 64 {
        throw ValidationError(error.description)
    } catch {
        FileHandle.standardError.write(Data("rnnd \(command): \(error)\n".utf8))
        throw ExitCode(error.exitCode)
    }
}

/// An on/off flag value.
enum Switch: String, ExpressibleByArgument, CaseIterable { case on, off }

extension CellKind: ExpressibleByArgument {}
extension Formulation: ExpressibleByArgument {}
extension OptimizerName: ExpressibleByArgument {}
extension ClipMode: ExpressibleByArgument {}
/// The Elman cell's nonlinearities, as the configuration file takes them (`Activation.elmanChoices`).
extension Activation: ExpressibleByArgument {
    public init?(argument: String) {
        guard let activation = Activation(rawValue: argument), Self.elmanChoices.contains(activation) else { return nil }
        self = activation
    }

    public static var allValueStrings: [String] { elmanChoices.map(\.rawValue) }
}
