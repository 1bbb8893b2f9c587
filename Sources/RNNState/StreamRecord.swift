import Foundation
import RNNCore
import RNNWire

/// One stream's checkpoint: everything needed to continue it exactly (docs/checkpoints.md).
///
/// Layout, host byte order (the byte-order mark refuses a record from a machine of the other
/// order), every field unaligned:
///
///     magic "RNNDSTRM"                        8 bytes
///     format version                          UInt16 (8)
///     byte-order mark 0x0102                  UInt16
///     scalar bytes (4: Float32)               UInt8, then 3 reserved bytes (0)
///     stream id                               UInt16 length, bytes
///     model configuration as JSON             UInt32 length, bytes
///     seq, then whether t is set and t        Int64, UInt8, Float64
///     saved at (Unix seconds)                 Float64
///     forecaster state (TrainerState.swift)   UInt64 length, bytes
///     XXH64 of all the bytes before it        UInt64
public struct StreamRecord: Sendable, Equatable {
    /// 12: the forecaster's state (the network's, then the ensemble's, bands', drift's, its
    /// clock and outlier gate, the anomaly score's statistics: the surprise's and the
    /// novelty's, the direct expert's and the seasonal expert's, the novelty's residual and its
    /// profile, the surprise's routine, the novelty's drift runs and shapes). 12 added the
    /// shapes; 11 the drift runs; 10 the routine's count; 9 dropped a novelty span;
    /// 8 added the novelty's residual and profile; 7 the seasonal expert (a sixth expert's column
    /// in the combination and the forecast history, its profiles); 6 the direct expert (a fifth
    /// column, its regions, the bands' debts); 5 the novelty, 4 the anomaly statistics, 3 the
    /// clock and the gate. Formats 2 to 11 are read as
    /// they are (the forecaster fills in what they lack or drops what this one has not:
    /// `Forecaster.newFormatThreeRegions`, `newFormatFourRegions`, `newFormatFiveRegions`,
    /// `newExpertRegions`, `newNoveltySpans`); 1 held the network's alone, and is migrated as it
    /// is read (``decode(_:template:)``).
    public static let formatVersion = UInt16(Forecaster.recordFormat)
    package static let magic = Array("RNNDSTRM".utf8)
    package static let byteOrderMark: UInt16 = 0x0102

    public var id: [UInt8]
    /// The configuration the stream's model was created with (its input width included).
    public var model: ModelConfiguration
    public var seq: Int
    public var lastTimestamp: Double?
    public var savedAt: Double
    /// `Forecaster.writeState` bytes.
    public var state: [UInt8]
    /// The format the record was read in: ``formatVersion``, or 1 for a record migrated as it
    /// was read (its `model` and `state` are then format 2's, what ``encoded()`` writes).
    public var formatRead: UInt16 = formatVersion

    public init(id: [UInt8], model: ModelConfiguration, seq: Int, lastTimestamp: Double?, savedAt: Double, state: [UInt8]) {
        self.id = id
        self.model = model
        self.seq = seq
        self.lastTimestamp = lastTimestamp
        self.savedAt = savedAt
        self.state = state
    }

    /// A record of `forecaster` (taken between two samples) as stream `id`: what `rnnd fit` writes.
    public init(id: [UInt8], forecaster: Forecaster, seq: Int, lastTimestamp: Double?, savedAt: Double) {
        var state = [UInt8](repeating: 0, count: forecaster.stateByteCount)
        state.withUnsafeMutableBytes { forecaster.writeState(into: $0) }
        self.init(id: id, model: forecaster.configuration, seq: seq, lastTimestamp: lastTimestamp, savedAt: savedAt, state: state)
    }

    /// The stream id as text when it is UTF-8, else in hex (`0x...`).
    public var printableID: String { printableStreamID(id) }

    /// The network trainer's counters and normaliser, read from the state without building the
    /// forecaster; nil when the state is too short for them.
    public var stateSummary: TrainerStateSummary? {
        state.withUnsafeBytes { b in
            Forecaster.trainerState(in: b).flatMap { TrainerStateSummary(state: $0, inputs: model.inputs) }
        }
    }

    /// The forecaster's own counters (drifts, band coverage, outliers, level shifts, segments),
    /// read the same way.
    public var forecasterCounters: ForecasterCounters? {
        state.withUnsafeBytes { Forecaster.counters(in: $0, configuration: model) }
    }

    /// The XXH64 checksum an encoded record ends with (unchecked); nil when too short.
    public static func storedChecksum(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.count >= 8 else { return nil }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self) }
    }

    /// Appends the record of a live stream to `out`: its state, taken now, between two samples.
    /// `modelJSON` is `modelJSON(forecaster.configuration)`, computed once by the caller.
    package static func encode(
        id: [UInt8], forecaster: Forecaster, seq: Int, lastTimestamp: Double?, modelJSON json: [UInt8], savedAt: Double,
        into out: inout [UInt8]
    ) {
        let stateBytes = forecaster.stateByteCount
        let recordStart = out.count
        appendHeader(id: id, json: json, seq: seq, lastTimestamp: lastTimestamp, savedAt: savedAt, stateBytes: stateBytes, to: &out)
        let start = out.count
        appendZeroes(stateBytes, to: &out)
        out.withUnsafeMutableBytes { forecaster.writeState(into: UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
        appendChecksum(to: &out, from: recordStart)
    }

    /// The stream id and save time of an encoded record, without checking it (the checkpoint
    /// thread's key for a record a worker just wrote); nil when too short to hold them.
    package static func peek(_ bytes: UnsafeRawBufferPointer) -> (id: UnsafeRawBufferPointer, savedAt: Double)? {
        guard bytes.count >= 18 else { return nil }
        let idLength = Int(bytes.loadUnaligned(fromByteOffset: 16, as: UInt16.self))
        var o = 18 + idLength
        guard o + 4 <= bytes.count else { return nil }
        o += 4 + Int(bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)) + 8 + 1 + 8
        guard o + 8 <= bytes.count else { return nil }
        return (UnsafeRawBufferPointer(rebasing: bytes[18..<(18 + idLength)]), bytes.loadUnaligned(fromByteOffset: o, as: Double.self))
    }

    /// The record as bytes.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(state.count + id.count + 1024)
        Self.appendHeader(id: id, json: Self.modelJSON(model), seq: seq, lastTimestamp: lastTimestamp, savedAt: savedAt, stateBytes: state.count, to: &out)
        out.append(contentsOf: state)
        Self.appendChecksum(to: &out)
        return out
    }

    package static func modelJSON(_ model: ModelConfiguration) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // A ModelConfiguration always encodes (plain numbers, strings and enums).
        return Array(try! encoder.encode(model))
    }

    private static func appendHeader(
        id: [UInt8], json: [UInt8], seq: Int, lastTimestamp: Double?, savedAt: Double, stateBytes: Int, to out: inout [UInt8]
    ) {
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v) { out.append(contentsOf: $0) } }
        func put(_ v: Double) { withUnsafeBytes(of: v) { out.append(contentsOf: $0) } }
        out.append(contentsOf: magic)
        put(formatVersion)
        put(byteOrderMark)
        out.append(contentsOf: [4, 0, 0, 0])
        put(UInt16(id.count))
        out.append(contentsOf: id)
        put(UInt32(json.count))
        out.append(contentsOf: json)
        put(Int64(seq))
        out.append(lastTimestamp == nil ? 0 : 1)
        put(lastTimestamp ?? 0)
        put(savedAt)
        put(UInt64(stateBytes))
    }

    /// Zero bytes to append from, a slice at a time.
    private static let zeroes = [UInt8](repeating: 0, count: 16 << 10)

    /// Appends `count` zero bytes to `out`, copied from ``zeroes``: a memory copy in any build,
    /// with no allocation when `out` has the capacity. `append(contentsOf: repeatElement(0, ...))`
    /// is as fast in a release build, but in a debug build it goes a byte at a time through the
    /// generic collection code, 3.7 ms for a 20 kB record: the daemon the end-to-end tests run
    /// then parked records for room faster than it could write them (the 20,000-stream churn test).
    private static func appendZeroes(_ count: Int, to out: inout [UInt8]) {
        out.reserveCapacity(out.count + count + 8)
        zeroes.withUnsafeBufferPointer { z in
            var left = count
            while left > 0 {
                let n = min(left, z.count)
                out.append(contentsOf: UnsafeBufferPointer(rebasing: z[..<n]))
                left -= n
            }
        }
    }

    private static func appendChecksum(to out: inout [UInt8], from start: Int = 0) {
        let sum = out.withUnsafeBytes { xxh64(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        withUnsafeBytes(of: sum) { out.append(contentsOf: $0) }
    }

    /// Decodes and checks a record; throws why it cannot be used. A record of format 1 is
    /// migrated to format 2 (``migrateFormatOne(model:state:template:)``); `template` gives the
    /// settings format 1 did not have.
    public static func decode(_ bytes: UnsafeRawBufferPointer, template: ModelConfiguration? = nil) throws(RecordProblem) -> StreamRecord {
        var o = 0
        func need(_ n: Int) throws(RecordProblem) {
            guard n >= 0, o + n <= bytes.count - 8 else { throw .truncated }
        }
        func get<T: BitwiseCopyable>(_: T.Type) throws(RecordProblem) -> T {
            try need(MemoryLayout<T>.size)
            defer { o += MemoryLayout<T>.size }
            return bytes.loadUnaligned(fromByteOffset: o, as: T.self)
        }
        func take(_ n: Int) throws(RecordProblem) -> [UInt8] {
            try need(n)
            defer { o += n }
            return Array(bytes[o..<(o + n)])
        }
        guard bytes.count >= 24 + 8 else { throw .truncated }
        guard bytes.prefix(8).elementsEqual(magic) else { throw .notARecord }
        o = 8
        let version = try get(UInt16.self)
        let mark = try get(UInt16.self)
        if mark != byteOrderMark { throw .otherByteOrder }
        // The checksum first: a flipped bit anywhere is reported as such, not as what it broke.
        let stored = bytes.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self)
        guard xxh64(UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count - 8)])) == stored else { throw .checksumMismatch }
        guard (1...formatVersion).contains(version) else { throw .unsupportedVersion(Int(version)) }
        let scalar = try get(UInt8.self)
        o += 3
        guard scalar == 4 else { throw .unsupportedScalar(Int(scalar)) }
        let id = try take(Int(try get(UInt16.self)))
        let json = try take(Int(try get(UInt32.self)))
        var model: ModelConfiguration
        do {
            let text = version == 1 ? try formatOneModelJSON(json, template: template ?? ModelConfiguration()) : Data(json)
            model = try JSONDecoder().decode(ModelConfiguration.self, from: text)
        } catch {
            throw .unreadableConfiguration("\(error)")
        }
        let seq = Int(try get(Int64.self))
        let hasTime = try get(UInt8.self) == 1
        let t = try get(Double.self)
        let savedAt = try get(Double.self)
        let stateCount = try get(UInt64.self)
        guard stateCount <= UInt64(bytes.count) else { throw .truncated }
        var state = try take(Int(stateCount))
        guard o == bytes.count - 8 else { throw .trailingBytes }
        if version == 1 { (model, state) = try migrateFormatOne(model: model, state: state) }
        var record = StreamRecord(id: id, model: model, seq: seq, lastTimestamp: hasTime ? t : nil, savedAt: savedAt, state: state)
        record.formatRead = version
        return record
    }

    public static func decode(_ bytes: [UInt8], template: ModelConfiguration? = nil) throws(RecordProblem) -> StreamRecord {
        let result: Result<StreamRecord, RecordProblem> = bytes.withUnsafeBytes { b in
            do throws(RecordProblem) { return .success(try decode(b, template: template)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The model JSON of a format-1 record as format 2 writes it. Format 1 came before the
    /// formulations, the calendar inputs and the forecaster: its networks forecast the
    /// normalised level (`.level`) without calendar inputs, and the forecaster's settings (the
    /// ensemble, the linear model's lags, the direct expert's look-back, the experts combined, the
    /// band coverage, drift) come from `template`.
    static func formatOneModelJSON(_ json: [UInt8], template: ModelConfiguration) throws -> Data {
        struct NotAnObject: Error, CustomStringConvertible { var description: String { "the model is not a JSON object" } }
        guard var object = try JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else { throw NotAnObject() }
        object["formulation"] = Formulation.level.rawValue
        object["calendar"] = false
        object["ensemble"] = template.ensemble
        object["linearLags"] = template.linearLags
        if let lookback = template.directLookback { object["directLookback"] = lookback }
        if let experts = template.experts { object["experts"] = experts.map(\.name) }
        object["coverage"] = template.coverage
        object["drift"] = template.drift
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// A format-1 record's network state (the trainer's alone) as format 2's forecaster state:
    /// the network exactly as it was, a new forecaster around it (`Forecaster(continuing:)`).
    static func migrateFormatOne(model: ModelConfiguration, state: [UInt8]) throws(RecordProblem) -> (ModelConfiguration, [UInt8]) {
        if !model.problems().isEmpty { throw .unreadableConfiguration(model.problems().joined(separator: "; ")) }
        let result: Result<Forecaster, TrainerStateError> = state.withUnsafeBytes { b in
            do throws(TrainerStateError) {
                return .success(Forecaster(continuing: try OnlineTrainer<Float>(configuration: model, formatOneState: b)))
            } catch { return .failure(error) }
        }
        switch result {
        case .success(let forecaster):
            var migrated = [UInt8](repeating: 0, count: forecaster.stateByteCount)
            migrated.withUnsafeMutableBytes { forecaster.writeState(into: $0) }
            return (model, migrated)
        case .failure(let problem):
            throw .badState("format 1: \(problem.description)")
        }
    }

    /// A forecaster continuing this stream under `current` (the model the daemon would give the
    /// stream now), or why it cannot: the saved model must have the same shape.
    public func forecaster(current: ModelConfiguration, workspace: TrainingWorkspace<Float>? = nil) throws(RecordProblem) -> Forecaster {
        let changes = shapeChanges(to: current)
        guard changes.isEmpty else { throw .modelChanged(changes) }
        if !current.problems().isEmpty { throw .unreadableConfiguration(current.problems().joined(separator: "; ")) }
        let result: Result<Forecaster, TrainerStateError> = state.withUnsafeBytes { b in
            do throws(TrainerStateError) {
                return .success(try Forecaster(
                    configuration: current, workspace: workspace, state: b, saved: model))
            } catch { return .failure(error) }
        }
        switch result {
        case .success(let forecaster): return forecaster
        case .failure(let problem): throw .badState(problem.description)
        }
    }

    /// ``shapeChanges(from:to:)`` from this record's model. A record read in formats 2 to 5 had
    /// no direct expert: it takes whatever look-back `current` gives it (the expert starts new),
    /// so its look-back is not a change. (A format-1 record's model takes it from the template,
    /// and its migrated state has it.)
    public func shapeChanges(to current: ModelConfiguration) -> [String] {
        var saved = model
        if (2...5).contains(formatRead) { saved.directLookback = current.effectiveDirectLookback }
        return Self.shapeChanges(from: saved, to: current)
    }

    /// What differs between two models in ways a saved state cannot carry over: the cell, its
    /// sizes, what it forecasts and how (formulation, calendar inputs, the linear model's lags,
    /// the direct expert's look-back as the horizon makes it), and the optimizer's kind but
    /// between Adam and Adafactor. The window (the stream keeps its latest samples), the learning
    /// rate, clipping, loss, k1, the optimizer's constants, the ensemble, the experts combined,
    /// the band coverage and drift handling may change freely.
    public static func shapeChanges(from saved: ModelConfiguration, to current: ModelConfiguration) -> [String] {
        var changes: [String] = []
        func check<T: Equatable>(_ name: String, _ a: T, _ b: T) {
            if a != b { changes.append("\(name) \(a) → \(b)") }
        }
        check("cell", saved.cell, current.cell)
        if saved.cell == .elman { check("elman_activation", saved.elmanActivation, current.elmanActivation) }
        check("head activation", saved.headActivation, current.headActivation)
        check("hidden", saved.hidden, current.hidden)
        check("inputs", saved.inputs, current.inputs)
        check("targets", saved.targetChannels, current.targetChannels)
        check("horizon", saved.horizon, current.horizon)
        // A window of another length keeps the latest samples (OnlineTrainer.readState(from:saved:)).
        check("formulation", saved.formulation, current.formulation)
        check("calendar", saved.calendar, current.calendar)
        check("linear_lags", saved.linearLags, current.linearLags)
        // The direct expert's regions of the state are sized by it. Not set, it follows the
        // horizon: then a change of horizon alone is named as that.
        if saved.horizon == current.horizon || saved.directLookback != nil || current.directLookback != nil {
            check("direct_lookback", saved.effectiveDirectLookback, current.effectiveDirectLookback)
        }
        func kind(_ o: OptimizerKind) -> String {
            switch o {
            case .sgd: "sgd"
            case .momentum: "momentum"
            case .adam: "adam"
            case .adafactor: "adafactor"
            }
        }
        // Adam's moments become Adafactor's and back (Optimizer.adopt): not a change of shape.
        if !Optimizer<Float>.converts(from: saved.optimizer, to: current.optimizer) {
            check("optimizer", kind(saved.optimizer), kind(current.optimizer))
        }
        func normalised(_ n: Normalization) -> Bool { if case .none = n { false } else { true } }
        check("normalisation", normalised(saved.normalization), normalised(current.normalization))
        return changes
    }
}

/// Why a stored record was set aside.
public enum RecordProblem: Error, Equatable, CustomStringConvertible {
    case truncated
    case notARecord
    case otherByteOrder
    case checksumMismatch
    case unsupportedVersion(Int)
    case unsupportedScalar(Int)
    case unreadableConfiguration(String)
    case trailingBytes
    case badState(String)
    case modelChanged([String])

    /// A short reason, for counters and the `set_aside` table.
    public var reason: String {
        switch self {
        case .truncated: "truncated"
        case .notARecord: "not_a_record"
        case .otherByteOrder: "other_byte_order"
        case .checksumMismatch: "checksum_mismatch"
        case .unsupportedVersion: "unsupported_version"
        case .unsupportedScalar: "unsupported_scalar"
        case .unreadableConfiguration: "unreadable_configuration"
        case .trailingBytes: "trailing_bytes"
        case .badState: "bad_state"
        case .modelChanged: "model_changed"
        }
    }

    public var description: String {
        switch self {
        case .truncated: "the record is truncated"
        case .notARecord: "not an rnnd stream record (wrong magic bytes)"
        case .otherByteOrder: "written on a machine of the other byte order"
        case .checksumMismatch: "checksum mismatch: the record is corrupt"
        case .unsupportedVersion(let v): "format version \(v); this rnnd reads versions 1 to \(StreamRecord.formatVersion)"
        case .unsupportedScalar(let s): "\(s)-byte scalars; this rnnd stores 4-byte floats"
        case .unreadableConfiguration(let why): "its model configuration cannot be used: \(why)"
        case .trailingBytes: "bytes follow the forecaster state"
        case .badState(let why): "its forecaster state cannot be used: \(why)"
        case .modelChanged(let changes): "the configured model differs from the saved one: \(changes.joined(separator: ", "))"
        }
    }
}

