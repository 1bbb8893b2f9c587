// The tick marks of the plot's axes (docs/replay.md, "The plot"): round numbers, and round times
// in UTC labelled for the span shown.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One tick of an axis: where it is, its label, and for a time axis the date or year it falls in
/// when the tick before it fell in another (nil otherwise), drawn as a second row under the labels.
struct ChartTick: Equatable {
    var value: Double
    var label: String
    var context: String?
}

extension ChartTick {
    /// Round tick values (1, 2 or 5 times a power of ten) covering [low, high], about `count` of
    /// them; with `integral`, no step below 1 (data rows have no fractions) and labels without one.
    static func numbers(_ low: Double, _ high: Double, count: Int, integral: Bool = false) -> [ChartTick] {
        guard high > low, low.isFinite, high.isFinite else { return [] }
        let raw = (high - low) / Double(max(count, 1))
        let power = pow(10, log10(raw).rounded(.down))
        var step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? 10 * power
        if integral { step = max(step.rounded(.up), 1) }
        var v = (low / step).rounded(.up) * step
        var result: [ChartTick] = []
        while v <= high + step * 1e-9, result.count < 50 {
            let value = abs(v) < step * 1e-9 ? 0 : v
            result.append(ChartTick(value: value, label: integral ? String(Int(value.rounded())) : formatG(value, 6)))
            v += step
        }
        return result
    }

    /// The steps a time axis may take, shortest first: seconds to hours (each divides a day, so
    /// ticks counted from the Unix epoch fall on round times of day in UTC), days, weeks from
    /// Monday, months and years from their first day.
    enum TimeStep: Equatable {
        case seconds(Int)
        case days(Int)
        case weeks
        case months(Int)
        case years(Int)

        static let ladder: [TimeStep] =
            [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200].map { .seconds($0) }
            + [.days(1), .days(2), .weeks] + [1, 2, 3, 6].map { .months($0) }
            + [1, 2, 5, 10, 20, 50, 100].map { .years($0) }

        /// The step's length in seconds; a month and a year at their Gregorian mean.
        var nominalSeconds: Double {
            switch self {
            case .seconds(let n): Double(n)
            case .days(let n): Double(n) * 86_400
            case .weeks: 7 * 86_400
            case .months(let n): Double(n) * 2_629_746
            case .years(let n): Double(n) * 31_556_952
            }
        }

        /// The widest label of this step (`00:00:00`, `00:00`, `Jul 03`, `Jul`, `2014`).
        var widestLabel: String {
            switch self {
            case .seconds(let n): n < 60 ? "00:00:00" : "00:00"
            case .days, .weeks: "Jul 03"
            case .months: "Jul"
            case .years: "2014"
            }
        }
    }

    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Ticks of a time axis from `low` to `high` (Unix seconds), labelled in UTC: the shortest step
    /// of ``TimeStep/ladder`` whose labels, at their widest, stand side by side in `width` px with
    /// room between them. Under a second of span (or a bad one) there are none.
    ///
    /// Labels name what changes from tick to tick: `12:00` (with `:30` seconds when the step is
    /// under a minute) for steps within a day, `Jul 03` for days and weeks, `Jul` for months,
    /// `2014` for years. The context row names what the labels leave out: the date (`Jul 03 2014`
    /// at the first tick and where the year changes, `Jul 04` where only the day does) under
    /// times of day, the year under days and months.
    static func times(_ low: Double, _ high: Double, width: Double, fontSize: Double) -> [ChartTick] {
        guard low.isFinite, high.isFinite, high - low >= 1 else { return [] }
        let span = high - low
        let step = TimeStep.ladder.first { step in
            let count = (span / step.nominalSeconds).rounded(.down) + 1
            return count * (ChartText.width(step.widestLabel, size: fontSize) + 3 * fontSize) <= width
        } ?? .years(100)
        return label(times(low, high, step: step), step: step)
    }

    /// The instants of `step` in [low, high].
    static func times(_ low: Double, _ high: Double, step: TimeStep) -> [Double] {
        var result: [Double] = []
        func regular(_ length: Double, from origin: Double) {
            var t = ((low - origin) / length).rounded(.up) * length + origin
            while t <= high, result.count < 100 {
                result.append(t)
                t += length
            }
        }
        /// Firsts of months, `months` apart, counted from January of year 0.
        func calendar(months: Int) {
            let (y, m, _) = Timestamp.civilFromDays(Int((low / 86_400).rounded(.down)))
            var index = (y * 12 + m - 1 + months - 1) / months * months
            while result.count < 100 {
                let t = Double(Timestamp.daysFromCivil(year: index / 12, month: index % 12 + 1, day: 1)) * 86_400
                if t > high { break }
                if t >= low { result.append(t) }
                index += months
            }
        }
        switch step {
        case .seconds(let n): regular(Double(n), from: 0)
        case .days(let n): regular(Double(n) * 86_400, from: 0)
        case .weeks: regular(7 * 86_400, from: 4 * 86_400)  // 1970-01-05 was a Monday
        case .months(let n): calendar(months: n)
        case .years(let n): calendar(months: 12 * n)
        }
        return result
    }

    /// Labels and context rows for instants of `step` (see ``times(_:_:width:fontSize:)``).
    static func label(_ instants: [Double], step: TimeStep) -> [ChartTick] {
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        var previous: (year: Int, month: Int, day: Int)?
        return instants.map { t in
            let whole = Int(t.rounded(.down))
            let days = Int((t / 86_400).rounded(.down)), inDay = whole - days * 86_400
            let date = Timestamp.civilFromDays(days)
            let monthDay = "\(monthNames[date.month - 1]) \(two(date.day))"
            defer { previous = date }
            let newYear = previous.map { $0.year != date.year } ?? true
            switch step {
            case .seconds(let n):
                var label = "\(two(inDay / 3600)):\(two(inDay / 60 % 60))"
                if n < 60 { label += ":\(two(inDay % 60))" }
                let newDay = previous.map { $0 != date } ?? true
                let context = newYear ? "\(monthDay) \(date.year)" : newDay ? monthDay : nil
                return ChartTick(value: t, label: label, context: context)
            case .days, .weeks:
                return ChartTick(value: t, label: monthDay, context: newYear ? "\(date.year)" : nil)
            case .months:
                return ChartTick(value: t, label: monthNames[date.month - 1], context: newYear ? "\(date.year)" : nil)
            case .years:
                return ChartTick(value: t, label: "\(date.year)")
            }
        }
    }
}
