// What the JSON of `rnnd replay --metrics` and `rnnd checkpoint list/show --json` share: the
// encoder's settings, and the two ways a value is `null` in it. The objects themselves are
// `Encodable` structs beside the text they mirror (ReplayOutput.swift, CheckpointInspection.swift).

import Foundation

/// `value` as one line of JSON. Keys are sorted: `JSONEncoder` does not keep the order in which
/// they are encoded, and sorted is the same order at every run. Slashes are not escaped (paths
/// read as paths). Encoding cannot fail: every number is a ``JSONNumber``, which writes what JSON
/// cannot hold as `null`.
func jsonLine(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    do {
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    } catch {
        preconditionFailure("JSON encoding failed: \(error)")
    }
}

/// A number of the JSON: `null` when missing or not finite (JSON has no NaN or infinity, and
/// `JSONEncoder` refuses them). A `JSONNumber?` that is nil leaves its key out.
struct JSONNumber: Encodable, ExpressibleByFloatLiteral {
    var value: Double?

    init(_ value: Double?) { self.value = value }
    init(floatLiteral value: Double) { self.value = value }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value, value.isFinite { try container.encode(value) } else { try container.encodeNil() }
    }
}

/// An optional whose key the JSON always has, `null` when it is nil: synthesized `Encodable`
/// leaves a nil optional's key out, and these objects list every key whether or not it has a value.
@propertyWrapper
struct ExplicitNull<Value: Encodable>: Encodable {
    var wrappedValue: Value?

    init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}
