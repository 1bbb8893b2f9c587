// Bounded influence of one value (docs/numerics.md, "Outliers and level shifts"). A sensor that
// sends one sentinel (-9999, 65535, a unit slip) must not move what the stream has learned, and a
// sensor whose level really moved must be followed within a sample or two. The gate compares each
// input with the latest value it took as it came (its reference): a value more than `bound` (12)
// change units away from it is an outlier, and the stream goes on from the reference moved towards
// it by Hampel's redescending influence (by the bound for a value up to 1.5 bounds away, less
// beyond, not at all from 4 bounds: a sentinel far away is like a missing value carried forward):
// that is what it learns from (its normaliser, change unit, network, linear model and smoothing
// level) and what its experts forecast from. The published forecast
// is made for the sample all the same, and the sample is scored (its anomaly score) and counted.
// When `shiftAfter` (2) consecutive values are outliers on the same side, the stream has a new
// level: the value is taken as it came, becomes the reference, and the forecaster restarts what
// holds a level (the normaliser's mean, the smoothing level) and the network's window at it. A
// value back within `bound` of the level before that shift is taken as it comes (a return), so
// that a burst of sentinels or a sensor that drops out to 0 for an hour costs one sample at
// each end, not more.
//
// It is the "data cleaner" of robust filtering with a hard-rejection (redescending) influence
// function (R. D. Martin and D. J. Thomson, "Robust-resistant spectrum estimation", Proc. IEEE 70,
// 1982; F. R. Hampel et al., "Robust Statistics: The Approach Based on Influence Functions",
// 1986), the prediction being the latest good value.
//
// Legend: I = inputs.

/// The bound, in running scales, beyond which one error counts only up to it: the combination's,
/// the bands' and the drift detector's error scales'.
public enum Robustness {
    public static let bound = 5.0
}

/// Per input: the reference (the latest value taken as it came), the level before the latest
/// adopted shift (NaN: none, or more than `returnWithin` samples ago), the signed count of
/// consecutive outliers on one side (positive above), and the samples since the latest shift.
/// A view over its region of the forecaster's state buffer, 4 × I numbers.
struct OutlierGate {
    let base: UnsafeMutablePointer<Double>
    let inputs: Int
    /// How far from its reference, in change units, an input is an outlier. Sentinels, unit slips
    /// and sign flips land hundreds to thousands of units away; real sensor series change by more
    /// than 12 units now and then (a load switched, a machine failing), and a bound much lower held
    /// those back too often (docs/tuning.md#outliers has the measurements).
    static let bound = 12.0
    /// Consecutive outliers on one side that make a new level.
    static let shiftAfter = 2
    /// Changes the change unit needs to have seen before the gate judges anything. Until then
    /// every value is taken as it comes, and the normaliser's and change unit's first weights are
    /// 1/n: a sentinel there is learned as a usual value for tens of thousands of samples (the
    /// machine temperature with -9999 at its 21st sample: skill 0.172 → 0.096 over the file with
    /// 30, 0.169 with 10). Fewer than 10 changes make a unit that holds back the early spikes of
    /// heavy-tailed series: with 3, 14 of NAB's 58 files learned otherwise and its scores fell by
    /// 0.2 to 0.4 on average over ten weight seeds; with 10, by at most 0.01. docs/robustness.md.
    static let warmup = 10

    /// Samples after a shift during which a value back at the level before it is a return.
    static let returnWithin = 1000.0

    static func count(inputs: Int) -> Int { 4 * inputs }

    /// How far from the reference an outlier `distance` away counts (both ≥ `bound`): `bound`
    /// up to `holdTo` (1.5) bounds, then down in a straight line to 0 at `redescend` (4) bounds, 0 beyond
    /// (Hampel's three-part redescending influence). A value not far past the bound may be a real
    /// jump and pulls the stream part of the way; a sentinel far away does not pull it at all.
    static let holdTo = 1.5, redescend = 4.0
    static func influence(_ distance: Double, bound: Double) -> Double {
        let hold = Self.holdTo * bound, end = Self.redescend * bound
        if distance <= hold { return bound }
        return distance >= end ? 0 : bound * (end - distance) / (end - hold)
    }

    /// What the gate did with a sample.
    struct Verdict {
        /// Some input was an outlier (the reference stood in for it).
        var outlier = false
        /// Some input's level moved (a shift adopted, or a return to the level before one).
        var shift = false
    }

    private func reference(_ i: Int) -> UnsafeMutablePointer<Double> { base + i }
    private func previous(_ i: Int) -> UnsafeMutablePointer<Double> { base + inputs + i }
    private func run(_ i: Int) -> UnsafeMutablePointer<Double> { base + 2 * inputs + i }
    private func age(_ i: Int) -> UnsafeMutablePointer<Double> { base + 3 * inputs + i }

    /// Every reference at `x`, no earlier level, no run: after a gap, a clock jump or in the
    /// warm-up, a value is taken as it comes.
    func reset(to x: UnsafePointer<Float>) {
        for i in 0..<inputs {
            reference(i).pointee = Double(x[i])
            previous(i).pointee = .nan
            run(i).pointee = 0
            age(i).pointee = 0
        }
    }

    /// Judges sample `x` with each input's change unit `unit(i)`, writing what the stream learns
    /// and forecasts from into `clean`. `adopt(i)` is called for each input whose level moved.
    func admit(
        _ x: UnsafePointer<Float>, clean: UnsafeMutablePointer<Float>, unit: (Int) -> Double, adopt: (Int) -> Void
    ) -> Verdict {
        var verdict = Verdict()
        for i in 0..<inputs {
            let value = Double(x[i]), bound = Self.bound * unit(i)
            if !previous(i).pointee.isNaN {
                age(i).pointee += 1
                if age(i).pointee > Self.returnWithin { previous(i).pointee = .nan }
            }
            let distance = value - reference(i).pointee
            if abs(distance) <= bound {
                clean[i] = x[i]
                reference(i).pointee = value
                run(i).pointee = 0
                continue
            }
            let side = distance > 0 ? 1.0 : -1.0
            let count = run(i).pointee * side > 0 ? run(i).pointee + side : side
            if abs(value - previous(i).pointee) <= bound || abs(count) >= Double(Self.shiftAfter) {
                // A new level, or back at the one before the latest shift.
                clean[i] = x[i]
                previous(i).pointee = reference(i).pointee
                reference(i).pointee = value
                run(i).pointee = 0
                age(i).pointee = 0
                verdict.shift = true
                adopt(i)
            } else {
                clean[i] = Float(reference(i).pointee + side * Self.influence(abs(distance), bound: bound))
                run(i).pointee = count
                verdict.outlier = true
            }
        }
        return verdict
    }

    /// Whether a saved gate region can be continued from: finite references, whole runs shorter
    /// than `shiftAfter`.
    static func isPlausible(_ base: UnsafePointer<Double>, inputs: Int) -> Bool {
        (0..<inputs).allSatisfy { i in
            let run = base[2 * inputs + i], previous = base[inputs + i], age = base[3 * inputs + i]
            return base[i].isFinite && !previous.isInfinite && run == run.rounded() && abs(run) < Double(shiftAfter)
                && age >= 0 && age <= returnWithin + 1
        }
    }
}
