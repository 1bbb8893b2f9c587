// The anomaly score: the share of a value's step-1 error that lies beyond its band's half-width,
// 0 inside the band, towards 1 far outside it, the largest over the targets. No paper of its own:
// it inherits the calibration of the conformal band it reads (ConformalBands.swift, Gibbs and
// Candès 2021). docs/numerics.md, "Anomaly score".

/// The latest sample's anomaly score. A view over its region of the forecaster's state buffer:
/// 1 number, NaN when the sample has none.
struct AnomalyScore {
    let latest: UnsafeMutablePointer<Double>

    static let count = 1
    /// Samples a stream sees before its score is reported: bands need that long to settle.
    static let warmup = 100

    /// The latest sample's score; nil when it has none.
    var value: Double? {
        let a = latest.pointee
        return a.isNaN ? nil : a
    }

    /// No score for the sample being scored (yet).
    func clear() { latest.pointee = .nan }

    /// The score of the sample being scored, once every target is in.
    func publish(_ tally: Tally) {
        if tally.known { latest.pointee = tally.score }
    }

    /// One sample's score, folded over its targets.
    struct Tally {
        private(set) var score = 0.0
        /// False when the score is not to be reported: in the warm-up, with bands off, or when a
        /// target's step-1 forecast had no band.
        private(set) var known: Bool

        init(known: Bool) { self.known = known }

        /// Folds in a target's step-1 `error` (absolute) and its band's half-width (NaN: none).
        mutating func add(error: Double, halfWidth half: Double) {
            if half.isNaN {
                known = false
            } else if error > half {
                score = max(score, 1 - half / error)
            }
        }
    }
}
