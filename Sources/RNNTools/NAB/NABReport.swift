// What `rnnd-nab score` prints and writes: per profile the threshold, the raw and normalised
// scores, the windows detected and the false alarms, then the normalised score per category.

/// A detector's NAB scores for every profile, each at its own threshold.
public struct NABReport: Sendable {
    /// One profile's figures.
    public struct Entry: Sendable {
        public var evaluation: NABEvaluation
        /// True when the threshold is the one that maximises the raw score; false when it was given
        /// (`--thresholds`, NAB's published ones).
        public var optimised: Bool
    }

    public var detector: String
    public var entries: [Entry]

    /// Scores `scorer` for each of `profiles` at the threshold `thresholds` gives for it, or, when
    /// it gives none, at the one that maximises the raw score (``NABScorer/optimise(_:)``).
    public init(detector: String, scorer: NABScorer, profiles: [NABProfile], thresholds: [String: Double] = [:]) {
        self.detector = detector
        self.entries = profiles.map { profile in
            if let threshold = thresholds[profile.name] {
                return Entry(evaluation: scorer.evaluate(profile, threshold: threshold), optimised: false)
            }
            let best = scorer.optimise(profile)
            return Entry(evaluation: scorer.evaluate(profile, threshold: best.threshold), optimised: true)
        }
    }

    /// The readable report: a line of what was scored, a table of the profiles, a table of the
    /// categories' normalised scores.
    public func table() -> String {
        var lines: [String] = []
        guard let first = entries.first?.evaluation.total else { return "rnnd-nab score: \(detector): no profile\n" }
        lines.append("NAB scores of \(detector): \(first.files) files, \(first.windows) windows, "
            + "\(first.scoredRows) scored rows over \(format(first.scoredDays, 1)) days")
        let chosen = entries.allSatisfy(\.optimised) ? "the one that maximises the raw score, per profile"
            : entries.allSatisfy { !$0.optimised } ? "as given, per profile" : "given (*) or maximising the raw score"
        lines.append("threshold: \(chosen); a row scoring at least the threshold is a detection")
        lines.append("")
        let nameWidth = max(20, entries.map { $0.evaluation.profile.name.count + 2 }.max() ?? 0)
        lines.append("profile".padding(nameWidth) + "threshold".leftPadding(14) + "raw S".leftPadding(10)
            + "normalised".leftPadding(12) + "windows detected".leftPadding(18) + "FPs".leftPadding(8) + "FPs/day".leftPadding(10))
        for entry in entries {
            let e = entry.evaluation, t = e.total
            let mark = entry.optimised || entries.allSatisfy({ !$0.optimised }) ? "" : "*"
            lines.append(e.profile.name.padding(nameWidth) + (Self.threshold(e.threshold) + mark).leftPadding(14)
                + format(t.score, 3).leftPadding(10) + Self.optional(e.normalised, 2).leftPadding(12)
                + "\(t.windowsDetected)/\(t.windows)".leftPadding(18) + "\(t.falsePositives)".leftPadding(8)
                + Self.optional(t.falsePositivesPerDay, 3).leftPadding(10))
        }
        lines.append("")
        lines.append("normalised score per category, at each profile's threshold:")
        let categoryWidth = max(22, (entries[0].evaluation.categories.map { $0.name.count }.max() ?? 0) + 2)
        let columnWidths = entries.map { max(12, $0.evaluation.profile.name.count + 2) }
        var header = "category".padding(categoryWidth) + "files".leftPadding(6) + "windows".leftPadding(9)
        for (entry, width) in zip(entries, columnWidths) { header += entry.evaluation.profile.name.leftPadding(width) }
        lines.append(header)
        var withoutWindows = false
        for (c, category) in entries[0].evaluation.categories.enumerated() {
            var line = category.name.padding(categoryWidth) + "\(category.tally.files)".leftPadding(6)
                + "\(category.tally.windows)".leftPadding(9)
            for (entry, width) in zip(entries, columnWidths) {
                let value = entry.evaluation.normalised(entry.evaluation.categories[c].tally)
                if value == nil { withoutWindows = true }
                line += Self.optional(value, 2).leftPadding(width)
            }
            lines.append(line)
        }
        if withoutWindows {
            lines.append("— a category without windows has nothing to normalise by; its false positives count in the raw S.")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A threshold as text: ten significant digits (NAB's scores have up to twelve), or `never`
    /// when the best is not to fire.
    static func threshold(_ value: Double) -> String { value.isFinite ? formatG(value, 10) : "never" }

    static func optional(_ value: Double?, _ digits: Int) -> String { value.map { format($0, digits) } ?? "—" }

    /// The report as one line of JSON (keys sorted), as `rnnd-nab score --json` writes it.
    public func json() -> String {
        jsonLine(NABJSONReport(self))
    }
}

/// `rnnd-nab score --json`: the printed figures, one object per profile.
struct NABJSONReport: Encodable {
    struct Category: Encodable {
        var category: String
        var files: Int
        var windows: Int
        var windows_detected: Int
        var false_positives: Int
        var false_positives_per_day: JSONNumber
        var raw_score: JSONNumber
        var normalised: JSONNumber
    }

    struct Profile: Encodable {
        var profile: String
        var weights: [String: Double]
        /// Null when the best is never to fire.
        var threshold: JSONNumber
        var threshold_optimised: Bool
        var raw_score: JSONNumber
        var normalised: JSONNumber
        var windows: Int
        var windows_detected: Int
        var false_positives: Int
        var false_positives_per_day: JSONNumber
        var categories: [Category]
    }

    var detector: String
    var files: Int
    var windows: Int
    var scored_rows: Int
    var scored_days: JSONNumber
    var profiles: [Profile]

    init(_ report: NABReport) {
        let total = report.entries.first?.evaluation.total ?? NABTally()
        detector = report.detector
        files = total.files
        windows = total.windows
        scored_rows = total.scoredRows
        scored_days = JSONNumber(total.scoredDays)
        profiles = report.entries.map { entry in
            let e = entry.evaluation
            return Profile(
                profile: e.profile.name,
                weights: ["tp": e.profile.truePositive, "fp": e.profile.falsePositive, "fn": e.profile.falseNegative],
                threshold: JSONNumber(e.threshold), threshold_optimised: entry.optimised,
                raw_score: JSONNumber(e.total.score), normalised: JSONNumber(e.normalised),
                windows: e.total.windows, windows_detected: e.total.windowsDetected,
                false_positives: e.total.falsePositives, false_positives_per_day: JSONNumber(e.total.falsePositivesPerDay),
                categories: e.categories.map { category in
                    let t = category.tally
                    return Category(
                        category: category.name, files: t.files, windows: t.windows, windows_detected: t.windowsDetected,
                        false_positives: t.falsePositives, false_positives_per_day: JSONNumber(t.falsePositivesPerDay),
                        raw_score: JSONNumber(t.score), normalised: JSONNumber(e.normalised(t)))
                })
        }
    }
}

extension String {
    func leftPadding(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
