import Foundation
import RNNCore
import RNNDaemon
@testable import RNNState
import Testing

/// Clock faults through the real binary (docs/protocol.md, "Clock faults"): a sample stamped in
/// 2100 is refused alone, a clock set back is taken at its third sample, and a stream saved with
/// a latest time in 2100 (by an rnnd before the future check) learns again; and the forecasts'
/// `at`, the instants they are for.
@Suite(.timeLimit(.minutes(1)))
struct ClockFaultsEndToEndTests {
    typealias RunningDaemon = DaemonEndToEndTests.RunningDaemon
    typealias Service = ServiceEndToEndTests

    static let year2100 = 4_102_444_800.0

    /// Sends `times` as samples of `stream` and returns the forecasts that came back, decoded,
    /// once `expected` of them have (or the deadline passed).
    static func exchange(_ daemon: RunningDaemon, stream: String, times: [Double], expected: Int) throws -> [[String: Any]] {
        let samplesIn = try daemon.await("samples in:"), forecastsOut = try daemon.await("forecasts out:")
        _ = try daemon.await("ready")
        let client = try ForecastClient(samplesIn: samplesIn, forecastsOut: forecastsOut, warmup: #"{"v": 1}"#)
        for (i, t) in times.enumerated() { try client.send(stream, #"{"v": \#(sin(Double(i) / 3)), "t": \#(t)}"#) }
        try client.collect(until: { $0[stream, default: []].count >= expected }, seconds: 20)
        return try client.messages[stream, default: []].map { payload in
            try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
        }
    }

    @Test func aFutureTimeIsRefusedAloneAndAClockSetBackIsTakenAtItsThirdSample() throws {
        let daemon = try RunningDaemon(Service.model)
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        // 5-minute samples from a day ago; one stamped in 2100 among them; then the clock goes
        // back an hour.
        let start = (Date().timeIntervalSince1970 / 300).rounded(.down) * 300 - 86_400
        var times = (0..<10).map { start + 300 * Double($0) }
        times.append(Self.year2100)
        times += (10..<20).map { start + 300 * Double($0) }
        let back = times.last! - 3600
        times += (1...15).map { back + 300 * Double($0) }
        var accepted = times
        accepted.remove(at: 10)
        accepted.removeSubrange(20..<22)  // the first two samples after the clock went back

        let forecasts = try Self.exchange(daemon, stream: "clock", times: times, expected: accepted.count)
        #expect(forecasts.compactMap { $0["t"] as? Double } == accepted, "every sample but the three refused, in order")
        #expect(forecasts.compactMap { $0["seq"] as? Int } == Array(1...accepted.count))
        // Forecasts carry the instant they are for once the stream's interval is estimated.
        #expect(forecasts.first?["at"] == nil, "no interval from one sample")
        for f in forecasts[1..<10] {
            #expect(f["at"] as? [Double] == [(f["t"] as? Double ?? 0) + 300], "\(f)")
        }
        #expect(daemon.stop() == 0)
        let summary = try daemon.await("stopped:")
        #expect(DaemonEndToEndTests.counter("future_time", in: summary) == 1, "\(summary)")
        #expect(DaemonEndToEndTests.counter("out_of_order", in: summary) == 2, "\(summary)")
        #expect(DaemonEndToEndTests.counter("clock_resets", in: summary) == 1, "\(summary)")
        let log = daemon.text
        #expect(log.contains("sample refused (future_time)") && log.contains("stream=clock"), "\(log)")
        #expect(log.contains("the stream's clock was set back"), "\(log)")
    }

    @Test func aStreamSavedWithALatestTimeIn2100LearnsAgainAfterTheResetCount() throws {
        let state = Service.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        // The record an older rnnd wrote after a sample stamped in 2100: the model of
        // Service.model's flags, its latest time in 2100.
        var c = DaemonConfiguration()
        c.model.cell = .gru
        c.model.hidden = 8
        c.model.window = 4
        let forecaster = Forecaster(configuration: c.modelConfiguration(inputs: 1))
        for i in 0..<9 { forecaster.step([Float(i % 3)], time: 1_700_000_000 + 300 * Double(i)) }
        var record: [UInt8] = []
        StreamRecord.encode(
            id: Array("locked".utf8), forecaster: forecaster, seq: 9, lastTimestamp: Self.year2100,
            modelJSON: StreamRecord.modelJSON(forecaster.configuration), savedAt: 1_700_003_000, into: &record)
        do {
            let store = try CheckpointStore(directory: state)
            try store.put(id: Array("locked".utf8), record: record, savedAt: 1_700_003_000)
        }

        let daemon = try RunningDaemon(Service.model + ["--state-dir", state])
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        let now = (Date().timeIntervalSince1970 / 60).rounded(.down) * 60
        let times = (0..<8).map { now - 600 + 60 * Double($0) }
        let forecasts = try Self.exchange(daemon, stream: "locked", times: times, expected: 6)
        #expect(forecasts.compactMap { $0["t"] as? Double } == Array(times[2...]), "the first two refused, then every one")
        #expect(forecasts.compactMap { $0["seq"] as? Int } == Array(10...15), "the restored stream goes on")
        #expect(daemon.stop() == 0)
        let summary = try daemon.await("stopped:")
        #expect(DaemonEndToEndTests.counter("out_of_order", in: summary) == 2, "\(summary)")
        #expect(DaemonEndToEndTests.counter("clock_resets", in: summary) == 1, "\(summary)")
    }
}
