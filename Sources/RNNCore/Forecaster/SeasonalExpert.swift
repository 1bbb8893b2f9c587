// The seasonal expert, for forecasts far ahead on streams with a daily or weekly cycle: the latest
// value plus the change the cycle makes between now and the forecast's time,
// x̂(t + pΔ) = x(t) + S(t + pΔ) − S(t), where S is the target's profile over the day and the week
// and Δ the stream's sampling interval (SamplingClock). The periods come from the time axis, not
// from a count of samples, so the profile costs the same whatever the sampling rate and holds
// across gaps; a day of 1-minute samples is 1,440 samples, beyond the direct expert's look-back,
// which is where this expert earns its place (docs/tuning.md, "Long horizons", has what it is
// worth on the benchmark files). Samples without a time teach it nothing, and it then forecasts the
// latest value.
//
// The profile is additive, S = D[day bin] + W[week bin], over bins of 5 minutes of the day (288) and
// 15 minutes of the week (672), in UTC, beside a level ℓ, as in additive Holt–Winters (C. C. Holt
// 1957, P. R. Winters 1960) with two seasons: at a sample x in day bin b and week bin c, the level
// learns the value less the profile, ℓ ← ℓ + a (x − D[b] − W[c] − ℓ) with a = Δ / 1 day (a memory
// of about a day), then each bin learns by backfitting on the deviation d = x − ℓ:
// D[b] ← D[b] + ρ (d − W[c] − D[b]), then W[c] ← W[c] + ρ (d − D[b] − W[c]). A bin not yet visited
// is unknown (NaN): it counts 0 in the level's update, takes its first value whole, and a
// difference with it counts 0. docs/numerics.md, "Experts and their combination" (seasonal).
//
// Legend: K = targets, P = horizon.

/// Per target its level and its day and week profiles. A view over its region of the forecaster's
/// state buffer, K × (1 + 288 + 672) numbers (none when off).
struct SeasonalExpert {
    let base: UnsafeMutablePointer<Double>
    let targets: Int
    let isOn: Bool
    /// ρ of this profile: `rate` for the expert's; the anomaly score's own profile learns faster
    /// (NoveltyScore.profileRate).
    let rate: Double

    init(base: UnsafeMutablePointer<Double>, targets: Int, isOn: Bool, rate: Double = Self.rate) {
        self.base = base
        self.targets = targets
        self.isOn = isOn
        self.rate = rate
    }

    static let day = 86_400.0, week = 7 * 86_400.0
    static let dayBins = 288, weekBins = 672
    /// ρ: a bin's memory is about ten visits (ten days, ten weeks).
    static let rate = 0.1
    /// Weeks start on Monday 00:00 UTC (the Unix epoch was a Thursday).
    static let weekStart = 4 * 86_400.0
    static let perTarget = 1 + dayBins + weekBins

    static func count(targets k: Int, on: Bool) -> Int { on ? k * perTarget : 0 }

    private func level(_ j: Int) -> UnsafeMutablePointer<Double> { base + j * Self.perTarget }
    private func dayProfile(_ j: Int) -> UnsafeMutablePointer<Double> { base + j * Self.perTarget + 1 }
    private func weekProfile(_ j: Int) -> UnsafeMutablePointer<Double> { base + j * Self.perTarget + 1 + Self.dayBins }

    /// Every level and bin unknown.
    func start() {
        if isOn { base.update(repeating: .nan, count: Self.count(targets: targets, on: true)) }
    }

    /// The bin of time `t` in a period of `length` seconds cut into `bins`, starting at `offset`
    /// (the first for a time that is not finite: a forecast's time is the latest time plus steps of
    /// the sampling interval, and absurd times must not stop the stream).
    @inline(__always) static func bin(_ t: Double, length: Double, bins: Int, offset: Double = 0) -> Int {
        var phase = (t - offset).truncatingRemainder(dividingBy: length)
        guard phase.isFinite else { return 0 }
        if phase < 0 { phase += length }
        return min(Int(phase / length * Double(bins)), bins - 1)
    }

    @inline(__always) static func dayBin(_ t: Double) -> Int { bin(t, length: day, bins: dayBins) }
    @inline(__always) static func weekBin(_ t: Double) -> Int { bin(t, length: week, bins: weekBins, offset: weekStart) }

    /// Learns target `j`'s value `x` taken at a time of bins `bins` (the stream's sampling interval
    /// `interval` sets how fast the level forgets: about a day; the bins depend on the time alone,
    /// so the caller finds them once for every target). The level follows the value less its
    /// profile (additive Holt–Winters), so the cycle does not leak into it; `restart` (a new
    /// segment or a level shift) moves it to the value less the profile at once. The profiles
    /// stay, since they belong to the time of day and of the week.
    func observe(_ x: Double, target j: Int, at bins: Bins, interval: Double?, restart: Bool) {
        let day = dayProfile(j) + bins.day, week = weekProfile(j) + bins.week
        let daily = day.pointee.isNaN ? 0 : day.pointee, weekly = week.pointee.isNaN ? 0 : week.pointee
        let l = level(j)
        if l.pointee.isNaN || restart {
            l.pointee = x - daily - weekly
        } else {
            let a = min(max((interval ?? Self.day / 100) / Self.day, 1e-4), 0.5)
            l.pointee += a * (x - daily - weekly - l.pointee)
        }
        let d = x - l.pointee
        day.pointee = day.pointee.isNaN ? d - weekly : day.pointee + rate * (d - weekly - day.pointee)
        week.pointee = week.pointee.isNaN ? d - day.pointee : week.pointee + rate * (d - day.pointee - week.pointee)
    }

    /// What target `j`'s profile expects at a time of bins `bins`, ℓ + D[b] + W[c] (a week bin
    /// still unknown counting 0): nil until the level and the day bin are known.
    func expected(target j: Int, at bins: Bins) -> Double? {
        let daily = dayProfile(j)[bins.day], weekly = weekProfile(j)[bins.week]
        let x = level(j).pointee + daily + (weekly.isNaN ? 0 : weekly)
        return x.isNaN ? nil : x
    }

    /// A time's bin of the day and of the week, and the time (Unix seconds).
    struct Bins {
        let day: Int, week: Int
        let time: Double
        init(_ t: Double) {
            day = SeasonalExpert.dayBin(t)
            week = SeasonalExpert.weekBin(t)
            time = t
        }
    }

    /// The change the profile of target `j` makes from the time of bins `now` to the time of bins
    /// `ahead` (0 where a bin is still unknown).
    @inline(__always) func change(target j: Int, from now: Bins, to ahead: Bins) -> Double {
        @inline(__always) func difference(_ profile: UnsafeMutablePointer<Double>, _ a: Int, _ b: Int) -> Double {
            let x = profile[b] - profile[a]
            return x.isNaN ? 0 : x
        }
        return difference(dayProfile(j), now.day, ahead.day) + difference(weekProfile(j), now.week, ahead.week)
    }

    /// Whether a saved region can be continued from: levels and bins finite or unknown.
    static func isPlausible(_ base: UnsafePointer<Double>, targets k: Int, on: Bool) -> Bool {
        (0..<count(targets: k, on: on)).allSatisfy { !base[$0].isInfinite }
    }
}
