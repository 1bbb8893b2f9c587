// The rolling figures for monitoring: the step-1 mean squared error of the published forecast and
// of persistence, and the share of values inside their band, each a running mean that becomes an
// exponentially weighted one after `memory` values (weight max(1/n, 1/memory)). No paper: a plain
// mean, then a fixed memory. They feed the daemon's metrics and change no forecast.
// docs/numerics.md, "Rolling figures for monitoring".

/// A stream's rolling step-1 figures. A view over its region of the forecaster's state buffer,
/// 5 numbers: step-1 samples folded in, the rolling MSE of the forecast and of persistence,
/// forecasts with a band folded in, and the share their band held.
struct RollingFigures {
    let figures: UnsafeMutablePointer<Double>

    static let count = 5
    /// The memory, in samples, once the plain mean has seen that many.
    static let memory = 1000.0

    /// Folds in one sample's step-1 figures: the mean over the targets of the squared errors of
    /// the forecast and of persistence, and of the `banded` targets whose forecast had a band,
    /// the `held` ones inside it. A non-finite error (a wild sample) is left out.
    func roll(_ squares: Double, _ persistenceSquares: Double, held: Int, of banded: Int) {
        let r = figures
        guard squares.isFinite, persistenceSquares.isFinite else { return }
        r[0] += 1
        let a = max(1 / r[0], 1 / Self.memory)
        r[1] += a * (squares - r[1])
        r[2] += a * (persistenceSquares - r[2])
        if banded > 0 {
            r[3] += 1
            let b = max(1 / r[3], 1 / Self.memory)
            r[4] += b * (Double(held) / Double(banded) - r[4])
        }
    }

    /// The rolling mean squared step-1 error of the forecast, and of persistence; nil before the
    /// first.
    var forecastMSE: Double? { figures[0] > 0 ? figures[1] : nil }
    var persistenceMSE: Double? { figures[0] > 0 ? figures[2] : nil }

    /// The rolling share of step-1 values inside their band; nil before the first with a band.
    var coverage: Double? { figures[3] > 0 ? figures[4] : nil }
}
