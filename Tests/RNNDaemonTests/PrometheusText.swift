/// A strict reader of the Prometheus text exposition format, version 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/), written for the tests from the
/// format's description, not from rnnd's writer: whatever it accepts, Prometheus reads the same way.
///
/// Beyond the grammar (metric and label names, label values with their three escapes, floats with
/// `+Inf`, `-Inf` and `NaN`, optional timestamps, HELP text with its two escapes) it checks what
/// the format requires of a whole exposition: at most one HELP and one TYPE per family, TYPE
/// before the family's samples, each family's lines together, no series twice; and of each
/// histogram: `le` on every bucket, bounds increasing, counts cumulative and never decreasing,
/// a `+Inf` bucket equal to `_count`, and a `_sum`.
@testable import RNNTools

struct PrometheusText {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    struct Family {
        var name: String
        var type: String?
        var help: String?
        var samples: [Sample] = []
    }

    struct ParseError: Error, CustomStringConvertible {
        var line: Int
        var text: String
        var problem: String
        var description: String { "line \(line): \(problem): \(text)" }
    }

    private(set) var families: [String: Family] = [:]
    /// Family names in the order they appeared.
    private(set) var order: [String] = []

    init(_ text: String) throws {
        guard text.isEmpty || text.hasSuffix("\n") else {
            throw ParseError(line: 0, text: String(text.suffix(40)), problem: "the last line does not end with a line feed")
        }
        var current: String?
        var closed = Set<String>()
        var series = Set<String>()
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let number = index + 1
            func fail(_ problem: String) -> ParseError { ParseError(line: number, text: String(line), problem: problem) }
            if line.contains("\r") { throw fail("carriage return") }
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }

            /// Makes `name` the family being read; a family may not come back once left.
            func enter(_ name: String) throws {
                guard current != name else { return }
                if let current { closed.insert(current) }
                guard !closed.contains(name) else { throw fail("the lines of family \(name) are not together") }
                current = name
                if families[name] == nil {
                    families[name] = Family(name: name)
                    order.append(name)
                }
            }

            if line.hasPrefix("#") {
                // `#`, blanks, a token: HELP or TYPE make it a directive, anything else a comment.
                var rest = line.dropFirst().drop { $0 == " " || $0 == "\t" }
                let keyword = rest.prefix { $0 != " " && $0 != "\t" }
                guard keyword == "HELP" || keyword == "TYPE" else { continue }
                rest = rest.dropFirst(keyword.count).drop { $0 == " " || $0 == "\t" }
                let name = String(rest.prefix { $0 != " " && $0 != "\t" })
                guard Self.isMetricName(name) else { throw fail("no valid metric name after \(keyword)") }
                rest = rest.dropFirst(name.count).drop { $0 == " " || $0 == "\t" }
                try enter(name)
                if keyword == "HELP" {
                    guard families[name]?.help == nil else { throw fail("a second HELP for \(name)") }
                    guard let help = Self.unescapeHelp(String(rest)) else { throw fail("bad escape in HELP") }
                    families[name]?.help = help
                } else {
                    let type = rest.trimmingSuffix { $0 == " " || $0 == "\t" }
                    guard families[name]?.type == nil else { throw fail("a second TYPE for \(name)") }
                    guard families[name]?.samples.isEmpty == true else { throw fail("TYPE after samples of \(name)") }
                    guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(type) else { throw fail("unknown type '\(type)'") }
                    families[name]?.type = String(type)
                }
                continue
            }

            let sample: Sample
            do { sample = try Self.parseSample(line) } catch { throw fail(error.problem) }
            let family = familyName(of: sample.name)
            try enter(family)
            let key = sample.name + "{" + sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
            guard series.insert(key).inserted else { throw fail("the series \(key) appears twice") }
            families[family]?.samples.append(sample)
        }
        for family in families.values where family.type == "histogram" {
            try Self.checkHistogram(family)
        }
    }

    /// The family a sample belongs to: its own name, or for `_bucket`, `_sum`, `_count` the
    /// histogram (or summary) they are part of.
    private func familyName(of name: String) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if let type = families[base]?.type, type == "histogram" || (type == "summary" && suffix != "_bucket") { return base }
        }
        return name
    }

    /// The value of the sample `name` with exactly `labels`, if there is one.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        families.values.lazy.flatMap(\.samples).first { $0.name == name && $0.labels == labels }?.value
    }

    // MARK: - Grammar

    static func isMetricName<S: StringProtocol>(_ s: S) -> Bool {
        guard let first = s.unicodeScalars.first, first.isASCIILetter || first == "_" || first == ":" else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == ":" }
    }

    static func isLabelName<S: StringProtocol>(_ s: S) -> Bool {
        guard let first = s.unicodeScalars.first, first.isASCIILetter || first == "_" else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" } && !s.hasPrefix("__")
    }

    /// A float as the format writes it: decimal (Go's ParseFloat), `+Inf`, `-Inf` or `NaN`.
    static func parseFloat<S: StringProtocol>(_ s: S) -> Double? {
        switch s {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: break
        }
        // [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?
        var scalars = Array(s.unicodeScalars)[...]
        if let sign = scalars.first, sign == "+" || sign == "-" { scalars = scalars.dropFirst() }
        let mantissa = scalars.prefix { $0 != "e" && $0 != "E" }
        let exponent = scalars.dropFirst(mantissa.count)
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, !mantissa.isEmpty, mantissa != ["."],
            parts.allSatisfy({ $0.allSatisfy(\.isASCIIDigit) })
        else { return nil }
        if !exponent.isEmpty {
            var digits = exponent.dropFirst()
            if let sign = digits.first, sign == "+" || sign == "-" { digits = digits.dropFirst() }
            guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else { return nil }
        }
        return Double(String(s))
    }

    struct Problem: Error {
        var problem: String
    }

    /// `name{label="value",...} value [timestamp]`.
    static func parseSample<S: StringProtocol>(_ line: S) throws(Problem) -> Sample {
        let chars = Array(line.unicodeScalars)
        var i = 0
        func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" }
        while i < chars.count, chars[i] != "{", !isBlank(chars[i]) { i += 1 }
        let name = String(String.UnicodeScalarView(chars[0..<i]))
        guard isMetricName(name) else { throw Problem(problem: "bad metric name '\(name)'") }
        var labels: [String: String] = [:]
        if i < chars.count, chars[i] == "{" {
            i += 1
            while true {
                if i < chars.count, chars[i] == "}" { i += 1; break }
                let start = i
                while i < chars.count, chars[i] != "=" { i += 1 }
                let label = String(String.UnicodeScalarView(chars[start..<i]))
                guard isLabelName(label) else { throw Problem(problem: "bad label name '\(label)'") }
                guard i + 1 < chars.count, chars[i + 1] == "\"" else { throw Problem(problem: "a label value must be quoted") }
                i += 2
                var value = ""
                while true {
                    guard i < chars.count else { throw Problem(problem: "unterminated label value") }
                    let c = chars[i]
                    if c == "\"" { i += 1; break }
                    if c == "\\" {
                        guard i + 1 < chars.count else { throw Problem(problem: "unterminated escape") }
                        switch chars[i + 1] {
                        case "\\": value += "\\"
                        case "\"": value += "\""
                        case "n": value += "\n"
                        default: throw Problem(problem: "bad escape \\\(chars[i + 1]) in a label value")
                        }
                        i += 2
                        continue
                    }
                    if c == "\n" { throw Problem(problem: "a raw line feed in a label value") }
                    value.unicodeScalars.append(c)
                    i += 1
                }
                guard labels.updateValue(value, forKey: label) == nil else { throw Problem(problem: "label \(label) twice") }
                guard i < chars.count else { throw Problem(problem: "unterminated label set") }
                if chars[i] == "," { i += 1; continue }
                guard chars[i] == "}" else { throw Problem(problem: "expected ',' or '}' after a label") }
            }
        }
        let rest = String(String.UnicodeScalarView(chars[i...]))
        guard let first = rest.unicodeScalars.first, isBlank(first) else { throw Problem(problem: "no blank before the value") }
        let fields = rest.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count == 1 || fields.count == 2 else { throw Problem(problem: "expected a value and at most a timestamp") }
        guard let value = parseFloat(fields[0]) else { throw Problem(problem: "bad value '\(fields[0])'") }
        if fields.count == 2 {
            var digits = Substring(fields[1])
            if digits.hasPrefix("-") { digits = digits.dropFirst() }
            guard !digits.isEmpty, digits.unicodeScalars.allSatisfy(\.isASCIIDigit), Int64(fields[1]) != nil else {
                throw Problem(problem: "bad timestamp '\(fields[1])'")
            }
        }
        return Sample(name: name, labels: labels, value: value)
    }

    /// HELP text: `\\` and `\n` are the only escapes.
    static func unescapeHelp(_ text: String) -> String? {
        var out = "", escaping = false
        for c in text.unicodeScalars {
            if escaping {
                switch c {
                case "\\": out += "\\"
                case "n": out += "\n"
                default: return nil
                }
                escaping = false
            } else if c == "\\" {
                escaping = true
            } else {
                out.unicodeScalars.append(c)
            }
        }
        return escaping ? nil : out
    }

    // MARK: - Histograms

    static func checkHistogram(_ family: Family) throws {
        func fail(_ problem: String) -> ParseError { ParseError(line: 0, text: family.name, problem: problem) }
        let name = family.name
        var groups: [[String: String]: (bounds: [Double], counts: [Double], sum: Double?, count: Double?)] = [:]
        for sample in family.samples {
            var key = sample.labels
            switch sample.name {
            case name + "_bucket":
                guard let le = key.removeValue(forKey: "le"), let bound = parseFloat(le), !bound.isNaN else {
                    throw fail("a bucket without a valid le: \(sample.labels)")
                }
                guard sample.value >= 0, sample.value == sample.value.rounded() else { throw fail("bucket count \(sample.value)") }
                groups[key, default: ([], [], nil, nil)].bounds.append(bound)
                groups[key, default: ([], [], nil, nil)].counts.append(sample.value)
            case name + "_sum":
                guard key["le"] == nil else { throw fail("le on _sum") }
                groups[key, default: ([], [], nil, nil)].sum = sample.value
            case name + "_count":
                guard key["le"] == nil else { throw fail("le on _count") }
                groups[key, default: ([], [], nil, nil)].count = sample.value
            default:
                throw fail("sample \(sample.name) in histogram \(name)")
            }
        }
        guard !groups.isEmpty else { throw fail("a histogram without samples") }
        for (labels, g) in groups {
            guard zip(g.bounds, g.bounds.dropFirst()).allSatisfy({ $0 < $1 }) else { throw fail("\(labels): le not increasing: \(g.bounds)") }
            guard zip(g.counts, g.counts.dropFirst()).allSatisfy({ $0 <= $1 }) else { throw fail("\(labels): buckets not cumulative: \(g.counts)") }
            guard g.bounds.last == .infinity else { throw fail("\(labels): no le=\"+Inf\" bucket") }
            guard let count = g.count else { throw fail("\(labels): no _count") }
            guard g.counts.last == count else { throw fail("\(labels): +Inf bucket \(g.counts.last ?? -1) ≠ _count \(count)") }
            guard g.sum != nil else { throw fail("\(labels): no _sum") }
        }
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension Substring {
    fileprivate func trimmingSuffix(while drop: (Character) -> Bool) -> Substring {
        var end = endIndex
        while end > startIndex, drop(self[index(before: end)]) { end = index(before: end) }
        return self[startIndex..<end]
    }
}
