/// Writes forecast messages (docs/protocol.md, "Output"): the topic frame (optional prefix and
/// the stream id) and the JSON payload, into buffers it reuses, so that steady-state encoding
/// does not allocate.
public struct ForecastEncoder: Sendable {
    public let topicPrefix: [UInt8]
    /// The topic frame of the latest `encode`.
    public private(set) var topic: [UInt8] = []
    /// The payload frame of the latest `encode`.
    public private(set) var payload: [UInt8] = []

    public init(topicPrefix: [UInt8] = [], capacity: Int = 4096) {
        self.topicPrefix = topicPrefix
        topic.reserveCapacity(topicPrefix.count + WireLimits.maxTopicBytes)
        payload.reserveCapacity(capacity)
    }

    /// `{"stream": id, "seq": n, "t": t | null, "horizon": P, "at": [...], "forecast": [[...], ...],
    /// "lower": [[...], ...] | null, "upper": ..., "anomaly": a | null, "updates": u}`;
    /// `forecast` holds `horizon` rows of `forecast.count / horizon` values, and so do `lower` and
    /// `upper` when there is a band (a value without one, NaN, is written as null). Then, only
    /// when not empty, `"missing": [channels]`, the sample's channels carried forward, and
    /// `"stuck": [channels]`, the stream's channels stuck now (``ChannelWatch``): additions that
    /// v1 consumers, which ignore keys they do not know, never see otherwise. `"anomalies": [...]`,
    /// each target's anomaly score in the order of a forecast row, follows `anomaly` when
    /// `targetAnomalies` (Float32 each, any alignment) is not empty: a stream of several targets.
    ///
    /// `at`, the instants the rows are for, is written only with a `timestamp` t and the stream's
    /// sampling `interval` Δ (seconds, positive): `[t + 1·Δ, ..., t + P·Δ]`, each rounded to the
    /// millisecond; left out when an instant would not be a number of Unix seconds below 10^15.
    public mutating func encode(
        stream: UnsafeRawBufferPointer, seq: Int, timestamp: Double?, interval: Double? = nil, horizon: Int,
        forecast: UnsafeBufferPointer<Float>, lower: UnsafeBufferPointer<Float>? = nil,
        upper: UnsafeBufferPointer<Float>? = nil, anomaly: Double? = nil,
        targetAnomalies: UnsafeRawBufferPointer = .init(start: nil, count: 0), updates: Int,
        missing: UnsafeBufferPointer<UInt16> = .init(start: nil, count: 0),
        stuck: UnsafeBufferPointer<UInt16> = .init(start: nil, count: 0)
    ) {
        precondition(horizon >= 1 && forecast.count % horizon == 0)
        topic.removeAll(keepingCapacity: true)
        topic.append(contentsOf: topicPrefix)
        topic.append(contentsOf: stream)
        payload.removeAll(keepingCapacity: true)
        append("{\"stream\":")
        appendString(stream)
        append(",\"seq\":")
        appendInteger(seq)
        append(",\"t\":")
        if let t = timestamp { appendShortest(t, isFloat: false) } else { append("null") }
        append(",\"horizon\":")
        appendInteger(horizon)
        if let t = timestamp, let interval, interval > 0, abs(t) < Self.largestInstant,
            abs(t + Double(horizon) * interval) < Self.largestInstant
        {
            append(",\"at\":[")
            for p in 1...horizon {
                if p > 1 { payload.append(UInt8(ascii: ",")) }
                appendMilliseconds(t + Double(p) * interval)
            }
            payload.append(UInt8(ascii: "]"))
        }
        append(",\"forecast\":")
        appendRows(forecast, horizon: horizon)
        append(",\"lower\":")
        if let lower, lower.count == forecast.count { appendRows(lower, horizon: horizon) } else { append("null") }
        append(",\"upper\":")
        if let upper, upper.count == forecast.count { appendRows(upper, horizon: horizon) } else { append("null") }
        append(",\"anomaly\":")
        if let anomaly { appendShortest(anomaly, isFloat: true) } else { append("null") }
        if !targetAnomalies.isEmpty {
            append(",\"anomalies\":[")
            for j in 0..<(targetAnomalies.count / 4) {
                if j > 0 { payload.append(UInt8(ascii: ",")) }
                appendShortest(Double(targetAnomalies.loadUnaligned(fromByteOffset: 4 * j, as: Float.self)), isFloat: true)
            }
            payload.append(UInt8(ascii: "]"))
        }
        append(",\"updates\":")
        appendInteger(updates)
        if !missing.isEmpty {
            append(",\"missing\":")
            appendIntegers(missing)
        }
        if !stuck.isEmpty {
            append(",\"stuck\":")
            appendIntegers(stuck)
        }
        payload.append(UInt8(ascii: "}"))
    }

    /// `[a,b,...]`.
    private mutating func appendIntegers(_ values: UnsafeBufferPointer<UInt16>) {
        payload.append(UInt8(ascii: "["))
        for (k, v) in values.enumerated() {
            if k > 0 { payload.append(UInt8(ascii: ",")) }
            appendInteger(Int(v))
        }
        payload.append(UInt8(ascii: "]"))
    }

    /// `[[...], ...]`: `horizon` rows of `values.count / horizon` values.
    private mutating func appendRows(_ values: UnsafeBufferPointer<Float>, horizon: Int) {
        let width = values.count / horizon
        payload.append(UInt8(ascii: "["))
        for p in 0..<horizon {
            if p > 0 { payload.append(UInt8(ascii: ",")) }
            payload.append(UInt8(ascii: "["))
            for j in 0..<width {
                if j > 0 { payload.append(UInt8(ascii: ",")) }
                appendShortest(Double(values[p * width + j]), isFloat: true)
            }
            payload.append(UInt8(ascii: "]"))
        }
        payload.append(UInt8(ascii: "]"))
    }

    private mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { payload.append(contentsOf: $0) }
    }

    private mutating func appendInteger(_ value: Int) {
        if value < 0 { payload.append(UInt8(ascii: "-")) }
        var v = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var n = 0
            repeat {
                digits[n] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                n += 1
            } while v > 0
            for k in stride(from: n - 1, through: 0, by: -1) { payload.append(digits[k]) }
        }
    }

    /// Instants of `at` are written only below this many seconds (about 31 million years), so
    /// that their milliseconds fit an integer.
    static let largestInstant = 1e15

    /// `seconds` rounded to the millisecond, as a JSON number without trailing zeros:
    /// `1700000300`, `1700000300.25`. No allocation.
    private mutating func appendMilliseconds(_ seconds: Double) {
        let ms = Int64((seconds * 1000).rounded())
        if ms < 0 { payload.append(UInt8(ascii: "-")) }
        appendInteger(Int(ms.magnitude / 1000))
        var fraction = Int(ms.magnitude % 1000)
        guard fraction > 0 else { return }
        payload.append(UInt8(ascii: "."))
        var digits = 3
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        var scale = 1
        for _ in 1..<digits { scale *= 10 }
        while scale > 0 {
            payload.append(UInt8(ascii: "0") + UInt8(fraction / scale % 10))
            scale /= 10
        }
    }

    /// A JSON string of raw UTF-8 bytes, escaping quotes, backslashes and control characters.
    private mutating func appendString(_ bytes: UnsafeRawBufferPointer) {
        payload.append(UInt8(ascii: "\""))
        let hex: StaticString = "0123456789abcdef"
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                payload.append(UInt8(ascii: "\\"))
                payload.append(b)
            case 0..<0x20:
                append("\\u00")
                payload.append(hex.utf8Start[Int(b >> 4)])
                payload.append(hex.utf8Start[Int(b & 0xF)])
            default:
                payload.append(b)
            }
        }
        payload.append(UInt8(ascii: "\""))
    }

    /// The shortest decimal that reads back as the same Float (or Double), so consumers get
    /// exactly the value rnnd computed: the standard library's `description` (Ryu-style
    /// shortest round trip), e.g. `21.5`, `-3.0`, `1e-07`, `3.4e+38`, all valid JSON numbers.
    /// A Float's text fits a small string (no heap allocation); a Double's may not.
    private mutating func appendShortest(_ value: Double, isFloat: Bool) {
        guard value.isFinite else { append("null"); return }
        if isFloat {
            payload.append(contentsOf: Float(value).description.utf8)
        } else {
            payload.append(contentsOf: value.description.utf8)
        }
    }
}
