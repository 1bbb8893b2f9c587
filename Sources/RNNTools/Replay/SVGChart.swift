// The plot of `rnnd replay --plot` (docs/replay.md).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A line chart as hand-written SVG: axes with tick labels, a legend and a title.
struct SVGChart {
    struct Series {
        var name: String
        var color: String
        /// nil breaks the line.
        var points: [(Double, Double)?]
        var width: Double
    }

    var title: String
    var subtitle: String
    var xLabel: String
    var yLabel: String
    var series: [Series]
    var size = (width: 1000.0, height: 460.0)

    func render() -> String {
        let left = 80.0, right = 20.0, top = 84.0, bottom = 52.0
        let plotWidth = size.width - left - right, plotHeight = size.height - top - bottom
        let all = series.flatMap { $0.points.compactMap { $0 } }
        var xMin = all.map(\.0).min() ?? 0, xMax = all.map(\.0).max() ?? 1
        var yMin = all.map(\.1).min() ?? 0, yMax = all.map(\.1).max() ?? 1
        if xMax <= xMin { xMax = xMin + 1 }
        if yMax <= yMin { yMin -= 1; yMax += 1 }
        let pad = (yMax - yMin) * 0.04
        yMin -= pad
        yMax += pad
        let xTicks = Self.ticks(xMin, xMax, count: 8), yTicks = Self.ticks(yMin, yMax, count: 6)
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotWidth }
        func py(_ y: Double) -> Double { top + (yMax - y) / (yMax - yMin) * plotHeight }
        func n(_ v: Double) -> String { format(v, 1) }

        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(size.width))" height="\(Int(size.height))" \
            viewBox="0 0 \(Int(size.width)) \(Int(size.height))" font-family="sans-serif" font-size="12">

            """
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(n(left))\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(escape(title))</text>\n"
        for (k, line) in subtitle.split(separator: "\n").enumerated() {
            s += "<text x=\"\(n(left))\" y=\"\(40 + 15 * k)\" font-size=\"11\" fill=\"#555\">\(escape(String(line)))</text>\n"
        }
        // Grid and tick labels.
        for t in yTicks {
            let y = py(t.value)
            s += "<line x1=\"\(n(left))\" y1=\"\(n(y))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(y))\" stroke=\"#e5e5e5\"/>\n"
            s += "<text x=\"\(n(left - 6))\" y=\"\(n(y + 4))\" text-anchor=\"end\">\(escape(t.label))</text>\n"
        }
        for t in xTicks {
            let x = px(t.value)
            s += "<line x1=\"\(n(x))\" y1=\"\(n(top))\" x2=\"\(n(x))\" y2=\"\(n(top + plotHeight))\" stroke=\"#f0f0f0\"/>\n"
            s += "<line x1=\"\(n(x))\" y1=\"\(n(top + plotHeight))\" x2=\"\(n(x))\" y2=\"\(n(top + plotHeight + 5))\" stroke=\"#333\"/>\n"
            s += "<text x=\"\(n(x))\" y=\"\(n(top + plotHeight + 18))\" text-anchor=\"middle\">\(escape(t.label))</text>\n"
        }
        // Axes.
        s += "<line x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(top + plotHeight))\" stroke=\"#333\"/>\n"
        s += "<line x1=\"\(n(left))\" y1=\"\(n(top + plotHeight))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(top + plotHeight))\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(n(left + plotWidth / 2))\" y=\"\(n(size.height - 10))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        s += "<text transform=\"translate(18 \(n(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        // The lines, broken where a point is missing.
        s += "<g fill=\"none\" stroke-linejoin=\"round\">\n"
        for line in series {
            var runs: [[(Double, Double)]] = [[]]
            for p in line.points {
                if let p { runs[runs.count - 1].append(p) } else if !runs[runs.count - 1].isEmpty { runs.append([]) }
            }
            for run in runs where !run.isEmpty {
                let points = run.map { "\(n(px($0.0))),\(n(py($0.1)))" }.joined(separator: " ")
                s += "<polyline stroke=\"\(line.color)\" stroke-width=\"\(line.width)\" points=\"\(points)\"/>\n"
            }
        }
        s += "</g>\n"
        // The legend, top right above the plot.
        var lx = left + plotWidth
        for line in series.reversed() {
            lx -= 34 + 7.0 * Double(line.name.count) + 16
            s += "<line x1=\"\(n(lx))\" y1=\"18\" x2=\"\(n(lx + 24))\" y2=\"18\" stroke=\"\(line.color)\" stroke-width=\"2.5\"/>\n"
            s += "<text x=\"\(n(lx + 30))\" y=\"22\">\(escape(line.name))</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    /// Round tick values (1, 2 or 5 times a power of ten) covering [low, high], about `count` of them.
    static func ticks(_ low: Double, _ high: Double, count: Int) -> [(value: Double, label: String)] {
        let raw = (high - low) / Double(max(count, 1))
        let power = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? 10 * power
        var v = (low / step).rounded(.up) * step
        var result: [(Double, String)] = []
        while v <= high + step * 1e-9, result.count < 50 {
            let value = abs(v) < step * 1e-9 ? 0 : v
            result.append((value, formatG(value, 6)))
            v += step
        }
        return result
    }

    func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
