// Bounded influence of one value (docs/numerics.md, "Outliers and level shifts"). A sensor that
// sends one sentinel (-9999, 65535, a unit slip) must not move what the stream has learned by more
// than an ordinary sample could, and a sensor whose level really moved must be followed within a
// few samples. The gate compares each input with the latest value it took as it came (its
// reference): a value more than `bound` change units away from it is an outlier, and what the
// stream learns from (its normaliser, change unit, network, linear model and smoothing level) is
// the value pulled back to `bound` units from the reference, on the outlier's side; the published
// forecast and the scores still see the value as it came. When `shiftAfter` consecutive values
// are outliers on the same side, the stream has a new level: the value is taken as it came, it
// becomes the reference, and the forecaster restarts what holds a level (the normaliser's mean, the
// smoothing level) and the network's window at it. One spike, or a burst shorter than
// `shiftAfter`, is a run of outliers; a level that lasts is adopted at its `shiftAfter`-th sample.
//
// The idea is a Huber-type (winsorising) filter in front of the learners, as in robust filtering
// (F. R. Hampel et al., "Robust Statistics: The Approach Based on Influence Functions", 1986; R. D.
// Martin and D. J. Thomson, "Robust-resistant spectrum estimation", Proc. IEEE 70, 1982, whose
// "data cleaner" replaces an outlier by its prediction plus a bounded residual).
//
// Legend: I = inputs.

/// The bound, in running scales, beyond which one value counts only up to it: the gate's (in
/// change units) and the combination's, the bands' and the drift detector's error scales'.
public enum Robustness {
    public static let bound = 5.0
}

/// Per input: the reference (the latest value taken as it came) and the signed count of
/// consecutive outliers on one side (positive above). A view over its region of the forecaster's
/// state buffer, 2 × I numbers.
struct OutlierGate {
    let base: UnsafeMutablePointer<Double>
    let inputs: Int
    /// Consecutive outliers on one side that make a new level.
    static let shiftAfter = 6
    /// Changes the change unit needs to have seen before the gate judges anything.
    static let warmup = 30

    static func count(inputs: Int) -> Int { 2 * inputs }

    /// What the gate did with a sample.
    struct Verdict {
        /// Some input was an outlier (pulled back).
        var outlier = false
        /// Some input's level shift was adopted at this sample.
        var shift = false
    }

    /// Every reference at `x`, no run: after a gap, a clock jump or in the warm-up, a value is
    /// taken as it comes.
    func reset(to x: UnsafePointer<Float>) {
        for i in 0..<inputs {
            base[i] = Double(x[i])
            base[inputs + i] = 0
        }
    }

    /// Judges sample `x` with each input's change unit `unit(i)`, writing what the stream learns
    /// from into `clean`. `adopt(i)` is called for each input whose new level is adopted.
    func admit(
        _ x: UnsafePointer<Float>, clean: UnsafeMutablePointer<Float>, unit: (Int) -> Double, adopt: (Int) -> Void
    ) -> Verdict {
        var verdict = Verdict()
        for i in 0..<inputs {
            let value = Double(x[i]), reference = base[i]
            let bound = Robustness.bound * unit(i)
            let distance = value - reference
            guard abs(distance) > bound else {
                clean[i] = x[i]
                base[i] = value
                base[inputs + i] = 0
                continue
            }
            let side = distance > 0 ? 1.0 : -1.0
            let run = base[inputs + i]
            let next = run * side > 0 ? run + side : side
            if abs(next) >= Double(Self.shiftAfter) {
                clean[i] = x[i]
                base[i] = value
                base[inputs + i] = 0
                verdict.shift = true
                adopt(i)
            } else {
                clean[i] = Float(reference + side * bound)
                base[inputs + i] = next
                verdict.outlier = true
            }
        }
        return verdict
    }

    /// Whether a saved gate region can be continued from: finite references, whole runs shorter
    /// than `shiftAfter`.
    static func isPlausible(_ base: UnsafePointer<Double>, inputs: Int) -> Bool {
        (0..<inputs).allSatisfy { i in
            let run = base[inputs + i]
            return base[i].isFinite && run == run.rounded() && abs(run) < Double(shiftAfter)
        }
    }
}
