// `rnnd tail` (docs/replay.md): forecasts as they arrive, one readable line each. The command
// line is Sources/rnnd/Tail.swift.

import ZeroMQ

/// A parsed JSON value that keeps the order of object keys and the text of numbers.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's text as written, and its value.
    case number(String, Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.number(let x, _), .number(let y, _)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// Parses one JSON value (nesting at most 64 deep); nil when `bytes` is not exactly one.
    public static func parse(_ bytes: some Collection<UInt8>) -> JSONValue? {
        var p = Parser(bytes: Array(bytes))
        guard let value = p.value(depth: 0) else { return nil }
        p.skipSpace()
        return p.i == p.bytes.count ? value : nil
    }

    /// The member `key` of an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    public var double: Double? { if case .number(_, let x) = self { x } else { nil } }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
        }

        mutating func literal(_ text: String) -> Bool {
            let t = Array(text.utf8)
            guard bytes.count - i >= t.count, Array(bytes[i..<(i + t.count)]) == t else { return false }
            i += t.count
            return true
        }

        mutating func value(depth: Int) -> JSONValue? {
            guard depth < 64 else { return nil }
            skipSpace()
            guard i < bytes.count else { return nil }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var members: [(String, JSONValue)] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard let key = string() else { return nil }
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
                    i += 1
                    guard let v = value(depth: depth + 1) else { return nil }
                    members.append((key, v))
                    skipSpace()
                    guard i < bytes.count else { return nil }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                    return nil
                }
            case UInt8(ascii: "["):
                i += 1
                var elements: [JSONValue] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(elements) }
                while true {
                    guard let v = value(depth: depth + 1) else { return nil }
                    elements.append(v)
                    skipSpace()
                    guard i < bytes.count else { return nil }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(elements) }
                    return nil
                }
            case UInt8(ascii: "\""):
                return string().map(JSONValue.string)
            case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
            case UInt8(ascii: "n"): return literal("null") ? .null : nil
            default:
                let start = i
                while i < bytes.count, "+-.0123456789eE".utf8.contains(bytes[i]) { i += 1 }
                let text = String(decoding: bytes[start..<i], as: UTF8.self)
                guard let x = Double(text) else { return nil }
                return .number(text, x)
            }
        }

        mutating func string() -> String? {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            var out: [UInt8] = []
            while i < bytes.count {
                let c = bytes[i]
                i += 1
                if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if c != UInt8(ascii: "\\") { out.append(c); continue }
                guard i < bytes.count else { return nil }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard i + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16)
                    else { return nil }
                    i += 4
                    out += String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8
                default: out.append(e)
                }
            }
            return nil
        }
    }
}

/// Formats forecast messages (docs/protocol.md) as one readable line each:
/// `2014-07-01T00:30:00Z  taxi  seq=2  forecast=[10844.2]  updates=1`, then every other key of
/// the message (bands, anomaly scores, ...) as `key=value`.
public enum ForecastLine {
    /// The line for a forecast message's payload; a payload that is not a JSON object is shown
    /// as it is, after the topic.
    public static func format(topic: [UInt8], payload: [UInt8]) -> String {
        guard let value = JSONValue.parse(payload), case .object(let members) = value else {
            return "\(String(decoding: topic, as: UTF8.self))  (not JSON) \(String(decoding: payload.prefix(200), as: UTF8.self))"
        }
        var parts: [String] = []
        if let t = value["t"]?.double { parts.append(Timestamp.iso8601(t)) } else { parts.append("-") }
        if case .string(let stream)? = value["stream"] {
            parts.append(stream)
        } else {
            parts.append(String(decoding: topic, as: UTF8.self))
        }
        if let seq = value["seq"] { parts.append("seq=\(short(seq))") }
        if let forecast = value["forecast"] { parts.append("forecast=\(short(forecast, unwrapSingle: true))") }
        for (key, member) in members where !["t", "stream", "seq", "forecast", "horizon"].contains(key) {
            parts.append("\(key)=\(short(member, unwrapSingle: key == "lower" || key == "upper"))")
        }
        return parts.joined(separator: "  ")
    }

    /// A value in few characters: numbers to 6 significant digits; a forecast of one row is
    /// shown as that row.
    static func short(_ value: JSONValue, unwrapSingle: Bool = false) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .number(let text, let x):
            if x == x.rounded(), abs(x) < 1e15, !text.contains("."), !text.contains("e"), !text.contains("E") { return text }
            return formatG(x, 6)
        case .string(let s): return "\"\(s)\""
        case .array(let elements):
            if unwrapSingle, elements.count == 1, case .array = elements[0] { return short(elements[0]) }
            return "[" + elements.map { short($0) }.joined(separator: ", ") + "]"
        case .object(let members):
            return "{" + members.map { "\($0.0): \(short($0.1))" }.joined(separator: ", ") + "}"
        }
    }
}

/// Subscribes to forecasts and hands each message to `output`, until `count` messages or
/// `shouldStop()` (polled at least every 100 ms); as a CURVE client with `curve`.
public func tailForecasts(
    endpoint: String, topic: String, count: Int?, curve: CurveClientKeys? = nil, shouldStop: () -> Bool,
    output: (_ topic: [UInt8], _ payload: [UInt8]) -> Void
) throws(ZMQError) -> Int {
    let context = try ZMQContext()
    let socket = try ZMQSocket(context, type: .sub)
    try socket.useCurve(curve)
    try socket.setReceiveHighWaterMark(100_000)
    try socket.setReceiveTimeout(.milliseconds(100))
    try socket.subscribe(topic)
    try socket.attach(endpoint)
    var received = 0
    while !shouldStop(), received < count ?? .max {
        switch try socket.receiveFrames() {
        case .frames(let frames):
            guard frames.count == 2 else { continue }
            output(frames[0], frames[1])
            received += 1
        case .wouldBlock: continue
        case .terminated: return received
        }
    }
    return received
}
