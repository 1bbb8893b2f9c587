// The smoothing expert: simple exponential smoothing (R. G. Brown, "Statistical Forecasting for
// Inventory Control", 1959; R. J. Hyndman and G. Athanasopoulos, "Forecasting: Principles and
// Practice", section "Simple exponential smoothing"), the level ℓ ← ℓ + 0.1 (x − ℓ) started at
// the first value and forecast flat for every step ahead: what a noisy sensor around a slowly
// moving level calls for. docs/numerics.md, "Experts and their combination".
//
// Legend: K = targets.

/// The smoothed level of every target. A view over its region of the forecaster's state buffer,
/// K numbers.
struct SmoothingExpert {
    let levels: UnsafeMutablePointer<Double>

    /// The weight of the newest value.
    static let factor = 0.1

    /// Folds target `j`'s newest value in; the stream's first value starts the level.
    func observe(_ value: Double, target j: Int, first: Bool) {
        let l = levels + j
        l.pointee = first ? value : l.pointee + Self.factor * (value - l.pointee)
    }

    /// The forecast of target `j`, for every step ahead.
    func forecast(target j: Int) -> Double { levels[j] }
}
