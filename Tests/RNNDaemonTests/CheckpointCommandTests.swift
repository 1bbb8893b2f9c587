import Foundation
import RNNCore
@testable import RNNDaemon
@testable import RNNState
@testable import RNNTools
import Testing
import ZeroMQ

/// `rnnd fit` and `rnnd checkpoint` as an operator uses them: the real binary fits a model on a
/// file's history, the record goes into a state directory, `rnnd run` restores it and continues
/// the stream with forecasts equal to `rnnd replay --from` on the same rows.
@Suite(.timeLimit(.minutes(1)))
struct CheckpointCommandTests {
    typealias Command = ReplayCommandTests.Command

    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try ReplayCommandTests.run(arguments)
    }

    /// Two columns, hourly: rows `range` of one series (the header first).
    static func csv(_ range: Range<Int>) -> String {
        var text = "time,temp,load\n"
        for r in range {
            let temp = String(format: "%.9f", 21.5 + 3 * sin(Double(r) * 0.37) + Double(r % 5) * 0.013)
            let load = String(format: "%.6f", 0.93 + 0.05 * cos(Double(r) * 0.21))
            text += "\(Timestamp.iso8601(Double(1_700_000_000 + 3600 * r))),\(temp),\(load)\n"
        }
        return text
    }

    static let model = ["--model", "gru", "--hidden", "6", "--window", "6", "--horizon", "2", "--lr", "0.01", "--seed", "7"]

    @Test func fitImportRestoreAndReplayFromAgree() throws {
        let dir = try ReplayCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let history = dir.appendingPathComponent("history.csv").path, next = dir.appendingPathComponent("next.csv").path
        try Data(Self.csv(0..<200).utf8).write(to: URL(fileURLWithPath: history))
        try Data(Self.csv(200..<260).utf8).write(to: URL(fileURLWithPath: next))
        let file = dir.appendingPathComponent("plant.rnndckpt").path
        let state = dir.appendingPathComponent("state").path
        let stateFlag = ["--state-dir", state]

        // fit: two passes over the history; the record continues after its last row.
        let fit = try Self.run(["fit", history, "--out", file, "--stream", "plant/7", "--epochs", "2"] + Self.model)
        #expect(fit.status == 0, "\(fit.stderr)")
        #expect(fit.stdout.contains("2 passes: 400 steps") && fit.stdout.contains("MSE model"), "\(fit.stdout)")
        #expect(fit.stdout.contains("stream 'plant/7', seq 200, last t \(Timestamp.iso8601(1_700_000_000 + 3600 * 199))"), "\(fit.stdout)")
        let again = try Self.run(["fit", history, "--out", file, "--stream", "plant/7", "--epochs", "1"] + Self.model)
        #expect(again.status == 73 && again.stderr.contains("--force"), "\(again.stderr)")
        let fitted = try Data(contentsOf: URL(fileURLWithPath: file))

        // A damaged file is refused and nothing is stored.
        var damaged = fitted
        damaged[damaged.count / 2] ^= 0x04
        let damagedFile = dir.appendingPathComponent("damaged.rnndckpt").path
        try damaged.write(to: URL(fileURLWithPath: damagedFile))
        let refused = try Self.run(["checkpoint", "import", damagedFile] + stateFlag)
        #expect(refused.status == 65 && refused.stderr.contains("checksum"), "\(refused.stderr)")

        // import, then list and show it.
        let imported = try Self.run(["checkpoint", "import", file] + stateFlag)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("imported stream 'plant/7'"), "\(imported.stdout)")
        let twice = try Self.run(["checkpoint", "import", file] + stateFlag)
        #expect(twice.status == 73 && twice.stderr.contains("--replace"), "\(twice.stderr)")

        let list = try Self.run(["checkpoint", "list"] + stateFlag)
        #expect(list.status == 0, "\(list.stderr)")
        let row = try #require(list.stdout.split(separator: "\n").first { $0.hasPrefix("plant/7 ") }, "\(list.stdout)")
        // 400 samples (two epochs of 200), 200 updates, one every k1 = 2 samples: each finds an
        // error to learn, the first (at the second sample) and the second epoch's first too, whose
        // window starts at the sample whose time goes back (a clock jump starts a new segment,
        // docs/numerics.md, "Gaps and clock jumps").
        #expect(row.split(separator: " ").prefix(8) == ["plant/7", "gru", "6", "2", "2", "400", "200", "200"], "\(row)")
        #expect(list.stdout.contains("1 stream, \(fitted.count) bytes"), "\(list.stdout)")
        let json = try Self.run(["checkpoint", "list", "--json"] + stateFlag)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let stream = try #require((object["streams"] as? [[String: Any]])?.first)
        #expect(stream["stream"] as? String == "plant/7" && stream["seq"] as? Int == 200 && stream["samples"] as? Int == 400)
        #expect(stream["last_t"] as? Double == Double(1_700_000_000 + 3600 * 199))
        #expect(object["last_checkpoint"] is NSNull, "an import is not a checkpoint")

        let show = try Self.run(["checkpoint", "show", "plant/7"] + stateFlag)
        #expect(show.status == 0, "\(show.stderr)")
        for part in ["checksum ok", "window (k2)         6", "samples learned     400", "input 0", "input 1", "--model gru --hidden 6"] {
            #expect(show.stdout.contains(part), "\(part): \(show.stdout)")
        }
        let showFile = try Self.run(["checkpoint", "show", "--file", damagedFile])
        #expect(showFile.status == 65 && showFile.stdout.contains("checksum mismatch"), "\(showFile.stdout)")

        // export gives the same bytes back.
        let exported = dir.appendingPathComponent("exported.rnndckpt").path
        let export = try Self.run(["checkpoint", "export", "plant/7", "--out", exported] + stateFlag)
        #expect(export.status == 0, "\(export.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: exported)) == fitted)
        let overwrite = try Self.run(["checkpoint", "export", "plant/7", "--out", exported] + stateFlag)
        #expect(overwrite.status == 73, "\(overwrite.stderr)")
        let missing = try Self.run(["checkpoint", "export", "plant/8", "--out", exported, "--force"] + stateFlag)
        #expect(missing.status == 66 && missing.stderr.contains("no stream 'plant/8'"), "\(missing.stderr)")

        // The daemon restores the stream and continues it; import is refused meanwhile.
        let daemon = try Command([
            "run", "--sub", "@tcp://127.0.0.1:*", "--pub", "@tcp://127.0.0.1:*", "--workers", "1",
        ] + stateFlag + Self.model)
        let restored = try daemon.await("restored")
        #expect(restored.hasPrefix("1 streams"), "\(daemon.stderr)")
        let samplesIn = try daemon.await("samples in:"), forecastsOut = try daemon.await("forecasts out:")
        _ = try daemon.await("ready")
        let busy = try Self.run(["checkpoint", "import", file, "--replace"] + stateFlag)
        #expect(busy.status == 75 && busy.stderr.contains("Stop the daemon first"), "\(busy.stderr)")

        let client = try ForecastClient(samplesIn: samplesIn, forecastsOut: forecastsOut)
        let feed = try Self.run(["feed", next, "--pub", ">" + samplesIn, "--topic", "plant/7"])
        #expect(feed.status == 0 && feed.stdout.contains("sent 60 samples"), "\(feed.stderr)")
        try client.collect(until: { $0["plant/7", default: []].count >= 60 }, seconds: 30)
        daemon.signal(SIGTERM)
        #expect(try daemon.wait(seconds: 20) == 0, "\(daemon.stderr)")
        #expect(!daemon.stderr.contains("out_of_order"), "the record's last time is before the next rows: \(daemon.stderr)")

        // replay --from on the same rows: the same forecasts, as text.
        let predictions = dir.appendingPathComponent("p.csv").path
        let replay = try Self.run(["replay", next, "--from", file, "--predictions", predictions] + Self.model)
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(replay.stdout.contains("from: \(file) (stream 'plant/7', 400 samples learned, seq 200"), "\(replay.stdout)")
        let (_, lines) = try ReplayCommandTests.predictions(predictions)
        var replayed: [String: [String]] = [:]
        for line in lines { replayed["\(line.row)/\(line.horizon)"] = line.values + line.bounds }
        let published = client.messages["plant/7", default: []]
        #expect(published.count == 60)
        #expect(String(decoding: published.first ?? [], as: UTF8.self).contains(#""seq":201"#), "seq continues from the record")
        var compared = 0
        for (m, payload) in published.enumerated() {
            let steps = try ReplayCommandTests.forecastTexts(payload)
            let lower = try ReplayCommandTests.rowTexts(payload, key: "lower"), upper = try ReplayCommandTests.rowTexts(payload, key: "upper")
            for h in 1...2 where m + h < 60 {
                let bounds = steps[h - 1].indices.flatMap { j in [lower?[h - 1][j] ?? "", upper?[h - 1][j] ?? ""] }
                #expect(replayed["\(m + h)/\(h)"] == steps[h - 1] + bounds, "seq \(201 + m), row \(m + h), h=\(h)")
                compared += 1
            }
        }
        #expect(compared == replayed.count && compared == 59 + 58)

        // The daemon's checkpoint at stop holds the continued stream.
        let after = try Self.run(["checkpoint", "list", "--json"] + stateFlag)
        let afterObject = try #require(try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [String: Any])
        let streams = try #require(afterObject["streams"] as? [[String: Any]])
        #expect(streams.first { $0["stream"] as? String == "plant/7" }?["seq"] as? Int == 260, "\(after.stdout)")

        // A replay whose model has another shape is refused, naming the differences.
        let other = try Self.run(["replay", next, "--from", file, "--model", "gru", "--hidden", "8", "--window", "6", "--horizon", "2"])
        #expect(other.status == 64 && other.stderr.contains("hidden 6 → 8"), "\(other.stderr)")
    }

    @Test func deleteSetsTheStreamAsideAndRenameImportsUnderANewID() throws {
        let dir = try ReplayCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let history = dir.appendingPathComponent("history.csv").path
        try Data(Self.csv(0..<40).utf8).write(to: URL(fileURLWithPath: history))
        let file = dir.appendingPathComponent("m.rnndckpt").path
        let stateFlag = ["--state-dir", dir.appendingPathComponent("state").path]
        let fit = try Self.run(["fit", history, "--out", file, "--stream", "a", "--epochs", "1", "--targets", "temp"] + Self.model)
        #expect(fit.status == 0, "\(fit.stderr)")
        #expect(fit.stdout.contains("rnnd run refuses this record"), "a record of fewer targets: \(fit.stdout)")

        #expect(try Self.run(["checkpoint", "import", file, "--stream", "b"] + stateFlag).status == 0)
        let show = try Self.run(["checkpoint", "show", "b", "--json"] + stateFlag)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        #expect(object["stream"] as? String == "b" && (object["model"] as? [String: Any])?["targets"] as? [Int] == [0])

        let delete = try Self.run(["checkpoint", "delete", "b"] + stateFlag)
        #expect(delete.status == 0, "\(delete.stderr)")
        let list = try Self.run(["checkpoint", "list"] + stateFlag)
        #expect(list.stdout.contains("no streams stored") && list.stdout.contains("set aside"), "\(list.stdout)")
        #expect(list.stdout.contains("b  deleted"), "\(list.stdout)")

        let none = try Self.run(["checkpoint", "list", "--state-dir", dir.appendingPathComponent("nothing").path])
        #expect(none.status == 66 && none.stderr.contains("no checkpoint store here"), "\(none.stderr)")
    }
}

extension CheckpointCommandTests {
    @Test func restoreAsideBringsRecordsBackAndNeverOverwritesANewerOneUnasked() throws {
        let dir = try ReplayCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let history = dir.appendingPathComponent("history.csv").path
        try Data(Self.csv(0..<40).utf8).write(to: URL(fileURLWithPath: history))
        let older = dir.appendingPathComponent("older.rnndckpt").path, newer = dir.appendingPathComponent("newer.rnndckpt").path
        let state = dir.appendingPathComponent("state").path, stateFlag = ["--state-dir", state]
        #expect(try Self.run(["fit", history, "--out", older, "--stream", "a", "--epochs", "1"] + Self.model).status == 0)
        #expect(try Self.run(["fit", history, "--out", newer, "--stream", "a", "--epochs", "2"] + Self.model).status == 0)

        // Set aside (as a daemon with another shape would, or delete), then brought back.
        #expect(try Self.run(["checkpoint", "import", older] + stateFlag).status == 0)
        #expect(try Self.run(["checkpoint", "delete", "a"] + stateFlag).status == 0)
        let listed = try Self.run(["checkpoint", "list"] + stateFlag)
        #expect(listed.stdout.contains("  1  a  deleted"), "\(listed.stdout)")
        let back = try Self.run(["checkpoint", "restore-aside", "a"] + stateFlag)
        #expect(back.status == 0 && back.stdout.contains("restored stream 'a'") && back.stdout.contains("set aside as deleted"), "\(back.stdout)\(back.stderr)")
        let olderBytes = Array(try Data(contentsOf: URL(fileURLWithPath: older)))
        do {
            let store = try CheckpointStore(directory: state, readOnly: true)
            #expect(try store.record(id: Array("a".utf8)) == olderBytes && store.setAsideList().isEmpty, "the same bytes, and no longer set aside")
        }
        let missing = try Self.run(["checkpoint", "restore-aside", "a"] + stateFlag)
        #expect(missing.status == 66 && missing.stderr.contains("no record of stream 'a' is set aside"), "\(missing.stderr)")

        // A live record saved later is not overwritten unless --force, and then it is set aside.
        #expect(try Self.run(["checkpoint", "delete", "a"] + stateFlag).status == 0)
        #expect(try Self.run(["checkpoint", "import", newer] + stateFlag).status == 0)
        let refused = try Self.run(["checkpoint", "restore-aside", "--all"] + stateFlag)
        #expect(refused.status == 73 && refused.stderr.contains("newer than the one set aside") && refused.stderr.contains("--force"), "\(refused.stderr)")
        let newerBytes = Array(try Data(contentsOf: URL(fileURLWithPath: newer)))
        #expect(try CheckpointStore(directory: state, readOnly: true).record(id: Array("a".utf8)) == newerBytes, "nothing restored")
        let forced = try Self.run(["checkpoint", "restore-aside", "a", "--force"] + stateFlag)
        #expect(forced.status == 0 && forced.stdout.contains("the live record it replaces is set aside (replaced)"), "\(forced.stdout)\(forced.stderr)")
        do {
            let store = try CheckpointStore(directory: state, readOnly: true)
            #expect(try store.record(id: Array("a".utf8)) == olderBytes)
            let aside = try store.setAsideList()
            #expect(aside.map(\.reason) == ["replaced"])
            #expect(try store.setAsideRecord(aside[0].n)?.record == newerBytes, "the newer record kept, not deleted")
        }

        // A damaged record set aside stays there: named with --all, refused when asked for by name.
        do {
            let store = try CheckpointStore(directory: state)
            var damaged = olderBytes
            damaged[damaged.count / 2] ^= 0x08
            try damaged.withUnsafeBytes { try store.setAside(id: Array("b".utf8), record: $0, problem: .checksumMismatch) }
        }
        let byName = try Self.run(["checkpoint", "restore-aside", "b"] + stateFlag)
        #expect(byName.status == 65 && byName.stderr.contains("checksum mismatch") && byName.stderr.contains("nothing was restored"), "\(byName.stderr)")
        let json = try Self.run(["checkpoint", "list", "--json"] + stateFlag)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let entries = try #require(object["set_aside"] as? [[String: Any]])
        let replaced = try #require(entries.first { $0["reason"] as? String == "replaced" })
        #expect(replaced["bytes"] as? Int == newerBytes.count && replaced["n"] is Int)
        let everything = try Self.run(["checkpoint", "restore-aside", "--all", "--force"] + stateFlag)
        #expect(everything.status == 0 && everything.stderr.contains("1 records fail their checks and stay set aside"), "\(everything.stdout)\(everything.stderr)")
        #expect(everything.stdout.contains("restored 1 stream"), "\(everything.stdout)")
        #expect(try CheckpointStore(directory: state, readOnly: true).record(id: Array("a".utf8)) == newerBytes)
    }
}

extension CheckpointCommandTests {
    /// A record of format 1 (the old rnnd's, Fixtures/format1) goes into a store as it is, is
    /// shown migrated, restored by a daemon whose model has its shape, and written in the current format
    /// by that daemon's checkpoint at stop, though the stream learned nothing meanwhile.
    @Test func aFormatOneRecordIsRestoredAndRewrittenInFormatTwo() throws {
        let dir = try ReplayCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = CheckpointTests.fixtures.appendingPathComponent("gru.rnndckpt").path
        let stateFlag = ["--state-dir", dir.appendingPathComponent("state").path]
        let show = try Self.run(["checkpoint", "show", "--file", file])
        #expect(show.status == 0 && show.stdout.contains("format 1, migrated to \(StreamRecord.formatVersion) as read") && show.stdout.contains("--formulation level --calendar off"), "\(show.stdout)")
        #expect(try Self.run(["checkpoint", "import", file] + stateFlag).status == 0)

        let model = ["--model", "gru", "--hidden", "6", "--window", "6", "--horizon", "2", "--lr", "0.01", "--seed", "7",
                     "--formulation", "level", "--calendar", "off"]
        let daemon = try Command(["run", "--sub", "@tcp://127.0.0.1:*", "--pub", "@tcp://127.0.0.1:*", "--workers", "1"] + stateFlag + model)
        #expect(try daemon.await("restored").hasPrefix("1 streams"), "\(daemon.stderr)")
        #expect(daemon.stderr.contains("1 records of format 1 migrated to format \(StreamRecord.formatVersion)"), "\(daemon.stderr)")
        _ = try daemon.await("ready")
        daemon.signal(SIGTERM)
        #expect(try daemon.wait(seconds: 20) == 0, "\(daemon.stderr)")
        #expect(daemon.stderr.contains("checkpoint: 1 streams"), "\(daemon.stderr)")
        let stored = try #require(try CheckpointStore(directory: stateFlag[1], readOnly: true).record(id: Array("plant/7".utf8)))
        #expect(stored[8] == UInt8(StreamRecord.formatVersion))
        let record = try StreamRecord.decode(stored)
        #expect(record.seq == 200 && record.formatRead == StreamRecord.formatVersion && record.stateSummary?.counters.samples == 400)
    }
}

/// The pieces in process: the state summary, records made from a trainer, the store's import
/// and delete, record files.
@Suite(.timeLimit(.minutes(1)))
struct CheckpointInspectionTests {
    @Test func theSummaryReadsWhatTheTrainerWrote() throws {
        var model = ModelConfiguration()
        model.cell = .elman
        model.hidden = 4
        model.inputs = 2
        model.window = 4
        let forecaster = Forecaster(configuration: model)
        for i in 0..<11 { forecaster.step([Float(i), Float(i % 3) * 10]) }
        let trainer = forecaster.trainer
        let record = StreamRecord(id: Array("x".utf8), forecaster: forecaster, seq: 11, lastTimestamp: nil, savedAt: 5)
        let summary = try #require(record.stateSummary)
        #expect(summary.counters == trainer.counters)
        #expect(summary.normalizerCount == 11 && summary.mean == trainer.normalizer.mean && summary.variance == trainer.normalizer.variance)
        #expect(try StreamRecord.decode(record.encoded()) == record)
        #expect(record.state.withUnsafeBytes { TrainerStateSummary(state: UnsafeRawBufferPointer(rebasing: $0[8..<58]), inputs: 2) } == nil)
    }

    @Test func importIsNotACheckpointAndDeleteKeepsTheBytes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-store-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(throws: CheckpointStoreError.self) { try CheckpointStore(directory: directory, readOnly: true) }
        let store = try CheckpointStore(directory: directory)
        let bytes = CheckpointTests.record(id: "a")
        try store.put(id: Array("a".utf8), record: bytes, savedAt: 1)
        #expect(try store.lastCheckpoint() == nil)
        let reader = try CheckpointStore(directory: directory, readOnly: true)
        #expect(try reader.record(id: Array("a".utf8)) == bytes)
        #expect(try store.setAside(id: Array("a".utf8), reason: "deleted", detail: "test"))
        #expect(try !store.setAside(id: Array("a".utf8), reason: "deleted", detail: "test"))
        #expect(try reader.list().isEmpty && reader.setAsideList().map(\.reason) == ["deleted"])
    }

    @Test func recordFilesAreNotOverwrittenUnlessAsked() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-record-\(UUID())").path
        defer { unlink(path) }
        try RecordFile.write([1, 2, 3], to: path, replace: false)
        #expect(throws: CheckpointCommandError.self) { try RecordFile.write([4], to: path, replace: false) }
        try RecordFile.write([4], to: path, replace: true)
        #expect(try RecordFile.read(path) == [4])
        #expect(streamIDs(named: "0x6162") == [Array("0x6162".utf8), Array("ab".utf8)])
        #expect(streamIDProblem("") != nil && streamIDProblem("plant/7") == nil)
    }
}
