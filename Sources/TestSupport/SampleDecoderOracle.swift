import Foundation

// An oracle for the sample decoder (Sources/RNNDaemon/WireProtocol.swift), written from
// docs/protocol.md and not from the decoder: the properties any answer must have, the binary
// layout re-derived from the protocol's table, and Foundation's JSONSerialization as a second,
// independent JSON parser. Both the Swift Testing replay of the fuzzing corpus and the
// libFuzzer harness (fuzz/, scripts/fuzz) call it; it depends on Foundation only, so the
// harness compiles it together with WireProtocol.swift into one module.

/// What an answer of the sample decoder must agree with (docs/security.md, "Fuzzing").
public enum SampleDecoderOracle {
    /// An accepted sample as the decoder gave it: NaN for a missing value.
    public struct Sample: Equatable, Sendable {
        public var values: [Float]
        public var timestamp: Double?

        public init(values: [Float], timestamp: Double?) {
            self.values = values
            self.timestamp = timestamp
        }

        /// Equal values (a missing one, NaN, equal to another missing one) and times.
        public static func == (a: Sample, b: Sample) -> Bool {
            a.timestamp == b.timestamp && a.values.count == b.values.count
                && zip(a.values, b.values).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
        }
    }

    /// The reasons docs/protocol.md names for a refused payload.
    public static let payloadReasons: Set<String> = [
        "empty_payload", "malformed_json", "missing_value", "value_not_numeric", "too_many_values",
        "non_finite_value", "bad_timestamp", "malformed_binary",
    ]

    /// Everything wrong with the decoder's `answer` for `payload` (a sample, or the name of a
    /// refusal) when it may take at most `maxValues` values; empty when nothing is.
    ///
    /// - Any sample has 1 ... `maxValues` values, each finite or missing (NaN), and a finite
    ///   timestamp or none; any refusal is one of ``payloadReasons``.
    /// - Binary v1 (first byte 0x01): exactly the sample or the refusal the layout table says.
    /// - JSON: where JSONSerialization reads an object whose `"v"` is a number or a non-empty
    ///   array of at most `maxValues` numbers, each within float32's range once read as a
    ///   float64, or nulls (missing), and whose `"t"` is absent, null or a finite number, the
    ///   decoder takes it with the same values (float64, then rounded to float32; NaN for a
    ///   null) and time; otherwise it refuses it. A NaN in a binary sample is missing too.
    ///   The differences docs/security.md lists are left out: duplicate top-level keys, keys
    ///   with escapes or a leading U+FEFF, nesting deeper than 32, trailing commas, payloads
    ///   that are not UTF-8 from their first byte, and numbers Foundation cannot represent in
    ///   members the decoder ignores.
    public static func violations(payload: [UInt8], answer: Result<Sample, ReasonName>, maxValues: Int) -> [String] {
        var found: [String] = []
        switch answer {
        case .success(let sample):
            if sample.values.isEmpty || sample.values.count > maxValues {
                found.append("accepted \(sample.values.count) values; the limit is 1 ... \(maxValues)")
            }
            if let bad = sample.values.first(where: { $0.isInfinite }) { found.append("accepted an infinite value \(bad)") }
            if let t = sample.timestamp, !t.isFinite { found.append("accepted a non-finite timestamp \(t)") }
        case .failure(let reason):
            if !payloadReasons.contains(reason.name) { found.append("refused with an undocumented reason \(reason.name)") }
        }
        let expected = payload.first == 0x01
            ? binaryExpectation(payload, maxValues: maxValues)
            : jsonExpectation(payload, maxValues: maxValues)
        switch (expected, answer) {
        case (.accept(let want, let exact), .success(let got)):
            if exact ? got != want : !close(got, want) { found.append("decoded \(got), expected \(want)") }
        case (.accept(let want, _), .failure(let reason)):
            found.append("refused (\(reason.name)) what should be \(want)")
        case (.refuse(let want), .success(let got)):
            found.append("accepted \(got) where \(want.map { "\($0)" } ?? "a refusal") was expected")
        case (.refuse(let want?), .failure(let reason)) where want != reason.name:
            found.append("refused as \(reason.name), expected \(want)")
        case (.refuse, .failure), (.unspecified, _):
            break
        }
        return found
    }

    /// A refusal's name (`SampleRejection.rawValue`), kept apart from `String` so that a
    /// `Result` can carry it.
    public struct ReasonName: Error, Equatable, Sendable {
        public var name: String
        public init(_ name: String) { self.name = name }
    }

    enum Expectation {
        /// The sample; `exact` is false for JSON, whose numbers Foundation does not always
        /// convert to the nearest float64 (a long mantissa or a large exponent can be a few
        /// float64 steps off, found by the fuzzer): then each value may be one float32 step
        /// away and the time 1e-12 of itself. The decoder's conversion is glibc's strtod.
        case accept(Sample, exact: Bool)
        /// A refusal, with its reason when the protocol fixes it.
        case refuse(String?)
        /// A documented difference: either answer is right.
        case unspecified
    }

    // MARK: - Binary v1, from docs/protocol.md's table

    static func binaryExpectation(_ p: [UInt8], maxValues: Int) -> Expectation {
        guard p.count >= 4, p[1] == 0 || p[1] == 1 else { return .refuse("malformed_binary") }
        let count = Int(p[2]) + 256 * Int(p[3])
        let header = p[1] == 1 ? 12 : 4
        if count == 0 { return .refuse("value_not_numeric") }
        if count > maxValues { return .refuse("too_many_values") }
        guard p.count == header + 4 * count else { return .refuse("malformed_binary") }
        func little(_ at: Int, _ n: Int) -> UInt64 {
            (0..<n).reduce(UInt64(0)) { $0 | UInt64(p[at + $1]) << (8 * UInt64($1)) }
        }
        var timestamp: Double?
        if header == 12 {
            let t = Double(bitPattern: little(4, 8))
            guard t.isFinite else { return .refuse("bad_timestamp") }
            timestamp = t
        }
        var values: [Float] = []
        for i in 0..<count {
            let v = Float(bitPattern: UInt32(little(header + 4 * i, 4)))
            guard !v.isInfinite else { return .refuse("non_finite_value") }
            values.append(v)  // NaN: missing
        }
        return .accept(Sample(values: values, timestamp: timestamp), exact: true)
    }

    /// Equal but for the last float32 step of each value and a relative 1e-12 of the time.
    static func close(_ a: Sample, _ b: Sample) -> Bool {
        guard a.values.count == b.values.count, (a.timestamp == nil) == (b.timestamp == nil) else { return false }
        for (x, y) in zip(a.values, b.values) where x != y && x.nextUp != y && x.nextDown != y && !(x.isNaN && y.isNaN) { return false }
        if let s = a.timestamp, let t = b.timestamp, abs(s - t) > 1e-12 * max(abs(s), abs(t)) { return false }
        return true
    }

    // MARK: - JSON, against Foundation

    static func jsonExpectation(_ payload: [UInt8], maxValues: Int) -> Expectation {
        if payload.isEmpty { return .refuse("empty_payload") }
        let shape = Shape(payload)
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(payload))
        } catch {
            // Foundation refuses a number it cannot hold anywhere in the text; the decoder only
            // checks the grammar of the members it ignores.
            if "\(error)".contains("not representable") { return .unspecified }
            // Either not JSON, or JSON that this Foundation cannot take (the decoder may be right).
            return shape.isPlainUTF8JSON ? .refuse(nil) : .unspecified
        }
        if !shape.isPlainUTF8JSON || shape.hasDocumentedDifference { return .unspecified }
        guard let object = parsed as? [String: Any] else { return .refuse("malformed_json") }
        var timestamp: Double?
        var timestampIsGood = true
        switch object["t"] {
        case nil, is NSNull: break
        case let t?:
            if let x = number(t), x.isFinite { timestamp = x } else { timestampIsGood = false }
        }
        // The decoder reads the members in order and stops at the first fault it meets, so a
        // bad time may be what it names instead.
        func refuse(_ reason: String) -> Expectation { .refuse(timestampIsGood ? reason : nil) }
        guard let v = object["v"] else { return refuse("missing_value") }

        var values: [Float] = []
        if let array = v as? [Any] {
            for element in array {
                if element is NSNull {
                    values.append(.nan)  // missing
                    continue
                }
                guard let x = number(element) else { return .refuse(nil) }
                values.append(Float(x))
            }
            if values.isEmpty { return refuse("value_not_numeric") }
        } else if let x = number(v) {
            values = [Float(x)]
        } else {
            return refuse("value_not_numeric")
        }
        if values.count > maxValues { return .refuse(nil) }  // too_many_values, or an earlier fault
        if values.contains(where: { $0.isInfinite }) { return .refuse(nil) }

        if !timestampIsGood { return .refuse(nil) }
        return .accept(Sample(values: values, timestamp: timestamp), exact: false)
    }

    /// A JSON number's value as a float64; nil for anything else (booleans come back from
    /// Foundation as numbers too, of their own class).
    static func number(_ value: Any) -> Double? {
        guard let n = value as? NSNumber, !"\(type(of: value))".contains("Boolean") else { return nil }
        return n.doubleValue
    }

    /// What the decoder does on purpose differently from Foundation, found by a scan of the
    /// text that follows strings and nesting.
    struct Shape {
        /// Starts as UTF-8 JSON must (`{` or white space), holds no NUL and no byte-order mark.
        var isPlainUTF8JSON = true
        var maxDepth = 0
        var trailingComma = false
        var duplicateKey = false
        /// A top-level key with an escape, or one that starts with U+FEFF, which Foundation
        /// drops from the start of a string: the decoder matches keys byte for byte.
        var keyReadDifferently = false

        var hasDocumentedDifference: Bool { maxDepth > 32 || trailingComma || duplicateKey || keyReadDifferently }

        init(_ p: [UInt8]) {
            let space: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
            if let first = p.first, first != UInt8(ascii: "{") && !space.contains(first) { isPlainUTF8JSON = false }
            if p.contains(0) { isPlainUTF8JSON = false }
            var depth = 0, i = 0
            var lastSignificant: UInt8 = 0
            var topKeys: [[UInt8]] = []
            while i < p.count {
                let c = p[i]
                if c == UInt8(ascii: "\"") {
                    // A string: find its end, note a top-level key.
                    var j = i + 1, escaped = false
                    while j < p.count, p[j] != UInt8(ascii: "\"") {
                        if p[j] == UInt8(ascii: "\\") { escaped = true; j += 1 }
                        j += 1
                    }
                    let contents = Array(p[(i + 1)..<min(j, p.count)])
                    var k = j + 1
                    while k < p.count, space.contains(p[k]) { k += 1 }
                    if depth == 1, k < p.count, p[k] == UInt8(ascii: ":") {
                        if escaped || contents.starts(with: [0xEF, 0xBB, 0xBF]) { keyReadDifferently = true }
                        if topKeys.contains(contents) && (contents == [UInt8(ascii: "v")] || contents == [UInt8(ascii: "t")]) {
                            duplicateKey = true
                        }
                        topKeys.append(contents)
                    }
                    i = j + 1
                    lastSignificant = UInt8(ascii: "\"")
                    continue
                }
                if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                    depth += 1
                    maxDepth = max(maxDepth, depth)
                } else if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                    if lastSignificant == UInt8(ascii: ",") { trailingComma = true }
                    depth -= 1
                }
                if !space.contains(c) { lastSignificant = c }
                i += 1
            }
        }
    }

    // MARK: - Stream ids

    /// What `validateStreamID` must say of `id` (docs/protocol.md): `empty_topic`,
    /// `topic_too_long` (over 255 bytes), `topic_not_utf8`, or nil for a good id. UTF-8 is
    /// checked here against RFC 3629's table of well-formed byte sequences.
    public static func streamIDReason(_ id: [UInt8]) -> String? {
        if id.isEmpty { return "empty_topic" }
        if id.count > 255 { return "topic_too_long" }
        return isWellFormedUTF8(id) ? nil : "topic_not_utf8"
    }

    /// RFC 3629, section 4: each scalar is one of these byte sequences.
    static func isWellFormedUTF8(_ b: [UInt8]) -> Bool {
        var i = 0
        func follows(_ k: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool { i + k < b.count && range.contains(b[i + k]) }
        while i < b.count {
            let c = b[i]
            switch c {
            case 0x00...0x7F: i += 1
            case 0xC2...0xDF where follows(1): i += 2
            case 0xE0 where follows(1, 0xA0...0xBF) && follows(2): i += 3
            case 0xE1...0xEC where follows(1) && follows(2): i += 3
            case 0xED where follows(1, 0x80...0x9F) && follows(2): i += 3
            case 0xEE...0xEF where follows(1) && follows(2): i += 3
            case 0xF0 where follows(1, 0x90...0xBF) && follows(2) && follows(3): i += 4
            case 0xF1...0xF3 where follows(1) && follows(2) && follows(3): i += 4
            case 0xF4 where follows(1, 0x80...0x8F) && follows(2) && follows(3): i += 4
            default: return false
            }
        }
        return true
    }
}
