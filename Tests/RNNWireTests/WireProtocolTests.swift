import Foundation
@testable import RNNWire
import Testing

@Suite(.timeLimit(.minutes(1)))
struct WireProtocolTests {
    func decode(_ text: String, maxValues: Int = 8) -> Result<[Float], SampleRejection> {
        decode(Array(text.utf8), maxValues: maxValues).map { $0.values }
    }

    func decode(_ bytes: [UInt8], maxValues: Int = 8) -> Result<(values: [Float], t: Double?), SampleRejection> {
        var values = [Float](repeating: .nan, count: maxValues)
        let result = bytes.withUnsafeBytes { payload in
            values.withUnsafeMutableBufferPointer { SampleDecoder(maxValues: maxValues).decode(payload, into: $0) }
        }
        return result.map { (Array(values.prefix($0.count)), $0.timestamp) }
    }

    @Test func jsonSamplesDecode() throws {
        #expect(try decode(#"{"v": 21.5}"#).get() == [21.5])
        #expect(try decode(#"{"v":[1,-2.5e3,0.125],"t":1700000000.25}"#).get() == [1, -2500, 0.125])
        #expect(try decode(Array(#" {"t": null, "v": [3] } "#.utf8)).get().t == nil)
        #expect(try decode(Array(#"{"t":1700000000.25,"v":1}"#.utf8)).get().t == 1_700_000_000.25)
        // Unknown keys are ignored, whatever their value.
        let noisy = #"{"unit":"°C","meta":{"a":[1,{"b":[true,false,null]}],"c":"\"}\\"},"v":[7],"x":-0.5e-3}"#
        #expect(try decode(noisy).get() == [7])
        // Escaped surrogate pairs, every length of UTF-8, and numbers of any length are JSON.
        #expect(try decode(#"{"emoji":"\ud83d\ude00 😀 é ₹ 𐍈","v":1}"#).get() == [1])
        #expect(try decode(#"{"v":0.\#(String(repeating: "0", count: 600))1e601}"#).get() == [1])
        #expect(try decode(#"{"v":1,"x":\#(String(repeating: "9", count: 5000))}"#).get() == [1])
    }

    /// Strings must be UTF-8 and escaped surrogates paired, as RFC 8259 and other parsers
    /// (Foundation's) want: a payload two parsers read differently is refused.
    @Test(arguments: [
        [0x7B, 0x22, 0x78, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x2C, 0x22, 0x76, 0x22, 0x3A, 0x31, 0x7D],             // a byte that is never UTF-8
        [0x7B, 0x22, 0xC3, 0x22, 0x3A, 0x31, 0x2C, 0x22, 0x76, 0x22, 0x3A, 0x31, 0x7D],                         // a cut sequence in a key
        [0x7B, 0x22, 0x78, 0x22, 0x3A, 0x22, 0xC0, 0xAF, 0x22, 0x2C, 0x22, 0x76, 0x22, 0x3A, 0x31, 0x7D],       // an overlong "/"
        [0x7B, 0x22, 0x78, 0x22, 0x3A, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x2C, 0x22, 0x76, 0x22, 0x3A, 0x31, 0x7D], // a surrogate as UTF-8
        [0x7B, 0x22, 0x78, 0x22, 0x3A, 0x22, 0xF4, 0x90, 0x80, 0x80, 0x22, 0x2C, 0x22, 0x76, 0x22, 0x3A, 0x31, 0x7D], // above U+10FFFF
        Array(#"{"x":"\ud800","v":1}"#.utf8),        // a high surrogate alone
        Array(#"{"x":"\udc00\ud800","v":1}"#.utf8),  // a low one first
        Array(#"{"x":"\ud800\u0041","v":1}"#.utf8),  // a high one, then no low one
        Array(#"{"x":"\ud800\","v":1}"#.utf8),       // cut short
    ] as [[UInt8]])
    func stringsThatAreNotUnicodeAreRefused(payload: [UInt8]) {
        guard case .failure(let reason) = decode(payload) else {
            Issue.record("accepted \(payload)")
            return
        }
        #expect(reason == .malformedJSON)
    }

    @Test(arguments: [
        ("", SampleRejection.emptyPayload),
        ("[1,2]", .malformedJSON),
        ("{\"v\": 1", .malformedJSON),
        ("{\"v\": 1} trailing", .malformedJSON),
        ("{\"v\": 01}", .malformedJSON),
        ("{\"v\": 1, \"v\": 2}", .malformedJSON),
        ("{}", .missingValue),
        ("{\"value\": 3}", .missingValue),
        ("{\"v\": \"3\"}", .valueNotNumeric),
        ("{\"v\": []}", .valueNotNumeric),
        ("{\"v\": [1, \"x\"]}", .valueNotNumeric),
        ("{\"v\": null}", .valueNotNumeric),
        ("{\"v\": 1e39}", .nonFiniteValue),
        ("{\"v\": [1, -1e999]}", .nonFiniteValue),
        ("{\"v\": [1,2,3,4,5,6,7,8,9]}", .tooManyValues),
        ("{\"v\": 1, \"t\": \"yesterday\"}", .badTimestamp),
        ("{\"v\": 1, \"t\": 1e400}", .badTimestamp),
        ("{\"v\": NaN}", .malformedJSON),
        ("{\"a\": " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + ", \"v\": 1}", .malformedJSON),
    ])
    func badJSONIsRefusedWithItsReason(payload: String, reason: SampleRejection) {
        guard case .failure(let got) = decode(payload) else {
            Issue.record("accepted \(payload)")
            return
        }
        #expect(got == reason, "\(payload)")
    }

    func binary(_ values: [Float], t: Double?) -> [UInt8] {
        var out: [UInt8] = [WireLimits.binaryMarker, t == nil ? 0 : 1, UInt8(values.count & 0xFF), UInt8(values.count >> 8)]
        if let t { withUnsafeBytes(of: t.bitPattern.littleEndian) { out += $0 } }
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
        return out
    }

    @Test func binarySamplesDecode() throws {
        let (values, t) = try decode(binary([1.5, -3, 1e20], t: 1_700_000_000.5)).get()
        #expect(values == [1.5, -3, 1e20])
        #expect(t == 1_700_000_000.5)
        #expect(try decode(binary([42], t: nil)).get().t == nil)
    }

    @Test func badBinaryIsRefused() {
        func reason(_ bytes: [UInt8]) -> SampleRejection? {
            if case .failure(let r) = decode(bytes) { return r }
            return nil
        }
        #expect(reason([1, 0, 1]) == .malformedBinary)
        #expect(reason(binary([1, 2], t: nil).dropLast()) == .malformedBinary)
        #expect(reason(binary([1, 2], t: nil) + [0]) == .malformedBinary)
        #expect(reason([1, 2, 1, 0, 0, 0, 0, 0]) == .malformedBinary)  // unknown flag
        #expect(reason([1, 0, 0, 0]) == .valueNotNumeric)
        #expect(reason(binary([.infinity, 1], t: nil)) == .nonFiniteValue)
        #expect(reason(binary([1, -.infinity], t: nil)) == .nonFiniteValue)
        #expect(reason(binary([1], t: .infinity)) == .badTimestamp)
        #expect(reason(binary(Array(repeating: 1, count: 9), t: nil)) == .tooManyValues)
    }

    /// A `null` in a `"v"` array is a missing value: NaN in the buffer, counted in `missing`, for
    /// the stream to carry forward. A `"v"` that is `null` itself is still no value at all.
    @Test func nullChannelsDecodeAsMissing() throws {
        func sample(_ bytes: [UInt8]) throws -> (values: [Float], missing: Int) {
            var values = [Float](repeating: 7, count: 8)
            let result = bytes.withUnsafeBytes { payload in
                values.withUnsafeMutableBufferPointer { SampleDecoder(maxValues: 8).decode(payload, into: $0) }
            }
            let decoded = try result.get()
            return (Array(values.prefix(decoded.count)), decoded.missing)
        }
        let json = try sample(Array(#"{"v":[21.5, null ,1013.2],"t":1700000000}"#.utf8))
        #expect(json.values.count == 3 && json.missing == 1)
        #expect(json.values[0] == 21.5 && json.values[1].isNaN && json.values[2] == 1013.2)
        let all = try sample(Array(#"{"v":[null,null]}"#.utf8))
        #expect(all.values.count == 2 && all.values.allSatisfy(\.isNaN) && all.missing == 2, "the stream refuses it, not the decoder")
        #expect(try sample(Array(#"{"v":[1,2]}"#.utf8)).missing == 0)
        // Binary: a NaN, whatever its payload bits, is missing; an infinity is refused.
        let signalling = Float(bitPattern: 0x7FA0_0001)
        let bin = try sample(binary([1.5, signalling, -.nan], t: 1_700_000_000))
        #expect(bin.values[0] == 1.5 && bin.values[1].isNaN && bin.values[2].isNaN && bin.missing == 2)
        #expect(bin.values[1].bitPattern == Float.nan.bitPattern, "one NaN goes on, not the sender's bits")
        // A scalar null is refused as before, and so is a null that is not a JSON literal.
        for (payload, reason) in [
            (#"{"v": null}"#, SampleRejection.valueNotNumeric),
            (#"{"v": [1, nul]}"#, .malformedJSON),
            (#"{"v": [1, nullx]}"#, .malformedJSON),
            (#"{"v": [null, null, null, null, null, null, null, null, null]}"#, .tooManyValues),
        ] {
            guard case .failure(let got) = decode(payload) else {
                Issue.record("accepted \(payload)")
                continue
            }
            #expect(got == reason, "\(payload)")
        }
    }

    @Test func missingAndStuckChannelsEncodeOnlyWhenThere() throws {
        var encoder = ForecastEncoder()
        let forecast: [Float] = [20, 1, 3]
        let channels: [UInt16] = [1, 0, 2]
        forecast.withUnsafeBufferPointer { f in
            channels.withUnsafeBufferPointer { c in
                Array("s".utf8).withUnsafeBytes { id in
                    encoder.encode(
                        stream: id, seq: 7, timestamp: nil, horizon: 1, forecast: f, updates: 6,
                        missing: UnsafeBufferPointer(rebasing: c[0..<1]), stuck: UnsafeBufferPointer(rebasing: c[1..<3]))
                }
            }
        }
        #expect(String(decoding: encoder.payload, as: UTF8.self)
            == #"{"stream":"s","seq":7,"t":null,"horizon":1,"forecast":[[20.0,1.0,3.0]],"lower":null,"upper":null,"anomaly":null,"updates":6,"missing":[1],"stuck":[0,2]}"#)
        forecast.withUnsafeBufferPointer { f in
            Array("s".utf8).withUnsafeBytes { id in
                encoder.encode(stream: id, seq: 8, timestamp: nil, horizon: 1, forecast: f, updates: 6)
            }
        }
        let text = String(decoding: encoder.payload, as: UTF8.self)
        #expect(!text.contains("missing") && !text.contains("stuck"), "v1's message, unchanged: \(text)")
    }

    @Test func streamIDsAreValidated() {
        func check(_ bytes: [UInt8]) -> SampleRejection? { bytes.withUnsafeBytes { validateStreamID($0) } }
        #expect(check(Array("plant-7/boiler/temp".utf8)) == nil)
        #expect(check(Array("température".utf8)) == nil)
        #expect(check([]) == .emptyTopic)
        #expect(check(Array(repeating: 0x61, count: 255)) == nil)
        #expect(check(Array(repeating: 0x61, count: 256)) == .topicTooLong)
        #expect(check([0x61, 0xFF, 0x62]) == .topicNotUTF8)
        #expect(check([0xC3]) == .topicNotUTF8)
    }

    @Test func forecastsEncodeAsDocumentedJSON() throws {
        var encoder = ForecastEncoder(topicPrefix: Array("fc/".utf8))
        let forecast: [Float] = [21.5, 0.1, -3, 1e-7, 123456.78, 3.4e38]
        forecast.withUnsafeBufferPointer { f in
            Array("boiler \"7\"".utf8).withUnsafeBytes { id in
                encoder.encode(stream: id, seq: 42, timestamp: 1_700_000_000.25, horizon: 3, forecast: f, updates: 41)
            }
        }
        #expect(String(decoding: encoder.topic, as: UTF8.self) == "fc/boiler \"7\"")
        let text = String(decoding: encoder.payload, as: UTF8.self)
        #expect(text == #"{"stream":"boiler \"7\"","seq":42,"t":1700000000.25,"horizon":3,"forecast":[[21.5,0.1],[-3.0,1e-07],[123456.78,3.4e+38]],"lower":null,"upper":null,"anomaly":null,"updates":41}"#)
        // Every number reads back as exactly the Float that was encoded.
        let object = try #require(try JSONSerialization.jsonObject(with: Data(encoder.payload)) as? [String: Any])
        let rows = try #require(object["forecast"] as? [[Double]])
        #expect(rows.flatMap { $0.map(Float.init) } == forecast)
        #expect(object["t"] as? Double == 1_700_000_000.25)
    }

    @Test func forecastsCarryTheInstantsTheyAreFor() throws {
        var encoder = ForecastEncoder()
        let forecast: [Float] = [1, 2, 3]
        func encode(timestamp: Double?, interval: Double?) -> String {
            forecast.withUnsafeBufferPointer { f in
                Array("s".utf8).withUnsafeBytes { id in
                    encoder.encode(stream: id, seq: 3, timestamp: timestamp, interval: interval, horizon: 3, forecast: f, updates: 2)
                }
            }
            return String(decoding: encoder.payload, as: UTF8.self)
        }
        #expect(encode(timestamp: 1_700_000_000, interval: 300) == #"{"stream":"s","seq":3,"t":1700000000.0,"horizon":3,"at":[1700000300,1700000600,1700000900],"forecast":[[1.0],[2.0],[3.0]],"lower":null,"upper":null,"anomaly":null,"updates":2}"#)
        // Rounded to the millisecond, without trailing zeros.
        #expect(encode(timestamp: 1_700_000_000.25, interval: 0.1004).contains(#""at":[1700000000.35,1700000000.451,1700000000.551]"#))
        #expect(encode(timestamp: -10, interval: 4.995).contains(#""at":[-5.005,-0.01,4.985]"#))
        #expect(encode(timestamp: 0, interval: 0.0004).contains(#""at":[0,0.001,0.001]"#))
        // Left out without a time, without an interval, or with instants that are no Unix seconds.
        for (t, interval) in [(nil, 300.0), (1_700_000_000, nil), (1_700_000_000, 0), (1_700_000_000, -300), (1e300, 1), (1e15 - 2, 1), (1, .nan)] as [(Double?, Double?)] {
            let text = encode(timestamp: t, interval: interval)
            #expect(!text.contains("\"at\""), "\(String(describing: t)), \(String(describing: interval)): \(text)")
            #expect(try JSONSerialization.jsonObject(with: Data(text.utf8)) is [String: Any])
        }
        // Every instant reads back as the millisecond it stands for.
        let text = encode(timestamp: 1_733_000_000.123, interval: 299.9876)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let at = try #require(object["at"] as? [Double])
        #expect(at.count == 3)
        for (p, instant) in at.enumerated() {
            #expect(abs(instant - (1_733_000_000.123 + Double(p + 1) * 299.9876)) <= 0.0005)
        }
    }

    @Test func bandsAndAnomalyEncodeAsDocumentedJSON() throws {
        var encoder = ForecastEncoder()
        let forecast: [Float] = [20, 1, 21, 1.5], lower: [Float] = [19.5, 0.75, .nan, .nan], upper: [Float] = [20.5, 1.25, .nan, .nan]
        forecast.withUnsafeBufferPointer { f in
            lower.withUnsafeBufferPointer { l in
                upper.withUnsafeBufferPointer { u in
                    Array("s".utf8).withUnsafeBytes { id in
                        encoder.encode(
                            stream: id, seq: 7, timestamp: nil, horizon: 2, forecast: f, lower: l, upper: u, anomaly: 0.25, updates: 6)
                    }
                }
            }
        }
        let text = String(decoding: encoder.payload, as: UTF8.self)
        // Horizon 2 has no band yet: its bounds are null, value by value.
        #expect(text == #"{"stream":"s","seq":7,"t":null,"horizon":2,"forecast":[[20.0,1.0],[21.0,1.5]],"lower":[[19.5,0.75],[null,null]],"upper":[[20.5,1.25],[null,null]],"anomaly":0.25,"updates":6}"#)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(encoder.payload)) as? [String: Any])
        #expect(object["anomaly"] as? Double == 0.25)
        // A stream of two targets: each one's score follows.
        let scores: [Float] = [0.25, 0.125]
        forecast.withUnsafeBufferPointer { f in
            scores.withUnsafeBytes { a in
                Array("s".utf8).withUnsafeBytes { id in
                    encoder.encode(stream: id, seq: 7, timestamp: nil, horizon: 2, forecast: f, anomaly: 0.25, targetAnomalies: a, updates: 6)
                }
            }
        }
        #expect(String(decoding: encoder.payload, as: UTF8.self).contains(#""anomaly":0.25,"anomalies":[0.25,0.125],"updates":6}"#))
    }

    @Test func shortestDecimalsRoundTrip() {
        var rng = SystemRandomNumberGenerator()
        var encoder = ForecastEncoder()
        for _ in 0..<5000 {
            let x = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
            guard x.isFinite else { continue }
            [x].withUnsafeBufferPointer { f in
                Array("s".utf8).withUnsafeBytes { encoder.encode(stream: $0, seq: 0, timestamp: nil, horizon: 1, forecast: f, updates: 0) }
            }
            let text = String(decoding: encoder.payload, as: UTF8.self)
            let number = text.split(separator: "[[")[1].split(separator: "]]")[0]
            #expect(Float(String(number)) == x, "\(x) written as \(number)")
        }
    }
}
