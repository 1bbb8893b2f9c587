import Foundation
@testable import RNNCore
@testable import RNNDaemon
@testable import RNNState
@testable import RNNTools
import Testing
import ZeroMQ

/// The checkpoint format and store, in process: checksums, records, corruption, the store's
/// transactions and what it sets aside.
@Suite(.timeLimit(.minutes(1)))
struct CheckpointTests {
    /// XXH64 against values computed by python-xxhash 3 (`xxhash.xxh64(data, seed=0)`).
    @Test func xxh64MatchesTheReference() {
        let cases: [([UInt8], UInt64)] = [
            ([], 0xEF46_DB37_51D8_E999),
            (Array("a".utf8), 0xD24E_C4F1_A98C_6E5B),
            (Array("abc".utf8), 0x44BC_2CF5_AD77_0999),
            ((0..<3).flatMap { _ in (0...255).map(UInt8.init) } + Array("rnnd".utf8), 0x1062_172F_8124_E926),
        ]
        for (data, expected) in cases {
            #expect(data.withUnsafeBytes { xxh64($0) } == expected, "\(data.count) bytes")
        }
    }

    static func model(hidden: Int = 6) -> ModelConfiguration {
        var c = DaemonConfiguration()
        c.model.cell = .gru
        c.model.hidden = hidden
        c.model.window = 4
        return c.modelConfiguration(inputs: 2)
    }

    /// A record of a stream that has learned a few samples.
    static func record(id: String = "plant/a", hidden: Int = 6) -> [UInt8] {
        let forecaster = Forecaster(configuration: model(hidden: hidden))
        for i in 0..<9 { forecaster.step([Float(i), Float(i * i % 5)], time: 1_700_000_000 + Double(i)) }
        var out: [UInt8] = []
        StreamRecord.encode(
            id: Array(id.utf8), forecaster: forecaster, seq: 9, lastTimestamp: 1_700_000_008,
            modelJSON: StreamRecord.modelJSON(forecaster.configuration), savedAt: 1_800_000_000, into: &out)
        return out
    }

    @Test func aRecordRoundTrips() throws {
        let bytes = Self.record()
        let record = try StreamRecord.decode(bytes)
        #expect(record.id == Array("plant/a".utf8))
        #expect(record.seq == 9 && record.lastTimestamp == 1_700_000_008 && record.savedAt == 1_800_000_000)
        #expect(record.model == Self.model())
        #expect(record.encoded() == bytes, "decode and encode are inverse")
        let forecaster = try record.forecaster(current: Self.model())
        #expect(forecaster.trainer.counters.samples == 9)
        #expect(record.forecasterCounters == forecaster.counters && forecaster.counters.scored == 8 * 2)
        let peeked = try #require(bytes.withUnsafeBytes { StreamRecord.peek($0).map { (Array($0.id), $0.savedAt) } })
        #expect(peeked.0 == Array("plant/a".utf8) && peeked.1 == 1_800_000_000)
    }

    @Test func damageIsFoundAndNamed() {
        let bytes = Self.record()
        func problem(_ b: [UInt8]) -> RecordProblem? {
            do { _ = try StreamRecord.decode(b) } catch { return error }
            return nil
        }
        #expect(problem(Array(bytes.prefix(bytes.count / 2))) == .checksumMismatch)
        #expect(problem(Array(bytes.prefix(20))) == .truncated)
        for position in [0, 9, 30, bytes.count / 2, bytes.count - 1] {
            var flipped = bytes
            flipped[position] ^= 0x10
            let found = problem(flipped)
            #expect(found != nil, "a flipped bit at \(position) is found")
        }
        var flipped = bytes
        flipped[bytes.count / 2] ^= 1
        #expect(problem(flipped) == .checksumMismatch)
        // A newer format, with a valid checksum: refused for its version.
        var newer = Array(bytes.dropLast(8))
        let version = Int(StreamRecord.formatVersion) + 1
        newer[8] = UInt8(version)
        newer += withUnsafeBytes(of: newer.withUnsafeBytes { xxh64($0) }) { Array($0) }
        #expect(problem(newer) == .unsupportedVersion(version))
        #expect(problem(Array("RNNDSTRX".utf8) + bytes.dropFirst(8)) == .notARecord)
    }

    @Test func aChangedModelShapeIsRefusedAndOtherChangesAreTaken() throws {
        let record = try StreamRecord.decode(Self.record())
        #expect(throws: RecordProblem.modelChanged(["hidden 6 → 7"])) { try record.forecaster(current: Self.model(hidden: 7)) }
        var other = Self.model()
        other.cell = .lstm
        other.horizon = 2
        #expect(throws: RecordProblem.modelChanged(["cell gru → lstm", "horizon 1 → 2"])) { try record.forecaster(current: other) }
        var tuned = Self.model()
        tuned.learningRate = 0.01
        tuned.clipThreshold = 5
        tuned.updateEvery = 2
        let forecaster = try record.forecaster(current: tuned)
        #expect(forecaster.learningRate == 0.01 && forecaster.trainer.clipThreshold == 5)
        // A longer or shorter window keeps the latest samples and goes on (docs/checkpoints.md).
        for window in [2, 9] {
            var resized = Self.model()
            resized.window = window
            let restored = try record.forecaster(current: resized)
            #expect(restored.trainer.counters == forecaster.trainer.counters)
            let x: [Float] = Array(repeating: 0.5, count: resized.inputs)
            for _ in 0..<12 { #expect(restored.step(x) != .skippedNonFinite) }
        }
    }

    /// The direct expert's look-back sizes its regions of the state: a record of another one is
    /// not restored, and the setting is named; the experts combined may change. `checkpoint show`
    /// names both, as text and JSON.
    @Test func theDirectLookbackIsPartOfTheShapeAndTheExpertsAreNot() throws {
        var far = Self.model()
        far.horizon = 2
        let forecaster = Forecaster(configuration: far)
        for i in 0..<9 { forecaster.step([Float(i), Float(i * i % 5)], time: 1_700_000_000 + Double(i)) }
        let bytes = StreamRecord(id: Array("plant/far".utf8), forecaster: forecaster, seq: 9, lastTimestamp: 1_700_000_008, savedAt: 1_800_000_000).encoded()
        let record = try StreamRecord.decode(bytes)
        #expect(record.model.directLookback == nil && record.model.effectiveDirectLookback == 672)

        var shorter = far
        shorter.directLookback = 96
        #expect(throws: RecordProblem.modelChanged(["direct_lookback 672 → 96"])) { try record.forecaster(current: shorter) }
        #expect(RestoreProblems.settings["direct_lookback"] == "model.direct_lookback (--direct-lookback)")
        var same = far
        same.directLookback = 672
        #expect(record.shapeChanges(to: same) == [], "the derived look-back, set")
        var fewer = far
        fewer.experts = [.persistence, .network]
        #expect(try record.forecaster(current: fewer).counters == forecaster.counters)

        // A record of format 5 had no direct expert: any look-back takes it on.
        var older = record
        older.formatRead = 5
        #expect(older.shapeChanges(to: shorter) == [])
        // A look-back that only follows the horizon is not named beside it; one that was set is.
        var near = far
        near.horizon = 1
        #expect(record.shapeChanges(to: near) == ["horizon 2 → 1"])
        near.directLookback = 672
        #expect(record.shapeChanges(to: near) == ["horizon 2 → 1"])
        near.directLookback = 96
        #expect(record.shapeChanges(to: near) == ["horizon 2 → 1", "direct_lookback 672 → 96"])

        let shown = RecordDescription(source: "far.rnndckpt", bytes: bytes)
        let text = shown.text()
        #expect(text.contains("forecast            ensemble (persistence, smoothing, linear 4 lags, network, direct 672 samples, seasonal)"), "\(text)")
        #expect(text.contains("--linear-lags 4 --direct-lookback 672 --coverage") && !text.contains("--experts"), "\(text)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(shown.json().utf8)) as? [String: Any])
        let model = try #require(object["model"] as? [String: Any])
        #expect(model["direct_lookback"] as? Int == 672)
        #expect(model["experts"] as? [String] == ["persistence", "smoothing", "linear", "network", "direct", "seasonal"])
        #expect(object["format_version"] as? Int == Int(StreamRecord.formatVersion))

        // Under a configuration of fewer experts, and of none but the network.
        let narrowed = RecordDescription(source: "far.rnndckpt", bytes: bytes, configured: ("narrow.toml", fewer))
        #expect(narrowed.configurationChanges == [])
        fewer.linearLags = 0
        fewer.experts = [.persistence, .linear, .direct]
        let flags = modelFlags(fewer)
        #expect(flags.contains("--direct-lookback 672 --experts persistence,linear,direct"), "\(flags)")
        #expect(combinedExperts(fewer) == [.persistence, .direct], "the linear model is off")
        fewer.ensemble = false
        #expect(combinedExperts(fewer) == [.network])
        #expect(combinedExperts(Self.model()) == [.persistence, .smoothing, .linear, .network], "no direct expert at horizon 1")
    }

    /// A record written before format 6 has no `directLookback` or `experts` in its model's JSON:
    /// they read as not set. A model that sets neither writes neither.
    @Test func aModelWithoutTheNewKeysReadsThemAsNotSet() throws {
        var bytes = Self.record()
        let json = String(decoding: StreamRecord.modelJSON(Self.model()), as: UTF8.self)
        #expect(!json.contains("directLookback") && !json.contains("experts"), "\(json)")
        bytes[8] = 5
        bytes = Array(bytes.dropLast(8))
        bytes += withUnsafeBytes(of: bytes.withUnsafeBytes { xxh64($0) }) { Array($0) }
        let record = try StreamRecord.decode(bytes)
        #expect(record.formatRead == 5 && record.model.directLookback == nil && record.model.experts == nil)
        #expect(record.model == Self.model())
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/format1")

    /// The rows of a fixture CSV (of `directory`, format1's unless given) after its header, split
    /// at commas.
    static func rows(_ name: String, in directory: URL = fixtures) throws -> [[Substring]] {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        return text.split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
    }

    /// Records written by rnnd before format 2 (Fixtures/format1/generate.sh builds that rnnd):
    /// migrated as they are read, their networks forecast what the old rnnd's `replay --from`
    /// forecast from them, row after row, while learning; the new forecaster around them starts
    /// from the window's samples, not from zeros.
    @Test(arguments: [("gru", 2, 200), ("elman", 1, 200)])
    func formatOneRecordsAreMigrated(name: String, inputs: Int, seq: Int) throws {
        let bytes = Array(try Data(contentsOf: Self.fixtures.appendingPathComponent("\(name).rnndckpt")))
        #expect(bytes[8] == 1, "the fixture is of format 1")
        var template = ModelConfiguration()
        template.linearLags = 3
        template.coverage = 0.8
        let record = try StreamRecord.decode(bytes, template: template)
        #expect(record.formatRead == 1 && record.seq == seq && record.model.inputs == inputs)
        #expect(record.model.formulation == .level && !record.model.calendar, "what format-1 networks were")
        #expect(record.model.linearLags == 3 && record.model.coverage == 0.8, "what format 1 lacked comes from the template")
        #expect(StreamRecord.shapeChanges(from: record.model, to: { var m = ModelConfiguration(); m.inputs = inputs; return m }())
            .contains("formulation level → change"))
        // Written again, it is a record of the current format, read as it was written.
        let again = try StreamRecord.decode(record.encoded())
        #expect(again.formatRead == StreamRecord.formatVersion && again.model == record.model && again.state == record.state)
        #expect(record.stateSummary?.counters.samples == (name == "gru" ? 400 : 200))

        let forecaster = try record.forecaster(current: record.model)
        let rows = try Self.rows("next.csv")
        let k = inputs, horizon = record.model.horizon
        var expected: [String: Double] = [:]
        for r in try Self.rows("\(name)-replay.csv") {
            for j in 0..<k { expected["\(r[0])/\(r[1])/\(j)"] = Double(r[2 + j]) }
        }
        var compared = 0, worst = 0.0
        let history = try Self.rows("history.csv").map { Double($0[1])! }
        let low = history.min()!, high = history.max()!, span = high - low
        for (m, row) in rows.enumerated() {
            let x = (0..<k).map { Float(row[1 + $0])! }
            let time = Double(1_700_000_000 + 3600 * (200 + m))
            #expect(forecaster.predict(x, time: time))
            for p in 1...horizon {
                for j in 0..<k {
                    guard let want = expected["\(m + p)/\(p)/\(j)"] else { continue }
                    let got = Double(forecaster.trainer.forecast[(p - 1) * k + j])
                    worst = max(worst, abs(got - want) / max(1, abs(want)))
                    compared += 1
                }
            }
            // The published forecast (the ensemble's) is a forecast of this series from the
            // first sample on: no expert starts at zero.
            let published = Double(forecaster.forecast[0])
            #expect(published > low - span && published < high + span, "row \(m): \(published)")
            forecaster.learn()
        }
        #expect(compared == (horizon == 2 ? 2 * 39 + 2 * 38 : 39))
        #expect(worst < 1e-4, "the network goes on as the old rnnd's: worst relative difference \(worst)")
    }

    /// A record written by rnnd before format 9 (Fixtures/format8/generate.sh builds that rnnd,
    /// `75af022`), whose novelty had a span of 5 samples: read as it is, the span dropped, it
    /// goes on as the old rnnd's `replay --from` went from it, row after row, while learning: the
    /// same forecasts and the same anomaly scores, the novelty's included (it scores from the
    /// 301st value, so a novelty started over would score nothing in these 60 rows).
    @Test func aFormatEightRecordGoesOnAsTheOldRnndWent() throws {
        try Self.expectGoesOnAsTheOldRnndWent(format: 8) { old, model, own in
            // Less the span of 5: three numbers after the novelty's quiet count and the target's
            // latest novelty, count and span 1.
            let spanOfFive = own + 8 * (ForecasterLayout(model, format: 8).noveltyHistory + 1 + 2 + 3)
            old.removeSubrange(spanOfFive..<(spanOfFive + 8 * 3))
        }
    }

    /// A record written by rnnd before format 10 (Fixtures/format9/generate.sh, `f2f8b33`, on
    /// Fixtures/format8's series), whose surprise had no routine: read as it is, it goes on as
    /// the old rnnd's `replay --from` went, the routine counting from 0.
    @Test func aFormatNineRecordGoesOnAsTheOldRnndWent() throws {
        try Self.expectGoesOnAsTheOldRnndWent(format: 9) { _, _, _ in }
    }

    /// A record written by rnnd before format 11 (Fixtures/format10/generate.sh, `fb7bb8b`, on
    /// Fixtures/format8's series), whose novelty watched no drift: read as it is, it goes on as
    /// the old rnnd's `replay --from` went, the drift's runs starting at 0.
    @Test func aFormatTenRecordGoesOnAsTheOldRnndWent() throws {
        try Self.expectGoesOnAsTheOldRnndWent(format: 10) { _, _, _ in }
    }

    /// A record written by rnnd before format 12 (Fixtures/format11/generate.sh, `a5861e5`, on
    /// Fixtures/format8's series), whose novelty remembered no shapes: read as it is, it goes on
    /// as the old rnnd's `replay --from` went, its shapes starting from none.
    @Test func aFormatElevenRecordGoesOnAsTheOldRnndWent() throws {
        try Self.expectGoesOnAsTheOldRnndWent(format: 11) { _, _, _ in }
    }

    /// Reads Fixtures/format`format`/gru.rnndckpt, a record an older rnnd wrote, and expects it
    /// written again as a record of the current format whose state is the old one, changed by
    /// `migrated` (given the old state's bytes, the model and the offset of the forecaster's
    /// numbers) into format 9's, plus the surprise's routine at 0 (format 10's, one number a
    /// target), the novelty's drift runs at 0 (format 11's, four numbers a target) and its shapes
    /// at 0 (format 12's, none remembered, last); then
    /// the forecasts and anomaly scores of the next 60 rows (Fixtures/format8/next.csv) as the
    /// old rnnd's `replay --from` made them (gru-replay.csv), but for the rule that came after
    /// format 9: an alert of the novelty's rank (0.92 or more) quiets both halves of the score for
    /// the next samples, where the rnnd of format 9 quieted only the half that alerted.
    static func expectGoesOnAsTheOldRnndWent(
        format: Int, migrated: (inout [UInt8], ModelConfiguration, Int) -> Void
    ) throws {
        let directory = Self.fixtures.deletingLastPathComponent().appendingPathComponent("format\(format)")
        let series = Self.fixtures.deletingLastPathComponent().appendingPathComponent("format8")
        let bytes = Array(try Data(contentsOf: directory.appendingPathComponent("gru.rnndckpt")))
        #expect(bytes[8] == format, "the fixture is of format \(format)")
        let record = try StreamRecord.decode(bytes)
        #expect(record.formatRead == format && record.seq == 400 && record.stateSummary?.counters.samples == 2000)
        #expect(record.shapeChanges(to: record.model).isEmpty)
        let forecaster = try record.forecaster(current: record.model)
        let again = try StreamRecord.decode(
            StreamRecord(id: record.id, forecaster: forecaster, seq: record.seq, lastTimestamp: record.lastTimestamp, savedAt: 0).encoded())
        #expect(again.formatRead == StreamRecord.formatVersion)
        let trainerBytes = Int(record.state.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let own = 8 + trainerBytes + 32
        var expectedState = record.state
        migrated(&expectedState, record.model, own)
        let layout = ForecasterLayout(record.model), k = record.model.targetChannels.count
        if format < 10 {
            expectedState.insert(contentsOf: [UInt8](repeating: 0, count: 8 * k), at: own + 8 * layout.anomalyRoutine)
        }
        if format < 11 {
            expectedState.insert(contentsOf: [UInt8](repeating: 0, count: 8 * NoveltyScore.driftCount(targets: k)), at: own + 8 * layout.noveltyDrift)
        }
        expectedState.insert(contentsOf: [UInt8](repeating: 0, count: 8 * NoveltyScore.shapeCount(targets: k)), at: own + 8 * layout.noveltyShape)
        let differs = zip(again.state, expectedState).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(again.state.count == expectedState.count && differs == nil,
                "\(again.state.count) bytes against \(expectedState.count); first difference at byte \(differs.map(String.init) ?? "none")")

        var expected: [Int: (forecast: Double, anomaly: Double)] = [:]
        for r in try Self.rows("gru-replay.csv", in: directory) where r[1] == "1" { expected[Int(r[0])!] = (Double(r[2])!, Double(r[5])!) }
        var made: Float = .nan, compared = 0, worstForecast = 0.0, worstAnomaly = 0.0, novelties = 0
        var quietUntil = -1, quieted = 0
        for (m, row) in try Self.rows("next.csv", in: series).enumerated() {
            #expect(forecaster.predict([Float(row[1])!], time: Double(1_700_000_000 + 3600 * (400 + m))))
            if let want = expected[m] {
                let anomaly = try #require(forecaster.anomaly)
                worstForecast = max(worstForecast, abs(Double(made) - want.forecast) / max(1, abs(want.forecast)))
                if m <= quietUntil {
                    if want.anomaly > 0 { quieted += 1 }
                    worstAnomaly = max(worstAnomaly, anomaly)
                } else {
                    worstAnomaly = max(worstAnomaly, abs(anomaly - want.anomaly))
                    if want.anomaly >= 0.92 {   // a novelty, or a surprise as certain
                        novelties += 1
                        quietUntil = m + Forecaster.anomalyQuietSamples
                    }
                }
                compared += 1
            }
            made = forecaster.forecast[0]
            forecaster.learn()
        }
        #expect(compared == 59 && novelties >= 1, "\(compared) rows compared, \(novelties) alerts of the novelty's rank")
        if format < 10 {
            #expect(quieted >= 1, "the old rnnd's alert from the other half, now quiet, is in these rows")
        } else {
            #expect(quieted == 0, "the old rnnd quieted both halves as this one does")
        }
        #expect(worstForecast < 1e-4, "the forecasts go on as the old rnnd's: worst relative difference \(worstForecast)")
        #expect(worstAnomaly < 1e-3, "the anomaly scores go on as the old rnnd's: worst difference \(worstAnomaly)")
    }

    @Test func theStoreCommitsWholeCheckpointsAndSetsRecordsAside() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-store-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try CheckpointStore(directory: directory)
        let a = Self.record(id: "a"), b = Self.record(id: "b")
        try store.transaction { writer in
            try writer.put(id: Array("a".utf8), record: a, savedAt: 1)
            try writer.put(id: Array("b".utf8), record: b, savedAt: 2)
        }
        // A transaction that fails commits nothing.
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try store.transaction { writer in
                try writer.put(id: Array("a".utf8), record: b, savedAt: 3)
                throw Boom()
            }
        }
        #expect(try store.record(id: Array("a".utf8)) == a)
        #expect(try store.list().map { String(decoding: $0.id, as: UTF8.self) } == ["a", "b"])
        #expect(try store.lastCheckpoint()?.streams == 2)

        try b.withUnsafeBytes { try store.setAside(id: Array("b".utf8), record: $0, problem: .checksumMismatch) }
        #expect(try store.list().count == 1)
        let aside = try store.setAsideList()
        #expect(aside.count == 1 && aside[0].reason == "checksum_mismatch" && aside[0].id == Array("b".utf8))

        // Set aside records come back whole, and a live record they replace is set aside in turn.
        try store.setAside([(Array("a".utf8), "model_changed", "hidden 6 → 7")])
        #expect(try store.list().isEmpty)
        let first = try #require(try store.setAsideList().first { $0.id == Array("a".utf8) })
        try store.put(id: Array("a".utf8), record: b, savedAt: 5)
        try store.restoreAside([(first.n, 1)], detail: "test")
        #expect(try store.record(id: Array("a".utf8)) == a)
        #expect(try store.setAsideList().map(\.reason).sorted() == ["checksum_mismatch", "replaced"])

        // Retention: the newest per stream, and an age.
        for _ in 0..<4 { try store.setAside([(Array("a".utf8), "deleted", "test")]); try store.put(id: Array("a".utf8), record: a, savedAt: 1) }
        #expect(try store.setAsideList().count == 6)
        let pruned = try store.pruneSetAside(days: 0, perStream: 3)
        #expect(pruned.records == 2 && pruned.bytes == 2 * a.count)
        #expect(try store.setAsideList().filter { $0.id == Array("a".utf8) }.map(\.reason) == ["deleted", "deleted", "deleted"], "the newest three of a")
        #expect(try store.pruneSetAside(days: 30, perStream: 0).records == 0, "all younger than 30 days")
        #expect(try store.pruneSetAside(days: 30, perStream: 0, now: Date().timeIntervalSince1970 + 31 * 86_400).records == 4)
        #expect(try store.setAsideList().isEmpty)
        try store.truncateLog()
        #expect(try FileManager.default.attributesOfItem(atPath: directory + "/rnnd.sqlite-wal")[.size] as? Int == 0)

        // A second daemon on the same directory is refused while the first holds it.
        let lock = try StateDirectoryLock(directory: directory)
        #expect(throws: CheckpointStoreError.self) { try StateDirectoryLock(directory: directory) }
        withExtendedLifetime(lock) {}
    }
}

extension CheckpointTests {
    /// A walk's streams count as saved only once the checkpoint thread says their commit went
    /// through, at the `seq` they were sent at; after a failure, or an outcome that never came,
    /// the next walk sends the same streams again.
    @Test func aWalksStreamsCountAsSavedOnlyOnceCommitted() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, type: .pull)
        try pull.setReceiveTimeout(.seconds(5))
        try pull.bind("inproc://checkpoint-walk-test")
        let push = try ZMQSocket(context, type: .push)
        try push.connect("inproc://checkpoint-walk-test")
        let learners = (0..<3).map { i in
            let learner = StreamLearner(id: Array("s\(i)".utf8), hash: UInt64(i), forecaster: Forecaster(configuration: Self.model()))
            learner.forecaster.step([Float(i), 1], time: 1_700_000_000)
            learner.seq = 1
            return learner
        }
        var walk = CheckpointWalk(worker: 7)
        var streams = WorkerStreams(store: nil)
        for learner in learners { streams.insert(learner) }
        /// One whole walk: the `seq` of each stream it sent.
        func walkOnce() throws -> [String: Int] {
            walk.start(streams)
            #expect(try walk.advance(streams, to: push, final: true))
            var sent: [String: Int] = [:]
            while case .frames(let frames) = try pull.receiveFrames(), let frame = frames.first {
                guard frame.first == CheckpointMessage.record.rawValue else {
                    #expect(frame == CheckpointMessage.frame(.walkDone, worker: 7, walk: walk.number))
                    return sent
                }
                let record = try StreamRecord.decode(Array(frame.dropFirst()))
                sent[String(decoding: record.id, as: UTF8.self)] = record.seq
            }
            Issue.record("the walk did not end")
            return sent
        }
        #expect(try walkOnce() == ["s0": 1, "s1": 1, "s2": 1])
        walk.failed()
        #expect(try walkOnce() == ["s0": 1, "s1": 1, "s2": 1], "nothing counted as saved")
        learners[1].seq = 2  // learns while the commit is under way
        walk.committed(&streams)
        #expect(try walkOnce() == ["s1": 2], "saved at the seq it was sent at")
        walk.committed(&streams)
        #expect(try walkOnce() == [:])
        learners[0].seq = 2
        #expect(try walkOnce() == ["s0": 2])
        #expect(try walkOnce() == ["s0": 2], "the outcome never came: not saved")

        // An unloaded stream with changes not committed goes as its parked record, until a walk
        // that sent it commits; one whose state is committed leaves nothing behind.
        streams.unload(learners[0]) { l, record in
            StreamRecord.encode(
                id: l.id, forecaster: l.forecaster, seq: l.seq, lastTimestamp: nil,
                modelJSON: StreamRecord.modelJSON(l.forecaster.configuration), savedAt: 1, into: &record)
        }
        streams.unload(learners[2]) { _, _ in Issue.record("a committed stream is not encoded") }
        #expect(streams.count == 1 && streams.parkedCount == 1)
        #expect(try walkOnce() == ["s0": 2])
        walk.failed()
        #expect(try walkOnce() == ["s0": 2], "still parked after a failed walk")
        walk.committed(&streams)
        #expect(streams.parkedCount == 0)
        #expect(try walkOnce() == [:])
    }

    /// The stream table after removals: every remaining stream is found, in its slot and in `all`.
    @Test func theStreamTableFindsEveryStreamAfterRemovals() {
        var table = StreamTable()
        var learners: [StreamLearner] = []
        for i in 0..<500 {
            let id = Array("stream-\(i)".utf8)
            // Few distinct hashes, so that probes collide and removals must shift entries back.
            let learner = StreamLearner(id: id, hash: UInt64(i % 37), forecaster: Forecaster(configuration: Self.model()))
            learners.append(learner)
            table.insert(learner)
        }
        var generator = SystemRandomNumberGenerator()
        var kept = learners
        for _ in 0..<300 {
            let victim = kept.remove(at: Int.random(in: 0..<kept.count, using: &generator))
            table.remove(victim)
            #expect(!victim.isLoaded)
        }
        #expect(table.count == 200 && table.all.count == 200)
        for learner in kept {
            let found = learner.id.withUnsafeBytes { table.find($0, hash: learner.hash) }
            #expect(found === learner)
            #expect(table.all[learner.position] === learner)
        }
        for learner in learners where !learner.isLoaded {
            #expect(learner.id.withUnsafeBytes { table.find($0, hash: learner.hash) } == nil)
        }
    }
}
