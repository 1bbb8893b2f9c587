import Foundation
@testable import RNNWire
import Testing
import TestSupport

/// The sample decoder's fuzzing corpus (`FuzzCorpus/`, minimised by `scripts/fuzz minimize`)
/// replayed through the decoder, each input checked by the oracle the fuzzer uses
/// (`SampleDecoderOracle`: the limits of an accepted sample, the binary layout from the protocol's
/// table, Foundation's JSONSerialization as a second JSON parser), and each finding of the fuzzer
/// (`FuzzCorpus/regressions/`) kept with what the decoder says of it now.
@Suite(.timeLimit(.minutes(1)))
struct FuzzCorpusTests {
    /// The limit the fuzzer decodes with (fuzz/SampleDecoderFuzzer.swift).
    static let maxValues = 8

    /// The files of `FuzzCorpus/kind`, by name. Binary inputs are stored without the 0x01 marker
    /// the binary fuzzer puts in front of each.
    static func inputs(_ kind: String) throws -> [(name: String, payload: [UInt8])] {
        let directory = try #require(Bundle.module.url(forResource: "FuzzCorpus", withExtension: nil)).appendingPathComponent(kind)
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map { name in
            let bytes = try [UInt8](Data(contentsOf: directory.appendingPathComponent(name)))
            return (name, kind == "binary" ? [0x01] + bytes : bytes)
        }
    }

    static func decode(_ payload: [UInt8]) -> Result<SampleDecoderOracle.Sample, SampleDecoderOracle.ReasonName> {
        var values = [Float](repeating: .nan, count: maxValues)
        let result = payload.withUnsafeBytes { p in
            values.withUnsafeMutableBufferPointer { SampleDecoder(maxValues: maxValues).decode(p, into: $0) }
        }
        return switch result {
        case .success(let sample): .success(.init(values: Array(values.prefix(sample.count)), timestamp: sample.timestamp))
        case .failure(let reason): .failure(.init(reason.rawValue))
        }
    }

    @Test(arguments: ["json", "binary", "regressions"])
    func everyInputMeetsTheOracle(kind: String) throws {
        let inputs = try Self.inputs(kind)
        #expect(inputs.count >= (kind == "regressions" ? 6 : 20), "\(kind): \(inputs.count) inputs")
        var accepted = 0
        for (name, payload) in inputs {
            let answer = Self.decode(payload)
            if case .success = answer { accepted += 1 }
            let problems = SampleDecoderOracle.violations(payload: payload, answer: answer, maxValues: Self.maxValues)
            #expect(problems.isEmpty, "\(kind)/\(name): \(problems)")
            let id = payload.withUnsafeBytes { validateStreamID($0) }?.rawValue
            #expect(id == SampleDecoderOracle.streamIDReason(payload), "\(kind)/\(name) as a stream id")
        }
        // The corpus exercises both answers, not only refusals.
        if kind != "regressions" { #expect(accepted > 0 && accepted < inputs.count, "\(kind): \(accepted) of \(inputs.count) accepted") }
    }

    /// What each finding was, and what the decoder says of it now (docs/security.md, "Fuzzing").
    @Test func theFindingsStayFixed() throws {
        let regressions = Dictionary(uniqueKeysWithValues: try Self.inputs("regressions"))
        func answer(_ name: String) throws -> Result<SampleDecoderOracle.Sample, SampleDecoderOracle.ReasonName> {
            Self.decode(try #require(regressions[name], "FuzzCorpus/regressions/\(name)"))
        }
        // A key with a byte that is not UTF-8 was accepted: JSON is UTF-8, and a parser
        // differential is where poisoned input hides. Refused now.
        #expect(try answer("json-invalid-utf8-in-a-key") == .failure(.init("malformed_json")))
        // A valid number of 500 digits was refused as malformed: read now.
        #expect(try answer("json-a-number-of-500-digits") == .success(.init(values: [0.1], timestamp: nil)))
        // Findings of the oracle, not of the decoder. Foundation reads an integer beyond 64 bits
        // as a decimal whose float64 is not the nearest, and its float64 is 17 steps off for
        // 1700001700000000.21e39 (strtod's, the decoder's, is exact in both).
        #expect(try answer("json-oracle-a-time-beyond-64-bit-integers") == .success(.init(values: [94], timestamp: 1.3877777777777778e95)))
        #expect(try answer("json-oracle-foundation-rounds-a-large-exponent") == .success(.init(values: [2.5, 93, 2], timestamp: 1.7000017000000004e54)))
        // The decoder stops at the first fault it meets: a bad "t" before the end, where "v" is missing.
        #expect(try answer("json-oracle-a-bad-time-before-a-missing-v") == .failure(.init("bad_timestamp")))
        // Foundation drops U+FEFF from the start of a key, so it read "t" where the key is
        // "\u{FEFF}t"; the decoder rightly ignores that key.
        #expect(try answer("json-oracle-bom-at-the-start-of-a-key") == .success(.init(values: [1], timestamp: nil)))
    }
}
