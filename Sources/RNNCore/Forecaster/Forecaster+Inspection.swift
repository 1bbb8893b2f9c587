// Read-only views of the running scales a stream's forecaster keeps: what `rnnd replay --metrics`
// writes as `final_state` (docs/replay.md), so that a harness can compare a stream's statistics
// after a fault with a clean run's (bench/faults.sh). Copies, never views: nothing here can move
// the state.
//
// Legend: I = inputs, K = targets, O = P·K outputs (row (p-1)·K + j is target j, p steps ahead).

extension Forecaster {
    /// Per output (O): the bands' scale, the running mean absolute error of the published forecast.
    public var bandScales: [Double] {
        (0..<outputs).map { bands.scale(output: $0) }
    }

    /// Per output (O): the combination's error scale, the experts' running mean squared error
    /// (squared units).
    public var combinationErrorScales: [Double] {
        (0..<outputs).map { combination.errorScales[$0] }
    }

    /// Per target (K): the drift detector's slow mean absolute step-1 error.
    public var driftErrorScales: [Double] {
        (0..<targets.count).map { drift.errorScales[$0] }
    }
}

extension OnlineTrainer {
    /// Per input (I): the normaliser's running mean (0 without normalisation).
    public var inputMeans: [Double] {
        (0..<configuration.inputs).map { normalizer.offset($0) }
    }

    /// Per input (I): the normaliser's divisor, the running standard deviation floored as
    /// `RunningNormalizer.scale` floors it (1 without normalisation).
    public var inputScales: [Double] {
        (0..<configuration.inputs).map { normalizer.scale($0) }
    }

    /// Per input (I): the unit the change formulation divides a change by now (1 without
    /// normalisation).
    public var changeUnits: [Double] {
        (0..<configuration.inputs).map { changeUnit($0) }
    }
}
