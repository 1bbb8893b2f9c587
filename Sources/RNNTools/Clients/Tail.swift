// `rnnd tail` (docs/replay.md): forecasts as they arrive, one readable line each. The command
// line is Sources/rnnd/Tail.swift.

import RNNKeys
import RNNWire
import ZeroMQ

/// Formats forecast messages (docs/protocol.md) as one readable line each:
/// `2014-07-01T00:30:00Z  taxi  seq=2  forecast=[10844.2]  at=2014-07-01T01:00:00Z  updates=1`:
/// the instants of `at` in ISO 8601 (the first and the last), then every other key of the
/// message (bands, anomaly scores, ...) as `key=value`.
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
        if case .array(let instants)? = value["at"], let first = instants.first?.double, let last = instants.last?.double {
            parts.append("at=" + Timestamp.iso8601(first) + (instants.count > 1 ? "…" + Timestamp.iso8601(last) : ""))
        }
        for (key, member) in members where !["t", "stream", "seq", "forecast", "horizon", "at"].contains(key) {
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
