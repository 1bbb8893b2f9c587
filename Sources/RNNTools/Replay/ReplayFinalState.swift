// The stream's running scales when a replay ends: `final_state` in `rnnd replay --metrics`
// (docs/replay.md). What a fault harness compares between a faulty file and its clean original
// (bench/faults.sh): one wild value must not leave these far from the clean run's.

import RNNCore

/// The forecaster's scales after the last sample of a replay, read through its inspection
/// accessors (`Forecaster+Inspection.swift`).
public struct ReplayFinalState: Sendable, Equatable {
    /// Samples the forecaster has learned (a `--from` record's included).
    public var samples: Int
    /// Per input column: the normaliser's mean and divisor (its standard deviation, floored), and
    /// the change unit.
    public var inputMeans: [Double]
    public var inputScales: [Double]
    public var changeUnits: [Double]
    /// Per output, row `(p-1)·K + j` for target `j`, `p` steps ahead: the bands' scale and the
    /// combination's error scale (squared units).
    public var bandScales: [Double]
    public var combinationErrorScales: [Double]
    /// Per target: the drift detector's error scale.
    public var driftErrorScales: [Double]

    public init(_ forecaster: Forecaster) {
        let trainer = forecaster.trainer
        samples = trainer.counters.samples
        inputMeans = trainer.inputMeans
        inputScales = trainer.inputScales
        changeUnits = trainer.changeUnits
        bandScales = forecaster.bandScales
        combinationErrorScales = forecaster.combinationErrorScales
        driftErrorScales = forecaster.driftErrorScales
    }
}
