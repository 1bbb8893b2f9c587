// `rnnd replay --plot` (docs/replay.md, "The plot"): what an operator reads of a replay in one
// picture. The drawing is SVGChart.swift.

import RNNCore

extension Replayer {
    /// The anomaly score from which the plot marks a sample as an anomaly when `--plot-threshold`
    /// does not say: the forecaster's alert level, the score that starts its quiet period.
    public static let defaultAnomalyThreshold = Forecaster.anomalyAlertLevel

    /// Whether `threshold` can be a plot's threshold: a score from 0 to 1.
    public static func isAnomalyThreshold(_ threshold: Double) -> Bool { (0...1).contains(threshold) }

    /// An SVG chart of target `j` (an index into the targets) over the scored samples at
    /// positions `range` (0 = the first scored sample), after ``run(from:prediction:progress:)``.
    ///
    /// The main panel draws the actual values and the forecast at horizon step 1 over its band
    /// (shaded, broken where there is none), with a red dot on each sample whose anomaly score is
    /// `threshold` or more; the strip under it draws the anomaly score with the threshold dashed.
    /// The x axis tells the time (UTC) when the file has a time axis and the times shown only
    /// increase; otherwise (no time axis, or a clock set back in the span, which the stream
    /// accepts and which would fold the lines back over themselves) it counts data rows.
    /// The header names the file, the target and the span, and scores the samples shown: the
    /// model's skill against persistence, the band's coverage, the anomalies marked.
    public func plot(target j: Int, range: Range<Int>, threshold: Double = Replayer.defaultAnomalyThreshold) -> String {
        precondition(targets.indices.contains(j) && !range.isEmpty && range.upperBound <= scoredRows.count, "plot: no such samples")
        precondition(Self.isAnomalyThreshold(threshold), "plot: a threshold outside 0...1")
        precondition(trace.anomaly.count == scoredRows.count, "plot: before run()")
        let k = targets.count, first = settings.warmupRows, width = samples.width, column = targets[j]
        let indexes = (first + range.lowerBound)..<(first + range.upperBound)
        let timeIncreases = samples.hasTime && zip(indexes.dropFirst(), indexes).allSatisfy { samples.time[$0] > samples.time[$1] }
        func x(_ i: Int) -> Double { timeIncreases ? samples.time[i] : Double(samples.rows[i]) }
        let name = targetNames[j]
        let banded = model.coverage > 0

        var actual: [(x: Double, y: Double)?] = [], forecast: [(x: Double, y: Double)?] = []
        var band: [(x: Double, lower: Double, upper: Double)?] = []
        var marked: [(x: Double, y: Double, note: String)] = [], scores: [(x: Double, y: Double)?] = []
        var figures = ErrorComparison()
        var scored = 0
        for i in indexes {
            let p = i - first, at = p * k + j
            let xi = x(i), value = samples.values[i * width + column]
            actual.append(value.isFinite ? (xi, value) : nil)
            let f = trace.forecast[at]
            if f.isNaN || i == 0 {
                forecast.append(nil)
            } else {
                forecast.append((xi, Double(f)))
                figures.model.add(Double(f) - value)
                figures.persistence.add(samples.values[(i - 1) * width + column] - value)
            }
            let lower = trace.lower[at], upper = trace.upper[at]
            if lower.isNaN || upper.isNaN {
                band.append(nil)
            } else {
                band.append((xi, Double(lower), Double(upper)))
                figures.bands.add(lower: Double(lower), upper: Double(upper), actual: value)
            }
            let score = trace.anomaly[p]
            if score.isNaN {
                scores.append(nil)
            } else {
                scored += 1
                scores.append((xi, score))
                if score >= threshold, value.isFinite {
                    let when = samples.hasTime ? "\(Timestamp.iso8601(samples.time[i])), data row" : "data row"
                    marked.append((xi, value, "\(when) \(samples.rows[i]): \(name) \(formatG(value, 6)), anomaly score \(format(score, 3))"))
                }
            }
        }

        // The header.
        let fileName = samples.file.split(separator: "/").last.map(String.init) ?? samples.file
        let thresholdText = formatG(threshold, 4)
        var span = ["data rows \(samples.rows[indexes.first!]) to \(samples.rows[indexes.last!]) (\(indexes.count) samples)"]
        if samples.hasTime {
            span.append("\(Timestamp.iso8601(samples.time[indexes.first!])) to \(Timestamp.iso8601(samples.time[indexes.last!]))")
            if !timeIncreases { span.append("the clock goes back in this span: x is the data row") }
        }
        var score = ["skill \(figures.skill.map { format($0, 3) } ?? "-")"]
        if let mae = figures.model.mae, let persistence = figures.persistence.mae {
            score[0] += " (MAE model \(formatG(mae, 4)), persistence \(formatG(persistence, 4)))"
        }
        if banded {
            let asked = "\(format(100 * model.coverage, 0))% band"
            if let coverage = figures.bands.coverage {
                score.append("\(asked) held \(format(100 * coverage, 1))% of \(figures.bands.count)")
            } else {
                score.append("no \(asked) yet")
            }
            score.append(scored == 0 ? "no anomaly scores yet"
                : marked.isEmpty ? "no anomaly at score ≥ \(thresholdText)"
                : "\(marked.count) \(marked.count == 1 ? "anomaly" : "anomalies") at score ≥ \(thresholdText)")
        }

        return SVGChart(
            title: ["\(fileName): \(name)", "actual and forecast 1 step ahead"],
            subtitle: [span, score, [ReplayReport.describe(model)]],
            xAxis: timeIncreases ? .times : .rows("data row"),
            yLabel: name,
            series: [
                .init(name: "actual", color: "#333333", points: actual, width: 1.2),
                .init(name: "forecast (h=1)", color: "#1f77b4", points: forecast, width: 1.2),
            ],
            band: banded ? .init(name: "\(format(100 * model.coverage, 0))% band (h=1)", color: "#1f77b4", points: band) : nil,
            markers: banded ? .init(name: "anomaly score ≥ \(thresholdText)", color: "#d62728", points: marked) : nil,
            strip: banded
                ? .init(name: "anomaly", color: "#7b4fa0", points: scores, threshold: threshold,
                    thresholdColor: "#d62728", thresholdLabel: "threshold \(thresholdText)")
                : nil
        ).render()
    }
}
