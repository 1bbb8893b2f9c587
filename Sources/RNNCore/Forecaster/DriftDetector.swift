// Drift detection: the Page–Hinkley test (E. S. Page, "Continuous inspection schemes",
// Biometrika 41, 1954; D. V. Hinkley, "Inference about the change-point from cumulative sum
// tests", Biometrika 58, 1971) on the step-1 errors, each over its slow mean absolute value,
// and the countdown of the drift policy's learning-rate boost. docs/numerics.md, "Drift:
// Page–Hinkley on the errors"; docs/tuning.md#drift has the evidence for the constants.
//
// Legend: K = targets.

/// Page–Hinkley on the signal `u` (the latest absolute errors over their slow mean): the sum of
/// `u − ū − δ` rising more than λ above its minimum means the errors grew and stayed grown.
/// A view over two regions of the forecaster's state buffer: the slow mean absolute step-1
/// error of each target (K numbers), then the test's 5: samples watched, the signal's mean, the
/// cumulative sum, its minimum, and the samples the boost has left.
struct DriftDetector {
    let errorScales: UnsafeMutablePointer<Double>
    let test: UnsafeMutablePointer<Double>

    static let testCount = 5
    private static let watched = 0, mean = 1, sum = 2, minimum = 3, boostLeft = 4

    /// Tolerance δ and threshold λ of the test.
    static let tolerance = 0.1
    static let threshold = 100.0
    /// The bound of one sample's signal, so that one wild sample (an anomaly) cannot raise a
    /// drift on its own.
    static let signalBound = 10.0
    /// The forgetting of the error scale `ē`.
    static let scaleForgetting = 0.999
    /// The memory of the signal's mean `ū`, in samples.
    static let meanMemory = 200.0
    /// Samples a stream sees before the test starts.
    static let warmup = 200
    /// After a drift, the network's learning rate starts `boost` times higher and comes back
    /// over `boostSamples` samples.
    static let boost = 3.0
    static let boostSamples = 500

    /// Folds target `j`'s step-1 absolute error into its slow mean `ē` and returns its signal,
    /// the error over `ē` before it (bounded by `signalBound`); nil while `ē` is 0 (the first
    /// error starts it).
    func observe(error: Double, target j: Int) -> Double? {
        let slow = errorScales + j
        let signal = slow.pointee > 0 ? min(error / slow.pointee, Self.signalBound) : nil
        // Bounded influence: an error counts up to `Robustness.bound` times the scale.
        slow.pointee = slow.pointee == 0
            ? error
            : Self.scaleForgetting * slow.pointee + (1 - Self.scaleForgetting) * min(error, Robustness.bound * slow.pointee)
        return signal
    }

    /// One step of the test on the sample's signal `u` (the mean over its targets). `ū` forgets
    /// (a memory of `meanMemory` samples) so that errors coming back to their usual level after
    /// a good stretch are not taken for a change. On a drift the test restarts, the boost starts,
    /// and it returns true.
    func watch(_ u: Double) -> Bool {
        let d = test
        d[Self.watched] += 1
        d[Self.mean] += (u - d[Self.mean]) * max(1 / d[Self.watched], 1 / Self.meanMemory)
        d[Self.sum] += u - d[Self.mean] - Self.tolerance
        d[Self.minimum] = min(d[Self.minimum], d[Self.sum])
        guard d[Self.sum] - d[Self.minimum] > Self.threshold else { return false }
        d[Self.watched] = 0; d[Self.mean] = 0; d[Self.sum] = 0; d[Self.minimum] = 0
        d[Self.boostLeft] = Double(Self.boostSamples)
        return true
    }

    /// The factor on the network's learning rate now: `boost` right after a drift, back to 1 in
    /// a straight line over `boostSamples` samples.
    var learningRateBoost: Double {
        1 + (Self.boost - 1) * test[Self.boostLeft] / Double(Self.boostSamples)
    }

    /// One sample of the boost used up.
    func easeBoost() {
        if test[Self.boostLeft] > 0 { test[Self.boostLeft] -= 1 }
    }
}
