// The forecast history: what the forecaster made at each of the latest P + 1 samples, kept until
// every step it forecast has been resolved. Nothing is scored or learned before its target
// arrives (delayed targets, docs/numerics.md, "The forecaster: ensemble, bands, anomaly, drift").
//
// Legend: O = outputs, E = experts (``Expert``, in its order), R = P + 1 rows, one per sample,
// the sample's index modulo R.

/// The forecasts made at each of the latest `R` samples: per sample, every expert's forecast of
/// every output, their combination, the band's half-width (NaN: no band) and the scale the band
/// used. A view over its region of the forecaster's state buffer, `R × (E + 3) × O` numbers.
struct ForecastHistory {
    let base: UnsafeMutablePointer<Double>
    let rows: Int
    let outputs: Int

    /// Numbers a sample's row holds per output: the experts' forecasts, the combination, the
    /// band's half-width and its scale; `experts` of them (record formats before 6 had one fewer).
    static func columns(experts: Int) -> Int { experts + 3 }
    static let columns = columns(experts: Expert.count)

    static func count(rows: Int, outputs: Int, experts: Int = Expert.count) -> Int {
        rows * columns(experts: experts) * outputs
    }

    /// What was made at sample `n` (its row is reused by sample `n + R`).
    @inline(__always) func made(at n: Int) -> MadeForecasts {
        MadeForecasts(base: base + (n % rows) * Self.columns * outputs, outputs: outputs)
    }
}

/// The forecasts made at one sample: a row of ``ForecastHistory``, column-major (each column
/// holds every output).
struct MadeForecasts {
    let base: UnsafeMutablePointer<Double>
    let outputs: Int

    subscript(expert: Expert, output o: Int) -> Double {
        get { base[expert.rawValue * outputs + o] }
        nonmutating set { base[expert.rawValue * outputs + o] = newValue }
    }

    /// Every expert's forecast of output `o`.
    func experts(output o: Int) -> ExpertForecasts {
        ExpertForecasts(base: UnsafePointer(base + o), stride: outputs)
    }

    /// The published forecast of output `o` (the combination, or the network's without the ensemble).
    subscript(combined o: Int) -> Double {
        get { base[Expert.count * outputs + o] }
        nonmutating set { base[Expert.count * outputs + o] = newValue }
    }

    /// The half-width of output `o`'s band (NaN: no band).
    subscript(halfWidth o: Int) -> Double {
        get { base[(Expert.count + 1) * outputs + o] }
        nonmutating set { base[(Expert.count + 1) * outputs + o] = newValue }
    }

    /// The band's scale when output `o` was forecast: its score is the error over this scale.
    subscript(scale o: Int) -> Double {
        get { base[(Expert.count + 2) * outputs + o] }
        nonmutating set { base[(Expert.count + 2) * outputs + o] = newValue }
    }
}

/// The experts' forecasts of one output, in ``Expert`` order, `stride` numbers apart.
struct ExpertForecasts {
    let base: UnsafePointer<Double>
    let stride: Int

    subscript(expert: Int) -> Double { base[expert * stride] }
}
