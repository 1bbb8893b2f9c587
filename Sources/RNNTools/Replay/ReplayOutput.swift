// What `rnnd replay` writes (docs/replay.md): the table on stdout and the predictions CSV lines.
// The metrics JSON is ReplayJSON.swift, the SVG plot ReplayPlot.swift.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

import RNNCore

extension ReplayReport {
    /// The readable report: what was replayed, then MSE and MAE of the model and of
    /// persistence, overall, per target and per horizon step, with the skill
    /// `1 - MSE(model) / MSE(persistence)`.
    public func table(firstTime: Double? = nil, lastTime: Double? = nil) -> String {
        var lines: [String] = []
        lines.append("rnnd replay: \(file)")
        var shape = "  \(fileRows) rows"
        if let timeColumn {
            shape += ", time '\(timeColumn)'"
            if let firstTime, let lastTime {
                shape += " \(Timestamp.iso8601(firstTime)) … \(Timestamp.iso8601(lastTime))"
            }
        }
        lines.append(shape)
        lines.append("  inputs: \(inputs.joined(separator: ", "))")
        lines.append("  targets: \(targets.joined(separator: ", "))")
        lines.append("  model: \(Self.describe(model))")
        if let startedFrom { lines.append("  from: \(startedFrom.file) (\(startedFrom.detail))") }
        var streamed = "  \(samples) samples streamed"
        let carriedText = zip(inputs, carried).filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }
        if !carriedText.isEmpty { streamed += "; missing cells carried forward: " + carriedText.joined(separator: ", ") }
        lines.append(streamed)
        if let stuck = stuckText { lines.append("  stuck: " + stuck) }
        if !refused.isEmpty {
            let reasons = refused.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.append("  refused as the daemon would: \(reasons)")
        }
        if clockResets > 0 { lines.append("  clock set back and accepted as the daemon would: \(clockResets) time\(clockResets == 1 ? "" : "s")") }
        if warmupRows > 0 {
            lines.append("  warm-up: the first \(warmupRows) samples, \(warmupEpochs) pass\(warmupEpochs == 1 ? "" : "es"), not scored")
        }
        let scored = overall.model.count / max(targets.count, 1)
        var pace = "  \(scored) forecasts scored"
        if horizon > 1 { pace += " over \(horizon) steps ahead" }
        if let firstScoredRow { pace += " (data rows \(firstScoredRow) on)" }
        pace += "; \(steps) steps in \(format(seconds, 3)) s = \(Int(samplesPerSecond.rounded())) samples/s"
        pace += "; \(updates) updates"
        if skippedUpdates > 0 { pace += ", \(skippedUpdates) skipped (non-finite)" }
        lines.append(pace)
        lines.append("")
        lines += figuresTable()
        lines.append("")
        lines.append("  skill = 1 - MSE(model) / MSE(persistence); persistence forecasts the latest value.")
        if let lag = seasonalLag {
            lines.append("  seasonal persistence forecasts the value one day (\(lag) samples) earlier, where the file has it.")
        }
        if model.ensemble {
            // An expert that is off (the direct or the seasonal one) has the latest value in its
            // column: persistence again.
            let shown = Expert.allCases.filter(model.isOn)
            let figures = shown.map { e in "\(e.name) \(experts[e.rawValue].mse.map { formatG($0, 6) } ?? "-")" }
            lines.append("  each expert alone, MSE: " + figures.joined(separator: ", ") + " (the model combines them)")
        }
        let bands = overall.bands
        if let coverage = bands.coverage, let width = bands.meanWidth {
            lines.append("  bands (\(format(100 * model.coverage, 0))% asked): \(format(100 * coverage, 1))% of \(bands.count) values inside, "
                + "mean width \(formatG(width, 6)); anomaly scores for \(anomalyScores) samples; \(drifts) drift\(drifts == 1 ? "" : "s")")
        }
        lines.append("  outliers held back: \(outliers) sample\(outliers == 1 ? "" : "s"); level shifts adopted: \(levelShifts); "
            + "new segments (gaps, clock jumps): \(segments)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `temp 1 episode over 42 rows, load 2 episodes over 80 rows`: the inputs that were stuck
    /// (``ChannelWatch``); nil when none was.
    public var stuckText: String? {
        let parts = inputs.indices.filter { stuckEpisodes[$0] > 0 }.map { j in
            "\(inputs[j]) \(stuckEpisodes[j]) episode\(stuckEpisodes[j] == 1 ? "" : "s") over \(stuckRows[j]) row\(stuckRows[j] == 1 ? "" : "s")"
        }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }

    /// The figures, one line overall, one per target, one per horizon step, under a heading.
    public func figuresTable(indent: String = "  ") -> [String] {
        var lines: [String] = []
        var rows: [(String, ErrorComparison)] = [("overall", overall)]
        for (j, name) in targets.enumerated() { rows.append((name, target(j))) }
        for h in 1...horizon { rows.append(("h=\(h)", horizonStep(h))) }
        let labelWidth = max(12, rows.map(\.0.count).max() ?? 0)
        let seasonal = seasonalLag != nil
        var columns = ["MSE model", "MSE persist.", "MAE model", "MAE persist.", "skill"]
        if seasonal { columns.insert("MSE seasonal", at: 2) }
        columns.append("coverage")
        func cell(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        lines.append(indent + "".padding(labelWidth) + columns.map { cell($0, 14) }.joined())
        for (name, e) in rows {
            var numbers = [e.model.mse, e.persistence.mse, e.model.mae, e.persistence.mae]
            if seasonal { numbers.insert(e.seasonal.mse, at: 2) }
            let figures = numbers.map { $0.map { formatG($0, 6) } ?? "-" }
            let skill = e.skill.map { format($0, 3) } ?? "-"
            let coverage = e.bands.coverage.map { format(100 * $0, 1) + "%" } ?? "-"
            lines.append(indent + name.padding(labelWidth) + (figures + [skill, coverage]).map { cell($0, 14) }.joined())
        }
        return lines
    }

    /// `lstm, hidden 64, window 20, update every 2, horizon 1, adafactor lr 0.002, clip norm 1.0, squared loss, seed 0`.
    public static func describe(_ m: ModelConfiguration) -> String {
        let loss = if case .huber(let delta) = m.loss { "huber loss (delta \(delta))" } else { "squared loss" }
        var text = "\(m.cell.rawValue)"
        if m.cell == .elman { text += " (\(m.elmanActivation.rawValue))" }
        text += ", hidden \(m.hidden), window \(m.window), update every \(m.updateEvery), horizon \(m.horizon), "
        text += "\(OptimizerName(m.optimizer).rawValue) lr \(m.learningRate), clip \(m.clipMode.rawValue)"
        if m.clipMode != .none { text += " \(m.clipThreshold)" }
        text += ", \(loss), seed \(m.seed)"
        if case .running(let f?) = m.normalization { text += ", normalization forgetting \(f)" }
        text += ", \(m.formulation.rawValue)s\(m.calendar ? " + calendar" : "")"
        text += m.ensemble ? ", ensemble (\(describeExperts(m)))" : ", network alone"
        text += m.coverage > 0 ? ", \(format(100 * m.coverage, 0))% bands" : ", no bands"
        if !m.drift { text += ", no drift handling" }
        return text
    }
}

extension Replayer {
    /// The header of the predictions file: `row,horizon,<target columns>`, then
    /// `<target>_lower` and `<target>_upper` for each target, then `anomaly`, then with several
    /// targets `<target>_anomaly` for each; quoted as CSV needs.
    public var predictionsHeader: String {
        let names = targetNames
        let perTarget = names.count > 1 ? names.map { $0 + "_anomaly" } : []
        return (["row", "horizon"] + names + names.flatMap { [$0 + "_lower", $0 + "_upper"] } + ["anomaly"] + perTarget)
            .map(csvField).joined(separator: ",") + "\n"
    }

    /// One line of the predictions file; values are `Float.description`, the shortest text that
    /// reads back as the same float32, as in the daemon's forecasts. A bound without a band, and
    /// the anomaly scores when there are none (every horizon but 1, and during the warm-up), are
    /// empty.
    public static func predictionLine(_ p: ReplayPrediction) -> String {
        var line = "\(p.row),\(p.horizon)"
        for v in p.values {
            line += ","
            line += v.description
        }
        for j in p.values.indices {
            for bound in [p.lower[j], p.upper[j]] {
                line += ","
                if !bound.isNaN { line += bound.description }
            }
        }
        line += ","
        if let a = p.anomaly { line += Float(a).description }
        if p.values.count > 1 {
            for j in p.values.indices {
                line += ","
                if j < p.targetAnomalies.count { line += p.targetAnomalies[j].description }
            }
        }
        return line + "\n"
    }

    /// The time of the first and last sample, when the file has a time axis.
    public var timeSpan: (first: Double, last: Double)? {
        guard let first = samples.time.first, let last = samples.time.last else { return nil }
        return (first, last)
    }

    /// The data rows of the scored samples, in order.
    public var scoredRows: ArraySlice<Int> { samples.rows[settings.warmupRows...] }
}

/// A field of a CSV line, quoted when it holds a comma, a quote or a line break.
func csvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
    return "\"" + text.replacingAll("\"", with: "\"\"") + "\""
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }

    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

/// `x` in C's `%.<digits>g` form: at most `digits` significant digits, no trailing zeros.
func formatG(_ x: Double, _ digits: Int) -> String { printf("%.\(digits)g", x) }

/// `x` with `digits` digits after the point.
func format(_ x: Double, _ digits: Int) -> String { printf("%.\(digits)f", x) }

private func printf(_ format: String, _ x: Double) -> String {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
        let n = withVaList([x]) { vsnprintf(buffer.baseAddress!, 64, format, $0) }
        let bytes = UnsafeRawBufferPointer(start: buffer.baseAddress!, count: max(0, min(Int(n), 63)))
        return String(decoding: bytes, as: UTF8.self)
    }
}

