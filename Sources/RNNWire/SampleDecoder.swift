// Wire protocol v1 (docs/protocol.md): samples in, forecasts out, as two-frame ZeroMQ messages
// [topic][payload]. Decoding and encoding work on caller-owned buffers and do not allocate
// (but for a JSON number of more than about a kilobyte of digits). The decoder is fuzzed
// against an independent oracle (scripts/fuzz, docs/security.md).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an incoming message was refused. Every refusal is counted under its `rawValue`
/// (a Prometheus label and a log field) and never reaches a model.
public enum SampleRejection: String, CaseIterable, Sendable, Error, CustomStringConvertible {
    case wrongFrameCount = "wrong_frame_count"
    case emptyTopic = "empty_topic"
    case topicTooLong = "topic_too_long"
    case topicNotUTF8 = "topic_not_utf8"
    case emptyPayload = "empty_payload"
    case payloadTooLarge = "payload_too_large"
    case malformedJSON = "malformed_json"
    case missingValue = "missing_value"
    case valueNotNumeric = "value_not_numeric"
    case tooManyValues = "too_many_values"
    case nonFiniteValue = "non_finite_value"
    case badTimestamp = "bad_timestamp"
    case malformedBinary = "malformed_binary"

    public var description: String {
        switch self {
        case .wrongFrameCount: "a sample is two frames, [stream id][payload]"
        case .emptyTopic: "the stream id (first frame) is empty"
        case .topicTooLong: "the stream id is longer than 255 bytes"
        case .topicNotUTF8: "the stream id is not valid UTF-8"
        case .emptyPayload: "the payload (second frame) is empty"
        case .payloadTooLarge: "the payload is larger than the configured limit"
        case .malformedJSON: "the payload is neither a JSON object nor a binary v1 sample"
        case .missingValue: "the JSON object has no \"v\""
        case .valueNotNumeric: "\"v\" is not a number or a non-empty array of numbers (and nulls)"
        case .tooManyValues: "\"v\" has more values than the configured input width limit"
        case .nonFiniteValue: "a value is infinite (or overflows float32)"
        case .badTimestamp: "\"t\" is not a finite number of seconds"
        case .malformedBinary: "the binary payload does not follow the v1 layout"
        }
    }
}

/// The limits of the wire protocol.
public enum WireLimits {
    /// Longest stream id, in bytes.
    public static let maxTopicBytes = 255
    /// First byte of a binary v1 payload; a JSON payload starts with `{` or white space.
    public static let binaryMarker: UInt8 = 0x01
}

/// A decoded sample: `count` values written to the caller's buffer, and the timestamp if given.
/// `missing` of the values are missing (a JSON `null` in a `"v"` array, a NaN in a binary
/// sample): NaN in the buffer, for the stream to carry forward (``ChannelWatch``).
public struct DecodedSample: Sendable, Equatable {
    public var count: Int
    public var timestamp: Double?
    public var missing = 0
}

/// Checks a stream id: 1...255 bytes of valid UTF-8.
public func validateStreamID(_ topic: UnsafeRawBufferPointer) -> SampleRejection? {
    if topic.isEmpty { return .emptyTopic }
    if topic.count > WireLimits.maxTopicBytes { return .topicTooLong }
    var decoder = UTF8.ForwardParser()
    var iterator = topic.makeIterator()
    while true {
        switch decoder.parseScalar(from: &iterator) {
        case .valid: continue
        case .emptyInput: return nil
        case .error: return .topicNotUTF8
        }
    }
}

/// Decodes sample payloads: the JSON form `{"v": number | [numbers or nulls], "t": seconds}`
/// (other keys ignored) and the binary v1 form (docs/protocol.md). Allocation-free.
public struct SampleDecoder: Sendable {
    /// Most values one sample may carry.
    public var maxValues: Int
    /// Deepest nesting of ignored JSON values.
    public var maxDepth = 32

    public init(maxValues: Int = 1024) { self.maxValues = maxValues }

    /// Decodes `payload` into `values` (room for at least `maxValues`).
    public func decode(
        _ payload: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>
    ) -> Result<DecodedSample, SampleRejection> {
        precondition(values.count >= maxValues)
        guard let first = payload.first else { return .failure(.emptyPayload) }
        if first == WireLimits.binaryMarker { return decodeBinary(payload, into: values) }
        var parser = JSONSampleParser(bytes: payload, values: values, maxValues: maxValues, maxDepth: maxDepth)
        return parser.parse()
    }

    /// `[0x01][flags][count: UInt16 LE][t: Float64 LE if flags & 1][count × Float32 LE]`; a NaN
    /// value is missing, an infinite one refused.
    package func decodeBinary(
        _ p: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>
    ) -> Result<DecodedSample, SampleRejection> {
        guard p.count >= 4 else { return .failure(.malformedBinary) }
        let flags = p[1]
        guard flags & ~1 == 0 else { return .failure(.malformedBinary) }
        let count = Int(p[2]) | Int(p[3]) << 8
        let hasTime = flags & 1 == 1
        let header = hasTime ? 12 : 4
        guard count >= 1 else { return .failure(.valueNotNumeric) }
        guard count <= maxValues else { return .failure(.tooManyValues) }
        guard p.count == header + 4 * count else { return .failure(.malformedBinary) }
        var timestamp: Double?
        if hasTime {
            let t = Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt64.self)))
            guard t.isFinite else { return .failure(.badTimestamp) }
            timestamp = t
        }
        var missing = 0
        for i in 0..<count {
            let v = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: header + 4 * i, as: UInt32.self)))
            if v.isNaN {
                values[i] = .nan  // one NaN, whatever its payload bits
                missing += 1
                continue
            }
            guard v.isFinite else { return .failure(.nonFiniteValue) }
            values[i] = v
        }
        return .success(DecodedSample(count: count, timestamp: timestamp, missing: missing))
    }
}

/// A single-pass parser of the one JSON object a sample is. Keys are compared byte for byte
/// (`"v"`, `"t"`); every other key's value is skipped, whatever it is, without recursion.
package struct JSONSampleParser {
    package let bytes: UnsafeRawBufferPointer
    package let values: UnsafeMutableBufferPointer<Float>
    package let maxValues: Int
    package let maxDepth: Int
    package var i = 0

    package init(bytes: UnsafeRawBufferPointer, values: UnsafeMutableBufferPointer<Float>, maxValues: Int, maxDepth: Int) {
        self.bytes = bytes
        self.values = values
        self.maxValues = maxValues
        self.maxDepth = maxDepth
    }

    private var atEnd: Bool { i >= bytes.count }
    private var current: UInt8 { bytes[i] }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        skipSpace()
        guard !atEnd, current == byte else { return false }
        i += 1
        return true
    }

    package mutating func parse() -> Result<DecodedSample, SampleRejection> {
        guard consume(UInt8(ascii: "{")) else { return .failure(.malformedJSON) }
        var count: Int?
        var missing = 0
        var timestamp: Double?
        var seenT = false
        if !consume(UInt8(ascii: "}")) {
            repeat {
                skipSpace()
                guard let key = parseString() else { return .failure(.malformedJSON) }
                guard consume(UInt8(ascii: ":")) else { return .failure(.malformedJSON) }
                skipSpace()
                if key.count == 1 && bytes[key.lowerBound] == UInt8(ascii: "v") {
                    guard count == nil else { return .failure(.malformedJSON) }
                    switch parseValues() {
                    case .success(let n): (count, missing) = n
                    case .failure(let reason): return .failure(reason)
                    }
                } else if key.count == 1 && bytes[key.lowerBound] == UInt8(ascii: "t") {
                    guard !seenT else { return .failure(.malformedJSON) }
                    seenT = true
                    if matchLiteral("null") { continue }
                    guard let t = parseNumber() else {
                        return skipValue() ? .failure(.badTimestamp) : .failure(.malformedJSON)
                    }
                    guard t.isFinite else { return .failure(.badTimestamp) }
                    timestamp = t
                } else {
                    guard skipValue() else { return .failure(.malformedJSON) }
                }
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "}")) else { return .failure(.malformedJSON) }
        }
        skipSpace()
        guard atEnd else { return .failure(.malformedJSON) }
        guard let n = count else { return .failure(.missingValue) }
        return .success(DecodedSample(count: n, timestamp: timestamp, missing: missing))
    }

    /// `"v"`: one number or a non-empty array of numbers and nulls (missing: NaN), into
    /// `values`; the count and how many of them are missing.
    private mutating func parseValues() -> Result<(count: Int, missing: Int), SampleRejection> {
        if !atEnd, current == UInt8(ascii: "[") {
            i += 1
            var n = 0, missing = 0
            if consume(UInt8(ascii: "]")) { return .failure(.valueNotNumeric) }
            repeat {
                skipSpace()
                let f: Float
                if matchLiteral("null") {
                    f = .nan
                    missing += 1
                } else {
                    guard let x = parseNumber() else {
                        return skipArrayRest() ? .failure(.valueNotNumeric) : .failure(.malformedJSON)
                    }
                    f = Float(x)
                }
                guard n < maxValues else { return .failure(.tooManyValues) }
                guard f.isFinite || f.isNaN else { return .failure(.nonFiniteValue) }
                values[n] = f
                n += 1
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "]")) else { return .failure(.malformedJSON) }
            return .success((n, missing))
        }
        guard let x = parseNumber() else {
            return skipValue() ? .failure(.valueNotNumeric) : .failure(.malformedJSON)
        }
        let f = Float(x)
        guard f.isFinite else { return .failure(.nonFiniteValue) }
        values[0] = f
        return .success((1, 0))
    }

    /// After a non-number inside `"v": [...]`: is the rest still well-formed JSON?
    private mutating func skipArrayRest() -> Bool {
        guard skipValue() else { return false }
        while consume(UInt8(ascii: ",")) {
            skipSpace()
            guard skipValue() else { return false }
        }
        return consume(UInt8(ascii: "]"))
    }

    private mutating func matchLiteral(_ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard i + n <= bytes.count else { return false }
        let p = literal.utf8Start
        for k in 0..<n where bytes[i + k] != p[k] { return false }
        i += n
        return true
    }

    /// A JSON string; returns the byte range of its raw contents (escapes not decoded).
    ///
    /// The text must be UTF-8 (RFC 8259, section 8.1) and a `\u` escape of a UTF-16 surrogate
    /// must be half of a pair, so that every parser reads the same characters: a parser
    /// differential (another consumer that reads a payload differently) is where poisoned
    /// input hides.
    private mutating func parseString() -> Range<Int>? {
        guard !atEnd, current == UInt8(ascii: "\"") else { return nil }
        i += 1
        let start = i
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                defer { i += 1 }
                return start..<i
            }
            if c < 0x20 { return nil }
            if c >= 0x80 {
                guard let length = utf8SequenceLength(at: i) else { return nil }
                i += length
                continue
            }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard i < bytes.count else { return nil }
                if bytes[i] == UInt8(ascii: "u") {
                    guard let unit = hexUnit(at: i + 1) else { return nil }
                    i += 4
                    if unit & 0xFC00 == 0xDC00 { return nil }  // a low surrogate alone
                    if unit & 0xFC00 == 0xD800 {  // a high surrogate: a low one must follow
                        guard i + 2 < bytes.count, bytes[i + 1] == UInt8(ascii: "\\"), bytes[i + 2] == UInt8(ascii: "u"),
                            let low = hexUnit(at: i + 3), low & 0xFC00 == 0xDC00
                        else { return nil }
                        i += 6
                    }
                } else if !"\"\\/bfnrt".utf8.contains(bytes[i]) {
                    return nil
                }
            }
            i += 1
        }
        return nil
    }

    /// The UTF-16 code unit of the four hex digits at `at`, or nil.
    private func hexUnit(at: Int) -> UInt16? {
        guard at + 4 <= bytes.count else { return nil }
        var unit: UInt16 = 0
        for k in 0..<4 {
            let c = bytes[at + k]
            let digit: UInt8
            switch c {
            case 0x30...0x39: digit = c - 0x30
            case 0x41...0x46: digit = c - 0x41 + 10
            case 0x61...0x66: digit = c - 0x61 + 10
            default: return nil
            }
            unit = unit << 4 | UInt16(digit)
        }
        return unit
    }

    /// The length of the well-formed UTF-8 sequence of a scalar above U+007F at `at`
    /// (Unicode's table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or nil.
    private func utf8SequenceLength(at: Int) -> Int? {
        let lead = bytes[at]
        let length: Int, second: ClosedRange<UInt8>
        switch lead {
        case 0xC2...0xDF: (length, second) = (2, 0x80...0xBF)
        case 0xE0: (length, second) = (3, 0xA0...0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (length, second) = (3, 0x80...0xBF)
        case 0xED: (length, second) = (3, 0x80...0x9F)
        case 0xF0: (length, second) = (4, 0x90...0xBF)
        case 0xF1...0xF3: (length, second) = (4, 0x80...0xBF)
        case 0xF4: (length, second) = (4, 0x80...0x8F)
        default: return nil
        }
        guard at + length <= bytes.count, second.contains(bytes[at + 1]) else { return nil }
        for k in 2..<length where bytes[at + k] & 0xC0 != 0x80 { return nil }
        return length
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// A JSON number (strict grammar), converted with `strtod`; nil, position unchanged, if
    /// there is none here. Values beyond Double's range come back infinite. A number of any
    /// length is read (a 500-digit fraction is valid JSON); one longer than a small stack
    /// buffer is copied to the heap for `strtod`, which needs it NUL-terminated.
    private mutating func parseNumber() -> Double? {
        let start = i
        var j = i
        if j < bytes.count, bytes[j] == UInt8(ascii: "-") { j += 1 }
        guard j < bytes.count, isDigit(bytes[j]) else { return nil }
        if bytes[j] == UInt8(ascii: "0") { j += 1 } else { while j < bytes.count, isDigit(bytes[j]) { j += 1 } }
        if j < bytes.count, bytes[j] == UInt8(ascii: ".") {
            j += 1
            guard j < bytes.count, isDigit(bytes[j]) else { return nil }
            while j < bytes.count, isDigit(bytes[j]) { j += 1 }
        }
        if j < bytes.count, bytes[j] == UInt8(ascii: "e") || bytes[j] == UInt8(ascii: "E") {
            j += 1
            if j < bytes.count, bytes[j] == UInt8(ascii: "+") || bytes[j] == UInt8(ascii: "-") { j += 1 }
            guard j < bytes.count, isDigit(bytes[j]) else { return nil }
            while j < bytes.count, isDigit(bytes[j]) { j += 1 }
        }
        let length = j - start
        i = j
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buffer in
            for k in 0..<length { buffer[k] = CChar(bitPattern: bytes[start + k]) }
            buffer[length] = 0
            return strtod(buffer.baseAddress!, nil)
        }
    }

    /// Skips one JSON value of any kind. Nesting is tracked in a bit set (one bit a level,
    /// set for an object), not by recursion, so hostile nesting cannot exhaust the stack.
    private mutating func skipValue() -> Bool {
        let open = UInt8(ascii: "{"), close = UInt8(ascii: "}")
        let openArray = UInt8(ascii: "["), closeArray = UInt8(ascii: "]")
        var objects: UInt64 = 0
        var depth = 0
        while true {
            // A value starts here.
            skipSpace()
            guard !atEnd else { return false }
            let c = current
            if c == open || c == openArray {
                guard depth < min(maxDepth, 64) else { return false }
                i += 1
                let isObject = c == open
                if isObject { objects |= 1 << UInt64(depth) } else { objects &= ~(1 << UInt64(depth)) }
                depth += 1
                if !consume(isObject ? close : closeArray) {
                    if isObject {
                        skipSpace()
                        guard parseString() != nil, consume(UInt8(ascii: ":")) else { return false }
                    }
                    continue
                }
                depth -= 1
            } else if c == UInt8(ascii: "\"") {
                guard parseString() != nil else { return false }
            } else if c == UInt8(ascii: "t") {
                guard matchLiteral("true") else { return false }
            } else if c == UInt8(ascii: "f") {
                guard matchLiteral("false") else { return false }
            } else if c == UInt8(ascii: "n") {
                guard matchLiteral("null") else { return false }
            } else {
                guard parseNumber() != nil else { return false }
            }
            // The value is complete: close containers until a separator or the end.
            while true {
                if depth == 0 { return true }
                skipSpace()
                guard !atEnd else { return false }
                let inObject = objects >> UInt64(depth - 1) & 1 == 1
                if current == UInt8(ascii: ",") {
                    i += 1
                    if inObject {
                        skipSpace()
                        guard parseString() != nil, consume(UInt8(ascii: ":")) else { return false }
                    }
                    break
                }
                guard current == (inObject ? close : closeArray) else { return false }
                i += 1
                depth -= 1
            }
        }
    }
}
