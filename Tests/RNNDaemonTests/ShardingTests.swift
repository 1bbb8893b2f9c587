import Foundation
import RNNCore
@testable import RNNDaemon
@testable import RNNTools
@testable import RNNWire
import Testing

/// `--shard I/N`: the documented hash and its vectors, the parsing and its errors, and that
/// sharding leaves the workers (and their stream tables) evenly used.
@Suite(.timeLimit(.minutes(1)))
struct ShardingTests {
    /// The vectors of docs/protocol.md ("Sharding"). The hashes are FNV-1a 64 as specified by its
    /// authors: "a" and "foobar" are among the reference implementation's published test
    /// vectors, the others were computed with the independent Python line that docs/protocol.md
    /// gives, not with rnnd.
    static let vectors: [(id: String, hash: UInt64, shardHash: UInt64, of2: Int, of3: Int, of4: Int)] = [
        ("a", 0xAF63_DC4C_8601_EC8C, 0x832B_E066_BD43_A3B8, 0, 2, 0),
        ("foobar", 0x8594_4171_F739_67E8, 0xDD0A_4430_09D6_13F0, 0, 1, 0),
        ("s0000", 0xDD59_4A76_0CB1_EC02, 0x9D21_8664_DD9D_36A0, 0, 2, 0),
        ("s0001", 0xDD59_4B76_0CB1_EDB5, 0x4763_F749_6B6E_1F79, 1, 1, 1),
        ("plant-7/boiler/temp", 0x9694_D1CE_E5D3_3B39, 0x2DFE_3D93_7D33_7B96, 0, 2, 2),
        ("température/c", 0xA385_3D2C_269C_ED7A, 0xBD26_C6B3_86C5_F239, 1, 1, 1),
        // Differ only in bit 5 of one byte: FNV-1a % 4 alone would put them together.
        ("sensor-A", 0xA093_2A06_6672_2A59, 0x41EE_1A2E_244F_B4AD, 1, 0, 1),
        ("sensor-a", 0xA093_4A06_6672_60B9, 0x5F5C_830D_7034_87FA, 0, 1, 2),
    ]

    @Test(arguments: vectors.indices)
    func theHashAndTheShardAreTheDocumentedOnes(index: Int) {
        let v = Self.vectors[index]
        let id = Array(v.id.utf8)
        #expect(StreamShard.hash(of: id) == v.hash, "\(v.id): 0x\(String(StreamShard.hash(of: id), radix: 16))")
        #expect(StreamShard.shardHash(v.hash) == v.shardHash, "\(v.id): 0x\(String(StreamShard.shardHash(v.hash), radix: 16))")
        #expect(StreamShard.index(hash: v.hash, count: 2) == v.of2)
        #expect(StreamShard.index(hash: v.hash, count: 3) == v.of3)
        #expect(StreamShard.index(hash: v.hash, count: 4) == v.of4)
        for (count, expected) in [(2, v.of2), (3, v.of3), (4, v.of4)] {
            for i in 0..<count {
                #expect(StreamShard(index: i, count: count)!.owns(id: id) == (i == expected), "\(v.id) in \(i)/\(count)")
            }
        }
    }

    @Test func everyStreamHasExactlyOneShard() {
        for count in [1, 2, 3, 7, 16] {
            let shards = (0..<count).map { StreamShard(index: $0, count: count)! }
            for s in 0..<1000 {
                let id = Array("plant-\(s % 13)/sensor-\(s)".utf8)
                #expect(shards.count { $0.owns(id: id) } == 1)
            }
        }
    }

    @Test(arguments: [("0/1", 0, 1), ("0/2", 0, 2), ("1/2", 1, 2), ("41/42", 41, 42), ("007/8", 7, 8), ("65535/65536", 65535, 65536)])
    func goodShardsParse(text: String, index: Int, count: Int) {
        let shard = StreamShard(parsing: text)
        #expect(shard?.index == index && shard?.count == count)
        #expect(StreamShard.problem(text) == nil)
        #expect(shard.map { StreamShard(parsing: $0.description) } == shard)
    }

    @Test(arguments: [
        ("", "expected \"I/N\""), ("2", "expected \"I/N\""), ("1/", "expected \"I/N\""), ("/2", "expected \"I/N\""),
        ("1/2/3", "expected \"I/N\""), ("-1/2", "expected \"I/N\""), ("+1/2", "expected \"I/N\""), (" 1/2", "expected \"I/N\""),
        ("1 / 2", "expected \"I/N\""), ("a/2", "expected \"I/N\""), ("1.0/2", "expected \"I/N\""), ("١/٢", "expected \"I/N\""),
        ("2/2", "shard 2 of 2 does not exist: they are numbered from 0, \"0/2\" to \"1/2\""),
        ("0/0", "the number of shards must be from 1 to 65536"), ("0/65537", "the number of shards must be from 1 to 65536"),
        ("0/99999999999999999999", "expected \"I/N\""),
    ])
    func badShardsAreExplained(text: String, reason: String) {
        #expect(StreamShard(parsing: text) == nil)
        let problem = StreamShard.problem(text)
        #expect(problem?.contains(reason) == true, "\(text): \(problem ?? "accepted")")
        #expect(problem?.hasSuffix("got \"\(text)\"") == true)
    }

    @Test func theShardIsASettingOfTheFileAndTheFlags() throws {
        var c = try ConfigurationFile.parse("[input]\nshard = \"1/3\"\n", file: "rnnd.toml")
        #expect(c.shard == "1/3" && c.streamShard == StreamShard(index: 1, count: 3))
        #expect(c.problems() == [])
        let printed = ConfigurationFile.render(c, environment: [:])
        #expect(printed.contains("\nshard = \"1/3\"\n"))
        #expect(try ConfigurationFile.parse(printed, file: "printed.toml") == c)
        c.shard = nil
        #expect(ConfigurationFile.render(c, environment: [:]).contains("# shard is not set: every stream is taken"))
        #expect(DaemonConfiguration().shard == nil && DaemonConfiguration().streamShard == nil)

        // Wrong type, bad value in the file (78), bad flag (64), a flag that mends the file.
        let wrongType = try ConfigurationTests().refusal("[input]\nshard = 2\n")
        #expect(wrongType.exitCode == 78)
        #expect(wrongType.description == "rnnd.toml: input.shard: expected a string, found an integer (2)")
        let bad = try #require(try ConfigurationTests().resolveError(file: "[input]\nshard = \"2/2\"\n"))
        #expect(bad.exitCode == 78)
        #expect(bad.issues.map(\.key) == ["input.shard"])
        #expect(bad.description.contains(": input.shard (--shard): shard 2 of 2 does not exist"))
        let flag = try #require(try ConfigurationTests().resolveError(file: nil) { $0.shard = "1:2" })
        #expect(flag.exitCode == 64)
        #expect(flag.description.hasPrefix("input.shard (--shard): expected \"I/N\""))
        #expect(try ConfigurationTests().resolveError(file: "[input]\nshard = \"2/2\"\n") { $0.shard = "1/2" } == nil)

        // A change needs a restart.
        var sharded = DaemonConfiguration()
        sharded.shard = "0/2"
        let (applied, needRestart) = DaemonConfiguration().reloadChanges(to: sharded)
        #expect(applied.isEmpty && needRestart == ["input.shard: unset → \"0/2\""])
    }



    @Test func exportedRecordFilesAreNamedAfterTheirStreams() {
        #expect(RecordFile.name(for: Array("plant-7/boiler/temp".utf8)) == "plant-7_boiler_temp-9694d1cee5d33b39.rnndckpt")
        #expect(RecordFile.name(for: Array("s0000".utf8)) == "s0000-dd594a760cb1ec02.rnndckpt")
        #expect(RecordFile.name(for: Array("température/c".utf8)) == "temp__rature_c-a3853d2c269ced7a.rnndckpt")
        #expect(RecordFile.name(for: Array("..".utf8)).hasPrefix("_.-"), "never hidden, never a parent directory")
        let long = RecordFile.name(for: Array(String(repeating: "x", count: 255).utf8))
        #expect(long.count == 64 + 1 + 16 + 9)
    }

    /// Ids as sensors name them, and as the benchmark does: every shard's streams must spread
    /// over all of an instance's workers.
    static let idSets: [(name: String, ids: [[UInt8]])] = [
        ("s0000 ... s9999", (0..<10_000).map { Array("s\(String(repeating: "0", count: 4 - String($0).count))\($0)".utf8) }),
        ("plant-K/sensor-I", (0..<10_000).map { Array("plant-\($0 % 37)/sensor-\($0)".utf8) }),
    ]

    @Test(arguments: [2, 3, 4, 8], [2, 3, 4])
    func workersAreChosenIndependentlyOfTheShard(shards: Int, workers: Int) {
        for (name, ids) in Self.idSets {
            var cells = [Int](repeating: 0, count: shards * workers)
            for id in ids {
                let hash = StreamShard.hash(of: id)
                cells[StreamShard.index(hash: hash, count: shards) * workers + workerIndex(hash: hash, workers: workers)] += 1
            }
            // 10,000 ids in 4 to 32 cells: a fair split is within a few percent of the mean;
            // ±25% fails only a real correlation.
            let mean = Double(ids.count) / Double(cells.count)
            #expect(cells.allSatisfy { abs(Double($0) - mean) < 0.25 * mean }, "\(name), \(shards) shards × \(workers) workers: \(cells)")
        }
    }

    /// Why the worker is not `hash % workers`: with as many workers as shards, each instance would
    /// give all its streams to one worker, and leave the other idle.
    @Test func theNaiveWorkerChoiceWouldCorrelate() {
        var cells = [0, 0, 0, 0]
        for id in Self.idSets[0].ids {
            let hash = StreamShard.hash(of: id)
            cells[Int(hash % 2) * 2 + Int(hash % 2)] += 1
        }
        #expect(cells[1] == 0 && cells[2] == 0, "\(cells)")
    }

    /// A sharded instance's streams share their shard; the stream table still finds each in about
    /// one probe (linear probing at most half full: about 0.5 slots from home on average).
    @Test(arguments: [1, 4, 16])
    func aShardsStreamsSpreadOverTheStreamTable(shards: Int) {
        var table = StreamTable()
        var added = 0
        for i in 0..<200_000 where added < 4096 {
            let id = Array("s\(i)".utf8)
            let hash = StreamShard.hash(of: id)
            guard hash % UInt64(shards) == 0, workerIndex(hash: hash, workers: 2) == 0 else { continue }
            table.insert(StreamLearner(id: id, hash: hash, forecaster: Self.forecaster))
            added += 1
        }
        #expect(added == 4096)
        let mean = Double(table.displacement) / Double(table.count)
        #expect(mean < 1.5, "mean distance from the home slot: \(mean)")
    }

    /// One small model, shared by the table's entries: only their ids and hashes matter here.
    nonisolated(unsafe) static let forecaster: Forecaster = {
        var model = ModelConfiguration()
        model.hidden = 2
        model.window = 2
        return Forecaster(configuration: model)
    }()
}
