// The libFuzzer entry point for the sample decoder and the stream id check (docs/security.md,
// "Fuzzing"). scripts/fuzz compiles this file with Sources/RNNWire/SampleDecoder.swift and
// Sources/TestSupport/SampleDecoderOracle.swift into one program, with
// `-sanitize=fuzzer,address`; `swift build` never sees it. With `-D FUZZ_BINARY` every input
// gets the binary marker 0x01 in front, so that the fuzzer spends its time on that layout.

/// The decoder's limit while fuzzing: small, so that `too_many_values` is reached by short inputs.
let maxValues = 8
nonisolated(unsafe) let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: maxValues)

/// One input: decoded as a payload and checked by the oracle, then checked as a stream id.
/// A violated property stops the program, which libFuzzer reports as a crash with the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    #if FUZZ_BINARY
    input.insert(0x01, at: 0)
    #endif
    let decoder = SampleDecoder(maxValues: maxValues)
    let result = input.withUnsafeBytes { decoder.decode($0, into: values) }
    let answer: Result<SampleDecoderOracle.Sample, SampleDecoderOracle.ReasonName> = switch result {
    case .success(let sample): .success(.init(values: Array(values.prefix(sample.count)), timestamp: sample.timestamp))
    case .failure(let reason): .failure(.init(reason.rawValue))
    }
    let problems = SampleDecoderOracle.violations(payload: input, answer: answer, maxValues: maxValues)
    // fatalError, not precondition: its message survives -O.
    if !problems.isEmpty { fatalError("payload: \(problems.joined(separator: "; "))") }

    let id = input.withUnsafeBytes { validateStreamID($0) }?.rawValue
    let expected = SampleDecoderOracle.streamIDReason(input)
    if id != expected { fatalError("stream id: validateStreamID says \(id ?? "valid"), expected \(expected ?? "valid")") }
    return 0
}
