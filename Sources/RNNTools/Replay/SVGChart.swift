// The plot of `rnnd replay --plot` (docs/replay.md, "The plot"): hand-written SVG, no dependency.

/// A chart as SVG: a main panel of lines over a shaded band, with point markers on it; under it,
/// on the same x axis, an optional strip of a score from 0 to 1 with its threshold dashed; a
/// title, a subtitle and a legend above. The x axis counts (data rows) or tells the time (Unix
/// seconds, labelled in UTC, ``ChartTick/times(_:_:width:fontSize:)``).
///
/// Every line of text is fitted to the width with ``ChartText``'s conservative estimate, so that
/// nothing runs off the picture whatever the file and column names; the height follows from the
/// lines the header takes.
struct SVGChart {
    enum XAxis: Equatable {
        /// Numbers of the points' x, labelled as integers, under this axis label.
        case rows(String)
        /// Unix seconds, labelled as dates and times of day in UTC.
        case times
    }

    struct Series {
        var name: String
        var color: String
        /// nil breaks the line.
        var points: [(x: Double, y: Double)?]
        var width: Double
    }

    /// A shaded area from `lower` to `upper`, broken where a point is nil.
    struct Band {
        var name: String
        var color: String
        var points: [(x: Double, lower: Double, upper: Double)?]
    }

    /// Dots at chosen points, each with a note (shown as its tooltip in a browser).
    struct Markers {
        var name: String
        var color: String
        var points: [(x: Double, y: Double, note: String)]
    }

    /// A score from 0 to 1 under the main panel, with `threshold` as a dashed line.
    struct Strip {
        var name: String
        var color: String
        var points: [(x: Double, y: Double)?]
        var threshold: Double
        var thresholdColor: String
        var thresholdLabel: String
    }

    /// Lines of the title, each a list of phrases (see ``ChartText/wrap``).
    var title: [String]
    /// Paragraphs of the subtitle: each starts a line, its phrases joined by ` · ` and wrapped.
    var subtitle: [[String]]
    var xAxis: XAxis
    var yLabel: String
    var series: [Series]
    var band: Band?
    var markers: Markers?
    var strip: Strip?
    var width = 1000.0

    static let titleSize = 15.0, subtitleSize = 11.0, labelSize = 12.0
    /// Where the header's text starts, and the space kept on either side of it.
    static let textMargin = 16.0
    static let mainHeight = 300.0, stripHeight = 70.0, stripGap = 20.0, right = 40.0

    /// The widest a line of the title or subtitle may be drawn, in px.
    var textWidth: Double { width - 2 * Self.textMargin }

    func render() -> String {
        // The header's lines.
        let titleLines = ChartText.wrap(title, width: textWidth, size: Self.titleSize, bold: true, maxLines: 2)
        let subtitleLines = subtitle.flatMap { ChartText.wrap($0, width: textWidth, size: Self.subtitleSize) }

        // The main panel's y range: the lines', widened to the band's by at most a quarter of it
        // on either side, so that the early bands of a stream (wide, still learning) cannot
        // flatten the lines; the band is clipped to the panel.
        let ys = series.flatMap { $0.points.compactMap { $0?.y } }.filter(\.isFinite)
        var yMin = ys.min() ?? 0, yMax = ys.max() ?? 1
        if let band {
            let reach = max(yMax - yMin, abs(yMax) * 1e-6, 1e-12) * 0.25
            let lows = band.points.compactMap { $0?.lower }.filter(\.isFinite)
            let highs = band.points.compactMap { $0?.upper }.filter(\.isFinite)
            if let low = lows.min() { yMin = min(yMin, max(low, yMin - reach)) }
            if let high = highs.max() { yMax = max(yMax, min(high, yMax + reach)) }
        }
        if yMax <= yMin { yMin -= 1; yMax += 1 }
        let pad = (yMax - yMin) * 0.04
        yMin -= pad
        yMax += pad
        let yTicks = ChartTick.numbers(yMin, yMax, count: 6)
        let yLabelWidth = yTicks.map { ChartText.width($0.label, size: Self.labelSize) }.max() ?? 0
        let left = max(72, 36 + yLabelWidth)
        let plotWidth = width - left - Self.right

        // The x axis.
        let xs = (series.flatMap { $0.points.compactMap { $0?.x } } + (strip?.points.compactMap { $0?.x } ?? [])).filter(\.isFinite)
        let xMin = xs.min() ?? 0
        var xMax = xs.max() ?? 1
        if xMax <= xMin { xMax = xMin + 1 }
        let xTicks: [ChartTick] = switch xAxis {
        case .rows: ChartTick.numbers(xMin, xMax, count: 8, integral: true)
        case .times: ChartTick.times(xMin, xMax, width: plotWidth, fontSize: Self.labelSize)
        }
        let hasContext = xTicks.contains { $0.context != nil }

        // The vertical layout, top down.
        var y = 8.0
        var header = ""
        for line in titleLines {
            y += 20
            header += "<text class=\"title\" x=\"\(n(Self.textMargin))\" y=\"\(n(y))\" font-size=\"\(n(Self.titleSize))\" "
                + "font-weight=\"bold\">\(ChartText.escape(line))</text>\n"
        }
        for line in subtitleLines {
            y += 16
            header += "<text class=\"subtitle\" x=\"\(n(Self.textMargin))\" y=\"\(n(y))\" font-size=\"\(n(Self.subtitleSize))\" "
                + "fill=\"#555\">\(ChartText.escape(line))</text>\n"
        }
        let (legend, legendBottom) = self.legend(top: y + 8, left: Self.textMargin)
        let top = legendBottom + 12
        let mainBottom = top + Self.mainHeight
        let stripTop = mainBottom + Self.stripGap
        let axisBottom = strip == nil ? mainBottom : stripTop + Self.stripHeight
        let xLabelY = axisBottom + (hasContext ? 50 : 36)
        let height = xLabelY + 12

        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotWidth }
        func py(_ v: Double) -> Double { top + (yMax - v) / (yMax - yMin) * Self.mainHeight }
        func sy(_ v: Double) -> Double { stripTop + (1 - v) * Self.stripHeight }

        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height.rounded(.up)))" \
            viewBox="0 0 \(Int(width)) \(Int(height.rounded(.up)))" font-family="sans-serif" font-size="\(n(Self.labelSize))">

            """
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<defs><clipPath id=\"main-panel\"><rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(plotWidth))\" "
            + "height=\"\(n(Self.mainHeight))\"/></clipPath></defs>\n"
        s += header
        s += legend

        // Grids and the y tick labels.
        for t in yTicks {
            let v = py(t.value)
            s += "<line x1=\"\(n(left))\" y1=\"\(n(v))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(v))\" stroke=\"#e5e5e5\"/>\n"
            s += "<text x=\"\(n(left - 6))\" y=\"\(n(v + 4))\" text-anchor=\"end\">\(ChartText.escape(t.label))</text>\n"
        }
        for t in xTicks {
            let x = px(t.value)
            s += "<line x1=\"\(n(x))\" y1=\"\(n(top))\" x2=\"\(n(x))\" y2=\"\(n(mainBottom))\" stroke=\"#f0f0f0\"/>\n"
            if strip != nil {
                s += "<line x1=\"\(n(x))\" y1=\"\(n(stripTop))\" x2=\"\(n(x))\" y2=\"\(n(axisBottom))\" stroke=\"#f0f0f0\"/>\n"
            }
        }

        // The band, then the lines over it, then the markers over them.
        s += "<g clip-path=\"url(#main-panel)\">\n"
        if let band {
            for run in Self.runs(band.points) {
                if run.count == 1 {
                    let p = run[0]
                    s += "<line class=\"band\" x1=\"\(n(px(p.x)))\" y1=\"\(n(py(p.lower)))\" x2=\"\(n(px(p.x)))\" "
                        + "y2=\"\(n(py(p.upper)))\" stroke=\"\(band.color)\" stroke-opacity=\"0.3\"/>\n"
                    continue
                }
                let upper = run.map { "\(n(px($0.x))),\(n(py($0.upper)))" }
                let lower = run.reversed().map { "\(n(px($0.x))),\(n(py($0.lower)))" }
                s += "<polygon class=\"band\" fill=\"\(band.color)\" fill-opacity=\"0.18\" stroke=\"none\" "
                    + "points=\"\((upper + lower).joined(separator: " "))\"/>\n"
            }
        }
        s += "<g fill=\"none\" stroke-linejoin=\"round\">\n"
        for line in series {
            for run in Self.runs(line.points) {
                let points = run.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ")
                s += "<polyline stroke=\"\(line.color)\" stroke-width=\"\(n(line.width))\" points=\"\(points)\"/>\n"
            }
        }
        s += "</g>\n"
        if let markers {
            for p in markers.points {
                s += "<circle class=\"anomaly\" cx=\"\(n(px(p.x)))\" cy=\"\(n(py(p.y)))\" r=\"3.5\" fill=\"\(markers.color)\" "
                    + "stroke=\"white\" stroke-width=\"0.8\"><title>\(ChartText.escape(p.note))</title></circle>\n"
            }
        }
        s += "</g>\n"

        // The main panel's axes and label.
        s += "<line x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(mainBottom))\" stroke=\"#333\"/>\n"
        s += "<line x1=\"\(n(left))\" y1=\"\(n(mainBottom))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(mainBottom))\" stroke=\"#333\"/>\n"
        let yLabel = ChartText.shorten(self.yLabel, width: Self.mainHeight, size: Self.labelSize)
        s += "<text transform=\"translate(20 \(n(top + Self.mainHeight / 2))) rotate(-90)\" text-anchor=\"middle\">"
            + "\(ChartText.escape(yLabel))</text>\n"

        // The strip: the score, its threshold, its scale.
        if let strip {
            s += "<rect class=\"strip\" x=\"\(n(left))\" y=\"\(n(stripTop))\" width=\"\(n(plotWidth))\" height=\"\(n(Self.stripHeight))\" "
                + "fill=\"none\" stroke=\"#bbb\"/>\n"
            for run in Self.runs(strip.points) {
                let points = run.map { "\(n(px($0.x))),\(n(sy(min(max($0.y, 0), 1))))" }.joined(separator: " ")
                s += "<polyline class=\"score\" fill=\"none\" stroke=\"\(strip.color)\" stroke-width=\"1\" points=\"\(points)\"/>\n"
            }
            let ty = sy(strip.threshold)
            s += "<line class=\"threshold\" x1=\"\(n(left))\" y1=\"\(n(ty))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(ty))\" "
                + "stroke=\"\(strip.thresholdColor)\" stroke-width=\"1\" stroke-dasharray=\"5 3\"/>\n"
            // Named above the strip, at its right end, where no score can run over the text.
            let label = ChartText.shorten(strip.thresholdLabel, width: plotWidth / 2, size: 10)
            let labelWidth = ChartText.width(label, size: 10)
            s += "<line x1=\"\(n(left + plotWidth - labelWidth - 24))\" y1=\"\(n(stripTop - 7))\" "
                + "x2=\"\(n(left + plotWidth - labelWidth - 6))\" y2=\"\(n(stripTop - 7))\" stroke=\"\(strip.thresholdColor)\" "
                + "stroke-dasharray=\"5 3\"/>\n"
            s += "<text x=\"\(n(left + plotWidth))\" y=\"\(n(stripTop - 4))\" text-anchor=\"end\" font-size=\"10\" "
                + "fill=\"\(strip.thresholdColor)\">\(ChartText.escape(label))</text>\n"
            for v in [0.0, 1.0] {
                s += "<text x=\"\(n(left - 6))\" y=\"\(n(sy(v) + 4))\" text-anchor=\"end\">\(v == 0 ? "0" : "1")</text>\n"
            }
            let name = ChartText.shorten(strip.name, width: Self.stripHeight + Self.stripGap, size: Self.labelSize)
            s += "<text transform=\"translate(20 \(n(stripTop + Self.stripHeight / 2))) rotate(-90)\" text-anchor=\"middle\">"
                + "\(ChartText.escape(name))</text>\n"
        }

        // The x ticks and their labels, under the lowest panel; a label that would overlap the one
        // before it is left out, and none runs off the picture's edges.
        var labelsEnd = -Double.infinity, contextEnd = -Double.infinity
        for t in xTicks {
            let x = px(t.value)
            s += "<line x1=\"\(n(x))\" y1=\"\(n(axisBottom))\" x2=\"\(n(x))\" y2=\"\(n(axisBottom + 5))\" stroke=\"#333\"/>\n"
            func label(_ text: String, y: Double, end: inout Double, className: String) {
                let w = ChartText.width(text, size: Self.labelSize)
                let center = min(max(x, w / 2 + 2), width - w / 2 - 2)
                guard center - w / 2 >= end + 6 else { return }
                end = center + w / 2
                s += "<text class=\"\(className)\" x=\"\(n(center))\" y=\"\(n(y))\" text-anchor=\"middle\">\(ChartText.escape(text))</text>\n"
            }
            label(t.label, y: axisBottom + 18, end: &labelsEnd, className: "tick")
            if let context = t.context { label(context, y: axisBottom + 33, end: &contextEnd, className: "tick-context") }
        }
        let xLabel = switch xAxis {
        case .rows(let text): text
        case .times: "time (UTC)"
        }
        s += "<text x=\"\(n(left + plotWidth / 2))\" y=\"\(n(xLabelY))\" text-anchor=\"middle\" fill=\"#555\">\(ChartText.escape(xLabel))</text>\n"
        s += "</svg>\n"
        return s
    }

    /// The legend, one row or more from `top` (as many as its items need at this width): a swatch
    /// of each line, the band and the markers, with their names. Returns the SVG and its bottom.
    func legend(top: Double, left: Double) -> (String, Double) {
        enum Swatch { case line(Double), area, dot }
        var items: [(swatch: Swatch, color: String, name: String)] = series.map { (.line($0.width), $0.color, $0.name) }
        if let band { items.append((.area, band.color, band.name)) }
        if let markers { items.append((.dot, markers.color, markers.name)) }
        var s = ""
        var x = left, baseline = top + 12
        for item in items {
            let name = ChartText.shorten(item.name, width: textWidth - 40, size: Self.labelSize)
            let itemWidth = 30 + ChartText.width(name, size: Self.labelSize)
            if x > left, x + itemWidth > left + textWidth {
                x = left
                baseline += 18
            }
            let mid = baseline - 4
            switch item.swatch {
            case .line(let w):
                s += "<line x1=\"\(n(x))\" y1=\"\(n(mid))\" x2=\"\(n(x + 22))\" y2=\"\(n(mid))\" stroke=\"\(item.color)\" stroke-width=\"\(n(max(w, 2)))\"/>\n"
            case .area:
                s += "<rect x=\"\(n(x))\" y=\"\(n(mid - 6))\" width=\"22\" height=\"12\" fill=\"\(item.color)\" fill-opacity=\"0.18\"/>\n"
            case .dot:
                s += "<circle cx=\"\(n(x + 11))\" cy=\"\(n(mid))\" r=\"3.5\" fill=\"\(item.color)\"/>\n"
            }
            s += "<text x=\"\(n(x + 28))\" y=\"\(n(baseline))\">\(ChartText.escape(name))</text>\n"
            x += itemWidth + 18
        }
        return (s, baseline + 4)
    }

    /// The runs of consecutive non-nil points.
    static func runs<P>(_ points: [P?]) -> [[P]] {
        var runs: [[P]] = []
        var run: [P] = []
        for p in points {
            if let p {
                run.append(p)
            } else if !run.isEmpty {
                runs.append(run)
                run = []
            }
        }
        if !run.isEmpty { runs.append(run) }
        return runs
    }
}

/// A coordinate in the SVG: one decimal.
private func n(_ v: Double) -> String { format(v, 1) }
