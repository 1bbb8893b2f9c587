// What `rnnd demo` shows: a view redrawn in place on a terminal, progress lines otherwise, and
// the summary. Every figure comes from the forecasts received (DemoBoard in Demo.swift).

import Foundation

/// The demo's text. Used on the demo's main thread only.
final class DemoView {
    let settings: DemoSettings
    let streams: [DemoStream]
    let pid: pid_t
    let stateDirectory: String
    var endpoints: (samples: String, forecasts: String)?
    /// Lines of the last frame drawn, to move back over them.
    private var drawn = 0
    /// (seconds, forecasts per stream) over the last few seconds, for the rates.
    private var history: [(Double, [Int])] = []

    init(settings: DemoSettings, streams: [DemoStream], pid: pid_t, stateDirectory: String) {
        self.settings = settings
        self.streams = streams
        self.pid = pid
        self.stateDirectory = stateDirectory
    }

    /// The forecasts of stream `j` that can be scored: those whose target sample was sent (a
    /// forecast for the sample after the last one sent is received, but not scored).
    func scored(_ j: Int, _ score: DemoStreamScore) -> Int {
        let acceptedSent = streams[j].accepted.prefix { $0 < score.sent }.count
        return min(score.modelErrors.count, max(0, acceptedSent - 1))
    }

    // MARK: - While it runs

    func note(_ scores: [DemoStreamScore], at seconds: Double) {
        history.append((seconds, scores.map(\.forecasts)))
        history.removeAll { seconds - $0.0 > 3 }
    }

    /// Forecasts per second of stream `j` over the last few seconds.
    func rate(_ j: Int) -> Double {
        guard let first = history.first, let last = history.last, last.0 - first.0 > 0.5 else { return 0 }
        return Double(last.1[j] - first.1[j]) / (last.0 - first.0)
    }

    var rows: Int { streams.map(\.count).max() ?? 0 }

    var header: [String] {
        var lines = ["rnnd demo: a real rnnd daemon learns two real sensor series online"]
        if let endpoints {
            lines.append("  daemon  pid \(pid), samples in \(endpoints.samples)")
            lines.append("          forecasts out \(endpoints.forecasts)")
        }
        lines.append("  model   \(settings.cell), \(settings.hidden) hidden units, one per stream, learning from its first sample,")
        lines.append("          combined with persistence, smoothing and a linear model by their recent errors")
        lines.append("  feed    \(rows) rows per stream at \(Self.number(settings.rate))/s")
        lines.append("  scores  each stream's last \(settings.recent) forecasts, model vs persistence (the")
        lines.append("          latest value as forecast); skill = 1 - MSE(model)/MSE(persistence)")
        return lines
    }

    /// The whole view, drawn over the previous one.
    func frame(_ scores: [DemoStreamScore], elapsed: Double, final: Bool = false) -> String {
        var lines = header + [""]
        for (j, stream) in streams.enumerated() {
            let score = scores[j]
            lines.append("  \(stream.series.stream): \(stream.series.what)")
            var line = "    sent \(score.sent)/\(stream.count)   forecasts \(score.forecasts)   \(Int(rate(j).rounded()))/s"
            if let t = score.latestTime { line += "   at \(Self.time(t))" }
            lines.append(line)
            if let v = score.latestValue, let f = score.latestForecast {
                var line = "    value \(Self.number(v))   forecast of the next value \(Self.number(f))"
                if let band = score.latestBand { line += "   90% band \(Self.number(band.lower, 5)) … \(Self.number(band.upper, 5))" }
                lines.append(line)
            } else {
                lines.append("    no forecast yet")
            }
            lines.append("    " + bandLine(score))
            let recent = recentLine(score, scored(j, score))
            lines.append("    " + recent.skill)
            lines.append("      " + recent.errors)
        }
        let fraction = rows > 0 ? Double(scores.map(\.sent).max() ?? 0) / Double(rows) : 1
        let filled = Int(fraction * 30)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        lines.append("")
        lines.append("  [\(bar)] \(Int(fraction * 100))%  \(Self.fixed(elapsed, 1)) s" + (final ? "" : "  (Ctrl-C stops)"))

        var text = drawn > 0 ? "\u{1B}[\(drawn)F" : "\u{1B}[?25l"
        for line in lines { text += "\u{1B}[2K" + String(line.prefix(max(20, settings.columns - 1))) + "\n" }
        drawn = lines.count
        if final { text += "\u{1B}[?25h" }
        return text
    }

    /// Plain lines for a log or a pipe: one per stream.
    func progress(_ scores: [DemoStreamScore], elapsed: Double) -> String {
        var text = ""
        for (j, stream) in streams.enumerated() {
            let score = scores[j]
            text += "  [\(Self.fixed(elapsed, 0)) s] \(stream.series.stream): \(score.sent)/\(stream.count) sent, "
                + "\(score.forecasts) forecasts; \(recentLine(score, scored(j, score)).line); \(bandLine(score))\n"
        }
        return text
    }

    /// How the bands did, and the anomalies so far.
    func bandLine(_ score: DemoStreamScore) -> String {
        var line = score.banded > 0
            ? "bands held \(Self.fixed(100 * Double(score.covered) / Double(score.banded), 1))% of \(score.banded) values"
            : "no band yet"
        line += "; \(score.anomalies) anomal\(score.anomalies == 1 ? "y" : "ies") (score ≥ \(DemoStreamScore.alarm))"
        if let a = score.latestAnomaly { line += ", latest \(Self.time(a.time)) (\(Self.fixed(a.score, 2)))" }
        return line
    }

    /// The scores of the last `recent` forecasts: the skill, then the errors of the model and of
    /// persistence; `line` puts them on one line.
    func recentLine(_ score: DemoStreamScore, _ n: Int) -> (skill: String, errors: String, line: String) {
        let errors = DemoErrors(score, max(0, n - settings.recent)..<n)
        guard let m = errors.modelMSE, let p = errors.persistenceMSE, let ma = errors.modelMAE, let pa = errors.persistenceMAE else {
            return ("no forecast scored yet", "", "no forecast scored yet")
        }
        var skill = "last \(errors.count): skill \(Self.skill(errors.skill))"
        if let s = errors.skill { skill += s > 0 ? ", model ahead" : ", persistence ahead" }
        let figures = "MSE \(Self.number(m, 3)) vs \(Self.number(p, 3))   MAE \(Self.number(ma, 4)) vs \(Self.number(pa, 4))"
        return (skill, figures + "   (model vs persistence)", skill + "; " + figures)
    }

    // MARK: - The summary

    func summary(
        _ scores: [DemoStreamScore], seconds: Double, interrupted: Bool, probes: Int, daemonLine: String?, daemonStatus: String,
        stateRemoved: Bool, failures: [String]
    ) -> String {
        var out: [String] = [""]
        let sent = scores.map(\.sent).max() ?? 0
        out.append("rnnd demo: summary\(interrupted ? " (interrupted)" : ""): \(sent) rows per stream sent in \(Self.fixed(seconds, 1)) s")
        out.append("  Every figure comes from the forecasts received: each is matched by stream,")
        out.append("  seq and t to the sample it was made after, and scored against the value")
        out.append("  of the next sample sent.")
        out.append("")
        out.append(Self.columns(["stream", "sent", "refused", "forecasts", "scored"], [25, 8, 9, 11, 8]))
        for (j, stream) in streams.enumerated() {
            let score = scores[j]
            // Refused among the rows sent so far (all of them unless interrupted).
            let refusedSent = score.sent - stream.accepted.prefix { $0 < score.sent }.count
            var row = Self.columns(
                [stream.series.stream, "\(score.sent)", "\(refusedSent)", "\(score.forecasts)", "\(scored(j, score))"],
                [25, 8, 9, 11, 8])
            if score.unmatched > 0 { row += "  (\(score.unmatched) forecasts matched no sample)" }
            out.append(row)
        }
        for (j, stream) in streams.enumerated() where !stream.refused.isEmpty && scores[j].sent == stream.count {
            let reasons = stream.refused.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            out.append("  \(stream.series.stream): refused by the daemon: \(reasons)")
            out.append("    (the file steps back in time once; data/README.md)")
        }

        let widths = [25, 11, 11, 11, 11, 8]
        for (title, half) in [("The second half of each stream's scored forecasts:", true), ("All scored forecasts:", false)] {
            out.append("")
            out.append("  " + title)
            out.append(Self.columns(["stream", "MSE model", "MSE pers.", "MAE model", "MAE pers.", "skill"], widths))
            for (j, stream) in streams.enumerated() {
                let n = scored(j, scores[j])
                let e = DemoErrors(scores[j], (half ? n / 2 : 0)..<n)
                out.append(Self.columns(
                    [stream.series.stream, Self.number(e.modelMSE, 4), Self.number(e.persistenceMSE, 4),
                     Self.number(e.modelMAE, 4), Self.number(e.persistenceMAE, 4), Self.skill(e.skill)], widths))
            }
        }

        out.append("")
        var wins = 0, judged = 0
        for (j, stream) in streams.enumerated() {
            let n = scored(j, scores[j])
            let e = DemoErrors(scores[j], n / 2..<n)
            guard let m = e.modelMSE, let p = e.persistenceMSE, p > 0 else {
                out.append("  \(stream.series.stream): too few forecasts to judge.")
                continue
            }
            judged += 1
            if m < p {
                wins += 1
                out.append("  \(stream.series.stream): the model BEAT persistence over the second half")
                out.append("    (its MSE is \(Self.percent(1 - m / p)) lower).")
            } else {
                out.append("  \(stream.series.stream): the model did NOT beat persistence over the second half")
                out.append("    (its MSE is \(Self.percent(m / p - 1)) higher).")
            }
        }
        if judged > 0 {
            out.append("  Overall: the model beat persistence on \(wins) of \(judged) streams")
            out.append("    (per stream: their units differ, so their errors are not pooled).")
        }
        out.append("")
        out.append("  The 90% bands published with the forecasts, and the anomaly scores:")
        for (j, stream) in streams.enumerated() {
            out.append("  \(stream.series.stream): \(bandLine(scores[j]))")
        }
        if streams.indices.contains(where: { scored($0, scores[$0]) < 2000 }) {
            out.append("  With fewer than 2000 forecasts a stream's model has had too little data to learn;")
            out.append("  the default run (10320 rows per stream) shows it learning.")
        }
        out.append("")
        if let daemonLine {
            out.append("  the daemon's own count, from its log (with \(probes) probe sample\(probes == 1 ? "" : "s") of \(DemoSeries.probeStream)):")
            out.append("    \(daemonLine)")
        }
        out.append("  daemon: pid \(pid) stopped with SIGTERM: \(daemonStatus)")
        out.append("  its state directory \(stateDirectory): \(stateRemoved ? "removed" : "NOT removed")")
        for failure in failures { out.append("  FAILED: \(failure)") }
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: - Formatting

    static func columns(_ cells: [String], _ widths: [Int]) -> String {
        var line = "  "
        for (i, cell) in cells.enumerated() {
            let width = widths[i]
            if i == 0 {
                line += cell + String(repeating: " ", count: max(1, width - cell.count))
            } else {
                line += String(repeating: " ", count: max(1, width - cell.count)) + cell
            }
        }
        return line
    }

    static func number(_ x: Double?, _ digits: Int = 6) -> String {
        guard let x else { return "-" }
        return x == x.rounded() && abs(x) < 1e7 ? "\(Int(x))" : formatG(x, digits)
    }

    static func fixed(_ x: Double, _ digits: Int) -> String { format(x, digits) }

    static func skill(_ x: Double?) -> String {
        guard let x else { return "-" }
        return (x >= 0 ? "+" : "") + format(x, 3)
    }

    static func percent(_ x: Double) -> String { format(x * 100, 0) + "%" }

    /// `2014-07-01 00:30` for Unix seconds.
    static func time(_ t: Double) -> String {
        let iso = Timestamp.iso8601(t)
        return String(iso.prefix(16)).replacingOccurrences(of: "T", with: " ")
    }
}
