import RNNCore

// The daemon's internal messages between its threads, over ZeroMQ inproc PUSH/PULL pipes
// (bounded by their high-water marks). Each message is one frame holding a batch of records:
// the samples (or forecasts) that were ready at once, up to `RecordBatch.maxRecords`, so that a
// flood costs one inproc message per batch rather than per sample, while a lone sample still
// goes alone and at once. An empty frame means "no more": the stop marker that drains the
// pipeline in order on shutdown.
//
// Batch:                      ([record length: UInt32][record])+
// Sample (ingest → worker):   [id length: UInt8][id][received: UInt64][count: UInt16][has t: UInt8][t: Float64]
//                             [count × Float32]
// Forecast (worker → publisher): [id length: UInt8][id][received: UInt64][seq: Int64][has t: UInt8][t: Float64]
//                                [horizon: UInt16][width: UInt16][updates: Int64][horizon·width × Float32]
//                                [has band: UInt8][anomaly: Float64, NaN for none]
//                                [target scores: UInt16][that many × Float32: each target's anomaly score]
//                                [with a band: lower, then upper, horizon·width × Float32 each]
//                                [missing: UInt16][stuck: UInt16][missing + stuck channel indices × UInt16]
// `received` is when ingest took the sample off the SUB socket, CLOCK_MONOTONIC in nanoseconds
// (0 when metrics are off): the forecast carries it to the publisher, which measures the latency.
// Host byte order: both ends are this process.

/// A batch of records being written into one frame, in a buffer allocated once.
final class RecordBatch {
    /// Records per batch at most: bounds the latency a batch adds to its first record.
    static let maxRecords = 64

    private let buffer: UnsafeMutableRawPointer
    /// Bytes the buffer holds; at least one record of the largest size.
    let capacity: Int
    private(set) var bytes = 0
    private(set) var count = 0

    /// The frame size of a batch whose records are at most `largestRecord` bytes.
    static func capacity(largestRecord: Int) -> Int { max(16_384, 4 + largestRecord) }

    init(largestRecord: Int) {
        capacity = Self.capacity(largestRecord: largestRecord)
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
    }

    deinit { buffer.deallocate() }

    var isEmpty: Bool { count == 0 }

    /// Whether a record of `length` bytes still fits (else: send the batch first).
    func fits(_ length: Int) -> Bool { count < Self.maxRecords && bytes + 4 + length <= capacity }

    /// Where the next record is to be written; `append(length:)` then takes it in.
    var next: UnsafeMutableRawPointer { buffer + bytes + 4 }

    func append(length: Int) {
        buffer.storeBytes(of: UInt32(length), toByteOffset: bytes, as: UInt32.self)
        bytes += 4 + length
        count += 1
    }

    /// The batch as a frame to send.
    var frame: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: buffer, count: bytes) }

    func clear() {
        bytes = 0
        count = 0
    }

    /// Calls `body` with each record of a received batch frame, in order.
    static func forEach(in frame: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        var o = 0
        while o < frame.count {
            let length = Int(frame.loadUnaligned(fromByteOffset: o, as: UInt32.self))
            try body(UnsafeRawBufferPointer(rebasing: frame[(o + 4)..<(o + 4 + length)]))
            o += 4 + length
        }
    }
}

/// Writes and reads the sample record in a buffer owned by the caller.
enum SampleRecord {
    static func size(idLength: Int, count: Int) -> Int { 1 + idLength + 8 + 2 + 1 + 8 + 4 * count }

    /// Writes the record into `out` (at least `size(...)` bytes); returns its length.
    static func write(
        id: UnsafeRawBufferPointer, received: UInt64, values: UnsafeBufferPointer<Float>, timestamp: Double?,
        into out: UnsafeMutableRawPointer
    ) -> Int {
        var o = 0
        out.storeBytes(of: UInt8(id.count), toByteOffset: o, as: UInt8.self); o += 1
        out.advanced(by: o).copyMemory(from: id.baseAddress!, byteCount: id.count); o += id.count
        out.storeBytes(of: received, toByteOffset: o, as: UInt64.self); o += 8
        out.storeBytes(of: UInt16(values.count), toByteOffset: o, as: UInt16.self); o += 2
        out.storeBytes(of: timestamp == nil ? 0 : 1, toByteOffset: o, as: UInt8.self); o += 1
        out.storeBytes(of: timestamp ?? 0, toByteOffset: o, as: Double.self); o += 8
        out.advanced(by: o).copyMemory(from: values.baseAddress!, byteCount: 4 * values.count)
        return o + 4 * values.count
    }

    struct View {
        var id: UnsafeRawBufferPointer
        var received: UInt64
        var timestamp: Double?
        var values: UnsafeRawBufferPointer  // count × Float32, possibly unaligned
        var count: Int { values.count / 4 }
        func value(_ i: Int) -> Float { values.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
    }

    static func read(_ frame: UnsafeRawBufferPointer) -> View {
        let idLength = Int(frame[0])
        var o = 1 + idLength
        let id = UnsafeRawBufferPointer(rebasing: frame[1..<o])
        let received = frame.loadUnaligned(fromByteOffset: o, as: UInt64.self); o += 8
        let count = Int(frame.loadUnaligned(fromByteOffset: o, as: UInt16.self)); o += 2
        let hasTime = frame[o] == 1; o += 1
        let t = frame.loadUnaligned(fromByteOffset: o, as: Double.self); o += 8
        return View(
            id: id, received: received, timestamp: hasTime ? t : nil,
            values: UnsafeRawBufferPointer(rebasing: frame[o..<(o + 4 * count)]))
    }
}

/// Writes and reads the forecast record.
enum ForecastRecord {
    /// The largest record of a forecast of `values` values (with its band) of a stream of
    /// `channels` inputs (each of which may be both missing and stuck).
    static func size(idLength: Int, values: Int, channels: Int) -> Int {
        1 + idLength + 8 + 8 + 1 + 8 + 8 + 2 + 2 + 8 + 4 * values + 1 + 8 + 2 + 4 * values + 8 * values + 4 + 4 * channels
    }

    /// Writes the record of `forecaster`'s latest forecast, with the sample's `missing` channels
    /// (carried forward) and the stream's `stuck` ones; returns its length.
    static func write(
        id: UnsafeRawBufferPointer, received: UInt64, seq: Int, timestamp: Double?, forecaster: Forecaster,
        missing: ArraySlice<UInt16> = [], stuck: ArraySlice<UInt16> = [], into out: UnsafeMutableRawPointer
    ) -> Int {
        let forecast = forecaster.forecast
        var o = write(
            id: id, received: received, seq: seq, timestamp: timestamp, interval: forecaster.samplingInterval,
            horizon: forecaster.horizon, forecast: forecast, updates: forecaster.trainer.counters.updates, into: out)
        let band = forecaster.hasBand
        out.storeBytes(of: band ? 1 : 0, toByteOffset: o, as: UInt8.self); o += 1
        out.storeBytes(of: forecaster.anomaly ?? .nan, toByteOffset: o, as: Double.self); o += 8
        // Each target's score, for a stream of several targets that has a score.
        let targets = forecaster.anomaly == nil || forecaster.targets.count < 2 ? 0 : forecaster.targets.count
        out.storeBytes(of: UInt16(targets), toByteOffset: o, as: UInt16.self); o += 2
        for j in 0..<targets {
            out.storeBytes(of: Float(forecaster.anomaly(target: j) ?? .nan), toByteOffset: o, as: Float.self); o += 4
        }
        if band {
            let bytes = 4 * forecast.count
            out.advanced(by: o).copyMemory(from: forecaster.lower.baseAddress!, byteCount: bytes)
            out.advanced(by: o + bytes).copyMemory(from: forecaster.upper.baseAddress!, byteCount: bytes)
            o += 2 * bytes
        }
        out.storeBytes(of: UInt16(missing.count), toByteOffset: o, as: UInt16.self); o += 2
        out.storeBytes(of: UInt16(stuck.count), toByteOffset: o, as: UInt16.self); o += 2
        for channel in missing { out.storeBytes(of: channel, toByteOffset: o, as: UInt16.self); o += 2 }
        for channel in stuck { out.storeBytes(of: channel, toByteOffset: o, as: UInt16.self); o += 2 }
        return o
    }

    /// Writes the record up to the forecast's values; returns its length so far.
    private static func write(
        id: UnsafeRawBufferPointer, received: UInt64, seq: Int, timestamp: Double?, interval: Double?, horizon: Int,
        forecast: UnsafeBufferPointer<Float>, updates: Int, into out: UnsafeMutableRawPointer
    ) -> Int {
        var o = 0
        out.storeBytes(of: UInt8(id.count), toByteOffset: o, as: UInt8.self); o += 1
        out.advanced(by: o).copyMemory(from: id.baseAddress!, byteCount: id.count); o += id.count
        out.storeBytes(of: received, toByteOffset: o, as: UInt64.self); o += 8
        out.storeBytes(of: Int64(seq), toByteOffset: o, as: Int64.self); o += 8
        out.storeBytes(of: timestamp == nil ? 0 : 1, toByteOffset: o, as: UInt8.self); o += 1
        out.storeBytes(of: timestamp ?? 0, toByteOffset: o, as: Double.self); o += 8
        out.storeBytes(of: interval ?? .nan, toByteOffset: o, as: Double.self); o += 8
        out.storeBytes(of: UInt16(horizon), toByteOffset: o, as: UInt16.self); o += 2
        out.storeBytes(of: UInt16(forecast.count / horizon), toByteOffset: o, as: UInt16.self); o += 2
        out.storeBytes(of: Int64(updates), toByteOffset: o, as: Int64.self); o += 8
        out.advanced(by: o).copyMemory(from: forecast.baseAddress!, byteCount: 4 * forecast.count)
        return o + 4 * forecast.count
    }

    struct View {
        var id: UnsafeRawBufferPointer
        var received: UInt64
        var seq: Int
        var timestamp: Double?
        /// The stream's sampling interval in seconds when the forecaster has estimated it.
        var interval: Double?
        var horizon: Int
        var updates: Int
        var values: UnsafeRawBufferPointer
        /// The band's bounds (same count as `values`), empty without a band.
        var lower: UnsafeRawBufferPointer
        var upper: UnsafeRawBufferPointer
        var anomaly: Double?
        /// Each target's anomaly score (Float32 each, possibly unaligned): empty for a stream of
        /// one target, and when there is no score.
        var targetAnomalies: UnsafeRawBufferPointer
        /// The channels carried forward in the sample, and those stuck: UInt16 each, possibly unaligned.
        var missing: UnsafeRawBufferPointer
        var stuck: UnsafeRawBufferPointer
    }

    static func read(_ frame: UnsafeRawBufferPointer) -> View {
        let idLength = Int(frame[0])
        var o = 1 + idLength
        let id = UnsafeRawBufferPointer(rebasing: frame[1..<o])
        let received = frame.loadUnaligned(fromByteOffset: o, as: UInt64.self); o += 8
        let seq = Int(frame.loadUnaligned(fromByteOffset: o, as: Int64.self)); o += 8
        let hasTime = frame[o] == 1; o += 1
        let t = frame.loadUnaligned(fromByteOffset: o, as: Double.self); o += 8
        let interval = frame.loadUnaligned(fromByteOffset: o, as: Double.self); o += 8
        let horizon = Int(frame.loadUnaligned(fromByteOffset: o, as: UInt16.self)); o += 2
        let width = Int(frame.loadUnaligned(fromByteOffset: o, as: UInt16.self)); o += 2
        let updates = Int(frame.loadUnaligned(fromByteOffset: o, as: Int64.self)); o += 8
        let n = 4 * horizon * width
        let values = UnsafeRawBufferPointer(rebasing: frame[o..<(o + n)]); o += n
        let band = frame[o] == 1; o += 1
        let anomaly = frame.loadUnaligned(fromByteOffset: o, as: Double.self); o += 8
        let targets = Int(frame.loadUnaligned(fromByteOffset: o, as: UInt16.self)); o += 2
        let targetAnomalies = UnsafeRawBufferPointer(rebasing: frame[o..<(o + 4 * targets)]); o += 4 * targets
        let lower = UnsafeRawBufferPointer(rebasing: frame[o..<(o + (band ? n : 0))])
        let upper = UnsafeRawBufferPointer(rebasing: frame[(o + lower.count)..<(o + 2 * lower.count)])
        o += 2 * lower.count
        let missingCount = Int(frame.loadUnaligned(fromByteOffset: o, as: UInt16.self)); o += 2
        let stuckCount = Int(frame.loadUnaligned(fromByteOffset: o, as: UInt16.self)); o += 2
        let missing = UnsafeRawBufferPointer(rebasing: frame[o..<(o + 2 * missingCount)]); o += 2 * missingCount
        let stuck = UnsafeRawBufferPointer(rebasing: frame[o..<(o + 2 * stuckCount)])
        return View(
            id: id, received: received, seq: seq, timestamp: hasTime ? t : nil, interval: interval.isNaN ? nil : interval,
            horizon: horizon, updates: updates,
            values: values, lower: lower, upper: upper, anomaly: anomaly.isNaN ? nil : anomaly,
            targetAnomalies: targetAnomalies, missing: missing, stuck: stuck)
    }
}
