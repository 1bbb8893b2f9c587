import Foundation
import RNNCore
import Testing

/// The model of a reference run written by `Fixtures/generate.py` (PyTorch, float64): the
/// configuration fields every fixture file carries. Files from before the change formulation
/// lack `formulation`, `calendar` and `normalization` (level, no calendar, none); network runs
/// lack the forecaster's fields (its defaults).
struct FixtureModel: Decodable {
    struct Loss: Decodable { var kind: String; var delta: Double? }
    struct Optimizer: Decodable { var kind: String; var lr: Double; var momentum: Double?; var beta1: Double?; var beta2: Double?; var eps: Double? }
    struct Clip: Decodable { var mode: String; var threshold: Double }
    struct Normalization: Decodable { var kind: String; var forgetting: Double? }
    var cell: String
    var activation: String
    var inputs: Int
    var hidden: Int
    var targets: [Int]
    var horizon: Int
    var window: Int
    var update_every: Int
    var loss: Loss
    var optimizer: Optimizer
    var clip: Clip
    var formulation: String?
    var calendar: Bool?
    var normalization: Normalization?
    var ensemble: Bool?
    var linear_lags: Int?
    var direct_lookback: Int?
    var coverage: Double?
    var drift: Bool?

    var configuration: ModelConfiguration {
        var c = ModelConfiguration()
        c.cell = CellKind(rawValue: cell)!
        c.elmanActivation = Activation(rawValue: activation)!
        c.inputs = inputs
        c.hidden = hidden
        c.targets = targets
        c.horizon = horizon
        c.window = window
        c.updateEvery = update_every
        c.loss = loss.kind == "huber" ? .huber(delta: loss.delta!) : .squared
        switch optimizer.kind {
        case "sgd": c.optimizer = .sgd
        case "momentum": c.optimizer = .momentum(optimizer.momentum!)
        case "adafactor": c.optimizer = .adafactor(beta1: optimizer.beta1!, beta2: optimizer.beta2!, epsilon: optimizer.eps!)
        default: c.optimizer = .adam(beta1: optimizer.beta1!, beta2: optimizer.beta2!, epsilon: optimizer.eps!)
        }
        c.learningRate = optimizer.lr
        c.clipMode = ClipMode(rawValue: clip.mode)!
        c.clipThreshold = clip.mode == "none" ? 1 : clip.threshold
        c.normalization = normalization?.kind == "running" ? .running(forgetting: normalization?.forgetting) : .none
        c.formulation = Formulation(rawValue: formulation ?? "level")!
        c.calendar = calendar ?? false
        c.ensemble = ensemble ?? c.ensemble
        c.linearLags = linear_lags ?? c.linearLags
        c.directLookback = direct_lookback ?? c.directLookback
        c.coverage = coverage ?? c.coverage
        c.drift = drift ?? c.drift
        return c
    }

    /// Sets a network's weights to a fixture's `initial` tensors, which are row-major in the
    /// mathematical shape (the buffer may hold a transpose).
    func load<S: RNNScalar>(_ initial: [String: [Double]], into network: RecurrentNetwork<S>) throws {
        for slot in network.layout.tensors {
            let values = try #require(initial[slot.name], "fixture lacks \(slot.name)")
            try #require(values.count == slot.count)
            for (i, v) in values.enumerated() {
                network.parameters[slot.index(row: i / slot.cols, col: i % slot.cols)] = S(v)
            }
        }
    }
}

/// A fixture file: its model and its run (`Run` reads the rest of the same JSON object).
struct FixtureFile<Run: Decodable>: Decodable {
    var model: FixtureModel
    var run: Run

    init(from decoder: any Decoder) throws {
        model = try FixtureModel(from: decoder)
        run = try Run(from: decoder)
    }

    static func load(_ name: String) throws -> Self {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Self.self, from: Data(contentsOf: url))
    }
}

/// One reference run of the network's online schedule.
struct Fixture: Decodable {
    struct Update: Decodable {
        var at: Int
        var loss: Double
        var grad_norm: Double
        var clipped_grads: [String: [Double]]
        var params: [String: [Double]]
    }
    var name: String
    var initial: [String: [Double]]
    var samples: [[Double]]
    /// Unix times of the samples (null: none); absent in the files without calendar inputs.
    var times: [Double?]?
    /// The head's outputs.
    var forecasts: [[Double]]
    /// The forecasts in original units; absent in the files from before the change formulation.
    var original_forecasts: [[Double]]?
    var updates: [Update]

    static let names = [
        "elman_k1_adam_norm", "lstm_k1_adam_norm", "gru_k1_adam_norm",
        "elman_chunk_sgd_value", "lstm_chunk_sgd_value", "gru_chunk_sgd_value",
        "elman_k1of2_momentum_step", "lstm_k1of2_momentum_step", "gru_k1of2_momentum_step",
        "elman_relu_k1_sgd_none", "elman_sigmoid_k1_sgd_none",
        "elman_change_k1_adam_norm", "lstm_change_k1_adam_norm", "gru_change_k1_adam_norm",
        "gru_change_calendar_k2of6_p3_momentum_step", "lstm_change_calendar_running_k1_adam_norm",
        "elman_change_forgetting_chunk_sgd_value", "gru_level_running_k1_adam_norm",
        "lstm_k1of2_adafactor_norm", "gru_change_calendar_running_k1_adafactor_norm",
        "lstm_k1of2_adafactor_no_momentum_norm",
    ]

}

/// The core against PyTorch: forecasts, losses, gradient norms, clipped gradients and weights
/// after every update, in Double (to 1e-9) and in Float (to float tolerance).
@Suite(.timeLimit(.minutes(1)))
struct FixtureTests {
    func replay<S: RNNScalar>(_ file: FixtureFile<Fixture>, as: S.Type, tolerance: Double) throws {
        let f = file.run
        let trainer = OnlineTrainer<S>(configuration: file.model.configuration)
        let layout = trainer.network.layout
        try file.model.load(f.initial, into: trainer.network)
        func close(_ a: Double, _ b: Double, scale: Double = 1) -> Bool {
            abs(a - b) <= tolerance * max(scale, abs(b))
        }
        func expectTensors(_ actual: UnsafeMutablePointer<S>, _ expected: [String: [Double]], _ what: String, at t: Int) {
            for slot in layout.tensors {
                let ref = expected[slot.name]!
                let scale = ref.map(abs).max() ?? 1
                for i in 0..<slot.count {
                    let value = Double(actual[slot.index(row: i / slot.cols, col: i % slot.cols)])
                    if !close(value, ref[i], scale: scale) {
                        Issue.record("\(f.name) \(S.self) \(what) \(slot.name)[\(i)] at T=\(t): \(value) vs \(ref[i])")
                        return
                    }
                }
            }
        }
        var updates = f.updates[...]
        for (t, sample) in f.samples.enumerated() {
            let x = sample.map { S($0) }
            trainer.predict(x, time: f.times?[t] ?? nil)
            let output = trainer.normalizedForecast
            for (o, expected) in f.forecasts[t].enumerated() {
                #expect(close(Double(output[o]), expected), "\(f.name) \(S.self) output[\(o)] at T=\(t): \(output[o]) vs \(expected)")
            }
            let forecast = trainer.forecast
            for (o, expected) in (f.original_forecasts?[t] ?? []).enumerated() {
                #expect(close(Double(forecast[o]), expected), "\(f.name) \(S.self) forecast[\(o)] at T=\(t): \(forecast[o]) vs \(expected)")
            }
            let outcome = trainer.learn()
            guard case .updated(let loss, let norm, _) = outcome else {
                #expect(updates.first?.at != t, "\(f.name): expected an update at T=\(t), got \(outcome)")
                continue
            }
            let next = updates.popFirst()
            let ref = try #require(next, "\(f.name): unexpected update at T=\(t)")
            #expect(ref.at == t)
            #expect(close(loss, ref.loss), "\(f.name) \(S.self) loss at T=\(t): \(loss) vs \(ref.loss)")
            #expect(close(norm, ref.grad_norm), "\(f.name) \(S.self) grad norm at T=\(t): \(norm) vs \(ref.grad_norm)")
            expectTensors(trainer.network.gradients, ref.clipped_grads, "clipped gradient", at: t)
            expectTensors(trainer.network.parameters, ref.params, "parameters", at: t)
        }
        #expect(updates.isEmpty, "\(f.name): \(updates.count) updates never happened")
    }

    func replay<S: RNNScalar>(_ name: String, as: S.Type, tolerance: Double) throws {
        try replay(try FixtureFile<Fixture>.load(name), as: S.self, tolerance: tolerance)
    }

    @Test(arguments: Fixture.names)
    func matchesPyTorchInDouble(name: String) throws {
        try replay(name, as: Double.self, tolerance: 1e-9)
    }

    @Test(arguments: Fixture.names)
    func matchesPyTorchInFloat(name: String) throws {
        try replay(name, as: Float.self, tolerance: 2e-4)
    }
}
