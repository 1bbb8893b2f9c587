#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// `{"stream": id, "seq": n, "t": t | null, "horizon": P, "forecast": [[...], ...],
    /// "updates": u}`; `forecast` holds `horizon` rows of `forecast.count / horizon` values.
    public mutating func encode(
        stream: UnsafeRawBufferPointer, seq: Int, timestamp: Double?, horizon: Int,
        forecast: UnsafeBufferPointer<Float>, updates: Int
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
        append(",\"forecast\":[")
        let width = forecast.count / horizon
        for p in 0..<horizon {
            if p > 0 { payload.append(UInt8(ascii: ",")) }
            payload.append(UInt8(ascii: "["))
            for j in 0..<width {
                if j > 0 { payload.append(UInt8(ascii: ",")) }
                appendShortest(Double(forecast[p * width + j]), isFloat: true)
            }
            payload.append(UInt8(ascii: "]"))
        }
        append("],\"updates\":")
        appendInteger(updates)
        payload.append(UInt8(ascii: "}"))
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

    /// The shortest decimal that reads back as the same Float (or Double): JSON consumers get
    /// exactly the value rnnd computed, in as few characters as possible.
    private mutating func appendShortest(_ value: Double, isFloat: Bool) {
        guard value.isFinite else { append("null"); return }
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 40) { buffer in
            let text = buffer.baseAddress!
            var length = 0
            for precision in 1...(isFloat ? 9 : 17) {
                length = writeDecimal(value, significantDigits: precision, into: text)
                let back = isFloat ? Double(strtof(text, nil)) : strtod(text, nil)
                if back == value { break }
            }
            for k in 0..<length { payload.append(UInt8(bitPattern: text[k])) }
        }
    }
}

/// `value` rounded to `significantDigits` (1...17) as a JSON number, NUL-terminated, into
/// `text` (room for 40); returns the length. Positional for exponents -6...20, else `d.ddde±x`.
func writeDecimal(_ value: Double, significantDigits p: Int, into text: UnsafeMutablePointer<CChar>) -> Int {
    var n = 0
    func put(_ c: UInt8) { text[n] = CChar(bitPattern: c); n += 1 }
    var v = value
    if v < 0 { put(UInt8(ascii: "-")); v = -v }
    if v == 0 { put(UInt8(ascii: "0")); text[n] = 0; return n }
    func scale(_ x: Double, _ k: Int) -> Double {  // x · 10^k without overflowing 10^k
        x * pow(10, Double(k / 2)) * pow(10, Double(k - k / 2))
    }
    var exponent = Int(log10(v).rounded(.down))
    var mantissa = scale(v, p - 1 - exponent).rounded()
    let upper = pow(10, Double(p))
    if mantissa >= upper { exponent += 1; mantissa = scale(v, p - 1 - exponent).rounded() }
    if mantissa < upper / 10 { exponent -= 1; mantissa = scale(v, p - 1 - exponent).rounded() }
    if mantissa >= upper { mantissa = upper / 10; exponent += 1 }
    // The p digits, most significant first, without trailing zeros.
    var m = UInt64(mantissa)
    var reversed: (count: Int, bytes: SIMD32<UInt8>) = (0, SIMD32())
    for _ in 0..<p {
        reversed.bytes[reversed.count] = UInt8(m % 10)
        reversed.count += 1
        m /= 10
    }
    var first = 0  // index (in reversed) of the last non-zero digit
    while first < p - 1 && reversed.bytes[first] == 0 { first += 1 }
    let significant = p - first
    func digit(_ k: Int) -> UInt8 { UInt8(ascii: "0") + reversed.bytes[p - 1 - k] }  // k-th from the left
    if exponent >= -6 && exponent <= 20 {
        if exponent < 0 {
            put(UInt8(ascii: "0")); put(UInt8(ascii: "."))
            for _ in 0..<(-exponent - 1) { put(UInt8(ascii: "0")) }
            for k in 0..<significant { put(digit(k)) }
        } else {
            for k in 0...exponent { put(k < significant ? digit(k) : UInt8(ascii: "0")) }
            if significant > exponent + 1 {
                put(UInt8(ascii: "."))
                for k in (exponent + 1)..<significant { put(digit(k)) }
            }
        }
    } else {
        put(digit(0))
        if significant > 1 {
            put(UInt8(ascii: "."))
            for k in 1..<significant { put(digit(k)) }
        }
        put(UInt8(ascii: "e"))
        if exponent < 0 { put(UInt8(ascii: "-")) }
        var e = abs(exponent)
        if e >= 100 { put(UInt8(ascii: "0") + UInt8(e / 100)); e %= 100; put(UInt8(ascii: "0") + UInt8(e / 10)) }
        else if e >= 10 { put(UInt8(ascii: "0") + UInt8(e / 10)) }
        put(UInt8(ascii: "0") + UInt8(e % 10))
    }
    text[n] = 0
    return n
}
