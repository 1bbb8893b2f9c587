import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import RNNCore
@testable import RNNTools
import Testing

/// `rnnd replay --plot`: the band, the anomalies marked at the threshold, the time axis, a header
/// that fits, and an SVG that is XML. Every chart is read back with XMLParser, not by string
/// search, so that a test fails on a malformed file before it looks for anything in it.
@Suite(.timeLimit(.minutes(1)))
struct ReplayPlotTests {
    /// An SVG parsed: every element with its attributes and its text, in document order.
    struct Element {
        var name: String
        var attributes: [String: String]
        var text = ""
    }

    final class Collector: NSObject, XMLParserDelegate {
        var elements: [Element] = []
        var open: [Int] = []

        func parser(
            _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            open.append(elements.count)
            elements.append(Element(name: name, attributes: attributes))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if let last = open.last { elements[last].text += string }
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            open.removeLast()
        }
    }

    /// The chart's elements; fails the test when it is not well-formed XML.
    static func parse(_ svg: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [Element] {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        let parsed = parser.parse()
        try #require(parsed, "not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
        #expect(collector.elements.first?.name == "svg", sourceLocation: sourceLocation)
        return collector.elements
    }

    static func elements(_ all: [Element], _ name: String, class className: String) -> [Element] {
        all.filter { $0.name == name && $0.attributes["class"] == className }
    }

    /// A wave with three spikes after the anomaly score's warm-ups (the stream's and each target's): at rows 350, 375 and 400.
    static let spikes = [350, 375, 400]
    static func spiky(rows: Int = 440) -> CSVTable {
        ReplayTests.csv(["level"], rows: rows) { r, _ in
            10 + 3 * sin(2 * Double.pi * Double(r) / 24) + (spikes.contains(r) ? 40 : 0)
        }
    }

    /// Replays `table` with the tests' small model and returns the replayer and every sample's
    /// anomaly score, by data row, as the predictions file has it.
    static func replay(_ table: CSVTable) throws -> (Replayer, [Int: Double]) {
        let replayer = try Replayer(table: table, model: ReplayTests.configuration(), settings: ReplaySettings())
        var scores: [Int: Double] = [:]
        _ = replayer.run(prediction: { p in
            if p.horizon == 1, let a = p.anomaly { scores[p.row] = a }
        })
        return (replayer, scores)
    }

    @Test(.timeLimit(.minutes(1))) func theBandIsShadedAndBrokenWhereThereIsNone() throws {
        let (replayer, _) = try Self.replay(Self.spiky())
        let range = 0..<replayer.scoredRows.count
        let all = try Self.parse(replayer.plot(target: 0, range: range))
        let polygons = Self.elements(all, "polygon", class: "band")
        // The runs of samples with a band, from the trace the plot draws from.
        var runs: [Int] = []
        var previous = false
        for p in range {
            let has = !replayer.trace.lower[p].isNaN
            if has { if previous { runs[runs.count - 1] += 1 } else { runs.append(1) } }
            previous = has
        }
        #expect(replayer.trace.lower[0].isNaN && replayer.trace.lower[range.count - 1].isFinite, "no band at first, one at the end")
        #expect(polygons.count == runs.filter { $0 > 1 }.count && !polygons.isEmpty)
        // Each polygon goes along the upper bounds and back along the lower: two points a sample.
        let sizes = polygons.map { ($0.attributes["points"] ?? "").split(separator: " ").count }
        #expect(sizes == runs.filter { $0 > 1 }.map { 2 * $0 }, "\(sizes) for runs \(runs)")
        #expect(polygons.allSatisfy { $0.attributes["fill-opacity"].flatMap(Double.init).map { $0 < 0.5 } == true }, "translucent")
        // Drawn before (behind) the lines.
        let firstPolygon = try #require(all.firstIndex { $0.name == "polygon" })
        let firstLine = try #require(all.firstIndex { $0.name == "polyline" })
        #expect(firstPolygon < firstLine)

        // Without bands (coverage 0): no band, no markers, no strip.
        var model = ReplayTests.configuration()
        model.coverage = 0
        let plain = try Replayer(table: Self.spiky(), model: model, settings: ReplaySettings())
        _ = plain.run()
        let none = try Self.parse(plain.plot(target: 0, range: range))
        #expect(!none.contains { $0.name == "polygon" || $0.attributes["class"] == "strip" || $0.attributes["class"] == "anomaly" })
    }

    /// The tooltip of each anomaly marker: the `title` element inside its `circle`.
    static func markerNotes(_ all: [Element]) -> [String] {
        all.indices.filter { all[$0].name == "circle" && all[$0].attributes["class"] == "anomaly" }.map { i in
            i + 1 < all.count && all[i + 1].name == "title" ? all[i + 1].text : ""
        }
    }

    /// The row of each marker, read from its tooltip: `<time>, data row N: ...`.
    static func markedRows(_ all: [Element]) throws -> [Int] {
        try markerNotes(all).map { note in
            let after = try #require(note.range(of: "data row "), "\(note)").upperBound
            return try #require(Int(note[after...].prefix { $0.isNumber }))
        }
    }

    @Test(.timeLimit(.minutes(1))) func markersAreExactlyTheSamplesAtOrAboveTheThreshold() throws {
        let (replayer, scores) = try Self.replay(Self.spiky())
        let range = 0..<replayer.scoredRows.count
        // One alert per incident: a spike alerts unless it falls in the quiet period of another.
        #expect(Self.spikes.contains { (scores[$0] ?? 0) >= 0.5 }, "\(Self.spikes.map { scores[$0] ?? -1 })")
        // A threshold equal to a score that occurs marks that sample ("at or above").
        let positive = Set(scores.values.filter { $0 > 0 }).sorted()
        try #require(positive.count >= 1)
        let middle = positive[positive.count / 2]
        for threshold in [middle, 0.5, 1, 0, Replayer.defaultAnomalyThreshold] {
            let svg = replayer.plot(target: 0, range: range, threshold: threshold)
            let all = try Self.parse(svg)
            let expected = scores.filter { $0.value >= threshold }.keys.sorted()
            #expect(try Self.markedRows(all) == expected, "threshold \(threshold)")
            // The subtitle counts them, the strip draws the threshold.
            let count = expected.count
            let phrase = count == 0 ? "no anomaly at score ≥ " : "\(count) \(count == 1 ? "anomaly" : "anomalies") at score ≥ "
            #expect(Self.elements(all, "text", class: "subtitle").contains { $0.text.contains(phrase) }, "threshold \(threshold)")
            #expect(Self.elements(all, "line", class: "threshold").count == 1)
        }
        // Markers sit on the actual line: at the actual value of their sample, which their note tells.
        let all = try Self.parse(replayer.plot(target: 0, range: range, threshold: 0.5))
        let note = try #require(Self.markerNotes(all).first { $0.contains("data row 350:") })
        #expect(note.hasPrefix("2016-07-15T14:00:00Z, data row 350: level 48.5, anomaly score "), "\(note)")  // 10 + 3 sin(2π·350/24) + 40
        #expect(Self.elements(all, "polyline", class: "score").count >= 1)
    }

    @Test(.timeLimit(.minutes(1))) func theXAxisTellsTheTimeWhenTheFileHasOne() throws {
        let (replayer, _) = try Self.replay(Self.spiky())
        // Ten days of hourly samples: days.
        let days = try Self.parse(replayer.plot(target: 0, range: 0..<replayer.scoredRows.count))
        let labels = Self.elements(days, "text", class: "tick").map(\.text)
        #expect(labels.count >= 4 && labels.allSatisfy { $0.wholeMatch(of: /(Jul) \d\d/) != nil }, "\(labels)")
        #expect(Self.elements(days, "text", class: "tick-context").map(\.text) == ["2016"])
        #expect(days.contains { $0.name == "text" && $0.text == "time (UTC)" })
        // A day and a half: times of day, with the date at the start and where the day changes.
        // (Data rows 24 to 56: from midnight on Jul 02, a tick at every step within a day.)
        let hours = try Self.parse(replayer.plot(target: 0, range: 24..<57))
        let times = Self.elements(hours, "text", class: "tick").map(\.text)
        #expect(times.count >= 4 && times.allSatisfy { $0.wholeMatch(of: /\d\d:\d\d/) != nil }, "\(times)")
        #expect(times.first == "00:00")
        #expect(Self.elements(hours, "text", class: "tick-context").map(\.text) == ["Jul 02 2016", "Jul 03"])

        // No time axis: data rows.
        var text = "x\n"
        for r in 0..<240 { text += "\(sin(Double(r) / 5))\n" }
        let table = try CSVTable(bytes: Array(text.utf8), file: "rows.csv")
        let (rows, _) = try Self.replay(table)
        let chart = try Self.parse(rows.plot(target: 0, range: 100..<239))
        let numbers = Self.elements(chart, "text", class: "tick").map(\.text)
        #expect(numbers.count >= 4 && numbers.allSatisfy { Int($0).map { (100...238).contains($0) } == true }, "\(numbers)")
        #expect(Self.elements(chart, "text", class: "tick-context").isEmpty)
        #expect(chart.contains { $0.name == "text" && $0.text == "data row" })
        #expect(Self.elements(chart, "text", class: "subtitle").first?.text == "data rows 100 to 238 (139 samples)")
    }

    /// Spans from 2020-07-01T00:00:00Z, and the first two labels a 900 px axis shows for them.
    static let spans: [(span: Double, starts: [String])] = [
        (7_200, ["00:00", "00:15"]), (777_600, ["Jul 01", "Jul 02"]),
        (17_280_000, ["Jul", "Aug"]), (946_080_000, ["2025", "2030"]),
    ]

    @Test(.timeLimit(.minutes(1)), arguments: Self.spans)
    func timeTicksAreRoundForTheSpan(span: Double, starts: [String]) {
        let start = 1_593_561_600.0  // 2020-07-01T00:00:00Z
        let ticks = ChartTick.times(start, start + span, width: 900, fontSize: 12)
        #expect(Array(ticks.prefix(2).map(\.label)) == starts, "\(ticks.map(\.label))")
        #expect(ticks.count >= 3 && ticks.count <= 12, "\(ticks.map(\.label))")
        #expect(ticks.allSatisfy { $0.value >= start && $0.value <= start + span })
        #expect(zip(ticks.dropFirst(), ticks).allSatisfy { $0.value > $1.value })
        #expect(ticks.first?.context != nil || span > 86_400 * 365 * 2, "the first tick says the date or year")
    }

    @Test(.timeLimit(.minutes(1))) func theHeaderFitsTheWidth() throws {
        // A long path and a long target name, one with spaces and one without, and markup in it.
        let long = String(repeating: "sensor_", count: 40) + "temperature <&\"> \u{1}"
        let spaced = Array(repeating: "outside air temperature", count: 12).joined(separator: " ")
        var text = "time,\"" + long.replacingOccurrences(of: "\"", with: "\"\"") + "\",\(spaced)\n"
        for r in 0..<160 { text += "\(Timestamp.iso8601(1_467_331_200 + 3600 * Double(r))),\(r % 13),\(r % 7)\n" }
        let file = "/var/lib/" + String(repeating: "very-long-directory-name/", count: 10) + String(repeating: "x", count: 200) + ".csv"
        let table = try CSVTable(bytes: Array(text.utf8), file: file)
        try #require(table.columns.map(\.name).contains(long))
        let replayer = try Replayer(table: table, model: ReplayTests.configuration(), settings: ReplaySettings())
        _ = replayer.run()
        let chart = SVGChart(title: [], subtitle: [], xAxis: .times, yLabel: "", series: [])
        for j in 0..<2 {
            let all = try Self.parse(replayer.plot(target: j, range: 0..<159))
            let titles = Self.elements(all, "text", class: "title"), subtitles = Self.elements(all, "text", class: "subtitle")
            #expect(!titles.isEmpty && subtitles.count >= 3)
            for t in titles {
                #expect(ChartText.width(t.text, size: SVGChart.titleSize, bold: true) <= chart.textWidth, "\(t.text)")
            }
            for t in subtitles { #expect(ChartText.width(t.text, size: SVGChart.subtitleSize) <= chart.textWidth, "\(t.text)") }
            // Every text starts and ends inside the picture, by the same estimate.
            let width = try #require(all.first.flatMap { $0.attributes["width"] }.flatMap(Double.init))
            for t in all where t.name == "text" && t.attributes["transform"] == nil {
                let x = try #require(t.attributes["x"].flatMap(Double.init))
                let w = ChartText.width(t.text, size: Double(t.attributes["font-size"] ?? "12") ?? 12, bold: t.attributes["font-weight"] == "bold")
                let (from, to) = switch t.attributes["text-anchor"] {
                case "middle": (x - w / 2, x + w / 2)
                case "end": (x - w, x)
                default: (x, x + w)
                }
                #expect(from >= 0 && to <= width, "\(t.text) from \(from) to \(to)")
            }
            // The names are there, shortened in the middle where they must be.
            #expect(subtitles.contains { $0.text.contains("data rows 0 to 158") })
            #expect(titles.first?.text.hasPrefix("xxxx") == true, "\(titles.map(\.text))")
        }
        // Wrapping itself: phrases stay whole while they fit, and nothing is lost in between.
        let lines = ChartText.wrap(["alpha beta", "gamma", "delta epsilon"], width: ChartText.width("alpha beta · gamma", size: 11), size: 11)
        #expect(lines == ["alpha beta · gamma", "delta epsilon"])
        #expect(ChartText.shorten("abcdefghij", width: ChartText.width("abc…hij", size: 11) + 0.01, size: 11) == "abc…hij")
        #expect(ChartText.wrap(Array(repeating: "word", count: 400), width: 100, size: 11).count == 3)
    }
}
