import Foundation
import GRDB

/// The checkpoint store: one SQLite database, `rnnd.sqlite` in the state directory, holding a
/// `StreamRecord` per stream (docs/checkpoints.md).
///
/// SQLite gives the crash safety: a checkpoint is one transaction (all streams, one commit in
/// write-ahead-log mode with `synchronous = FULL`), so a crash at any instant leaves the last
/// committed checkpoint readable; each record carries its own format version and checksum on
/// top, so a record damaged on disk is found and set aside rather than trusted.
///
/// Tables:
///   streams(id BLOB PRIMARY KEY, record BLOB, saved_at REAL)        the current records
///   set_aside(n INTEGER PRIMARY KEY, id BLOB, record BLOB, reason TEXT, detail TEXT, at REAL)
///                                                                   indexed by (id, n)
///   meta(key TEXT PRIMARY KEY, value)                               e.g. the last checkpoint
public final class CheckpointStore: Sendable {
    /// The schema this rnnd writes (`PRAGMA user_version`).
    public static let schemaVersion = 1
    public static let fileName = "rnnd.sqlite"

    /// Seconds a write waits for another connection's lock before it fails.
    public static let busyTimeout: TimeInterval = 10
    /// Bytes the write-ahead log is cut back to after a transaction that made it larger.
    public static let walSizeLimit = 64 << 20

    public let path: String
    package let database: DatabaseQueue

    /// Opens (creating when `create`) the store in `directory`. `readOnly` opens an existing
    /// store for reading only (`rnnd checkpoint list`, `show`, `export`): it writes nothing, so it
    /// never waits for nor disturbs a daemon writing a checkpoint.
    public init(directory: String, create: Bool = true, readOnly: Bool = false) throws(CheckpointStoreError) {
        path = directory.hasSuffix("/") ? directory + Self.fileName : directory + "/" + Self.fileName
        if readOnly {
            guard FileManager.default.fileExists(atPath: path) else { throw .cannotOpen(path: path, "no checkpoint store here") }
            var configuration = Configuration()
            configuration.label = "rnnd checkpoints (read only)"
            configuration.readonly = true
            // A daemon's commit holds the write-ahead log briefly; wait for it rather than fail.
            configuration.busyMode = .timeout(5)
            do {
                database = try DatabaseQueue(path: path, configuration: configuration)
                let version = try database.read { try Int.fetchOne($0, sql: "PRAGMA user_version") ?? 0 }
                guard version <= Self.schemaVersion else { throw CheckpointStoreError.newerSchema(path: path, version: version) }
                guard version >= 1 else { throw CheckpointStoreError.cannotOpen(path: path, "not an rnnd checkpoint store (no schema)") }
            } catch let error as CheckpointStoreError {
                throw error
            } catch {
                throw .cannotOpen(path: path, "\(error)")
            }
            return
        }
        if create {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw .cannotOpen(path: directory, "cannot create the state directory: \(error.localizedDescription)")
            }
        } else if !FileManager.default.fileExists(atPath: path) {
            throw .cannotOpen(path: path, "no checkpoint store here")
        }
        var configuration = Configuration()
        configuration.label = "rnnd checkpoints"
        // Another connection's write (an operator's sqlite3, a backup's checkpoint of the WAL)
        // makes a checkpoint wait for it rather than fail at once.
        configuration.busyMode = .timeout(Self.busyTimeout)
        configuration.prepareDatabase { db in
            // Durable commits: the WAL is synced at every commit, i.e. once per checkpoint.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // The WAL grows to the largest transaction (a whole checkpoint) and is then reused;
            // after a checkpoint larger than this, the next commit cuts it back to this size.
            try db.execute(sql: "PRAGMA journal_size_limit = \(Self.walSizeLimit)")
        }
        do {
            database = try DatabaseQueue(path: path, configuration: configuration)
            try database.writeWithoutTransaction { db in
                let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
                guard version <= Self.schemaVersion else {
                    throw CheckpointStoreError.newerSchema(path: path, version: version)
                }
                // 16 KiB pages for a new store (set before the first table; fixed for the
                // file's life in WAL mode): records are tens of kilobytes, and the final
                // checkpoint of 10,000 streams took 4.0 s instead of 14 s with 4 KiB pages.
                if version == 0 { try db.execute(sql: "PRAGMA page_size = 16384") }
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS streams(id BLOB PRIMARY KEY, record BLOB NOT NULL, saved_at REAL NOT NULL);
                    CREATE TABLE IF NOT EXISTS set_aside(
                        n INTEGER PRIMARY KEY, id BLOB NOT NULL, record BLOB NOT NULL,
                        reason TEXT NOT NULL, detail TEXT NOT NULL, at REAL NOT NULL);
                    CREATE INDEX IF NOT EXISTS set_aside_by_stream ON set_aside(id, n);
                    CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);
                    PRAGMA user_version = \(Self.schemaVersion);
                    """)
            }
        } catch let error as CheckpointStoreError {
            throw error
        } catch {
            throw Self.isCorruption(error) ? .corrupt(path: path, "\(error)") : .cannotOpen(path: path, "\(error)")
        }
    }

    /// Whether `error` says the database file itself is damaged (not a database, or corrupt).
    public static func isCorruption(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_NOTADB || error.resultCode == .SQLITE_CORRUPT
    }

    /// Moves a damaged database (and its WAL and shared-memory files) aside, to
    /// `rnnd.sqlite.damaged-<unix time>`, so that a new one can start; returns the new name.
    public static func moveAside(directory: String) throws -> String {
        let path = directory.hasSuffix("/") ? directory + fileName : directory + "/" + fileName
        let aside = path + ".damaged-\(Int(Date().timeIntervalSince1970))"
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.moveItem(atPath: path + suffix, toPath: aside + suffix)
        }
        return aside
    }

    /// Calls `body` with every stored record, in id order, without holding them all at once.
    public func forEachRecord(_ body: (_ id: [UInt8], _ record: UnsafeRawBufferPointer) throws -> Void) throws {
        try database.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT id, record FROM streams ORDER BY id")
            while let row = try rows.next() {
                let id: Data = row[0]
                try row.withUnsafeData(atIndex: 1) { data in
                    guard let data else { return }
                    try data.withUnsafeBytes { try body(Array(id), $0) }
                }
            }
        }
    }

    /// One stream's record, or nil.
    public func record(id: [UInt8]) throws -> [UInt8]? {
        try database.read { db in
            try Data.fetchOne(db, sql: "SELECT record FROM streams WHERE id = ?", arguments: [Data(id)]).map { Array($0) }
        }
    }

    /// Stored streams: id, record size and when it was saved.
    public func list() throws -> [(id: [UInt8], bytes: Int, savedAt: Double)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT id, length(record), saved_at FROM streams ORDER BY id").map {
                (Array($0[0] as Data), $0[1], $0[2])
            }
        }
    }

    /// Records set aside: their number, what, why, when, and their size.
    public func setAsideList() throws -> [(n: Int, id: [UInt8], reason: String, detail: String, at: Double, bytes: Int)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT n, id, reason, detail, at, length(record) FROM set_aside ORDER BY n").map {
                ($0[0], Array($0[1] as Data), $0[2], $0[3], $0[4], $0[5])
            }
        }
    }

    /// Runs `body` in one write transaction: every record it puts commits together or not at all.
    public func transaction(_ body: (CheckpointWriter) throws -> Void) throws {
        try database.inTransaction(.immediate) { db in
            let writer = CheckpointWriter(
                put: try db.cachedStatement(sql: "INSERT OR REPLACE INTO streams(id, record, saved_at) VALUES (?, ?, ?)"))
            try body(writer)
            try db.execute(
                sql: "INSERT OR REPLACE INTO meta(key, value) VALUES ('last_checkpoint', ?), ('last_checkpoint_streams', ?)",
                arguments: [Date().timeIntervalSince1970, writer.written])
            return .commit
        }
    }

    /// Moves a stream's record out of `streams` into `set_aside` (nothing is deleted), with why.
    public func setAside(id: [UInt8], record: UnsafeRawBufferPointer, problem: RecordProblem) throws {
        try database.inTransaction(.immediate) { db in
            try db.execute(
                sql: "INSERT INTO set_aside(id, record, reason, detail, at) VALUES (?, ?, ?, ?, ?)",
                arguments: [Data(id), Data(record), problem.reason, problem.description, Date().timeIntervalSince1970])
            try db.execute(sql: "DELETE FROM streams WHERE id = ?", arguments: [Data(id)])
            return .commit
        }
    }

    /// Puts one record (`rnnd checkpoint import`), replacing the stream's. Not a checkpoint: the
    /// time of the last checkpoint stays as it was.
    public func put(id: [UInt8], record: [UInt8], savedAt: Double) throws {
        try put([(id, record, savedAt)])
    }

    /// Puts records (`rnnd checkpoint import` of many files), replacing the streams', in one
    /// transaction: all or none. Not a checkpoint, as ``put(id:record:savedAt:)``.
    public func put(_ records: [(id: [UInt8], record: [UInt8], savedAt: Double)]) throws {
        try database.inTransaction(.immediate) { db in
            let statement = try db.cachedStatement(sql: "INSERT OR REPLACE INTO streams(id, record, saved_at) VALUES (?, ?, ?)")
            for r in records { try statement.execute(arguments: [Data(r.id), Data(r.record), r.savedAt]) }
            return .commit
        }
    }

    /// Moves a stream's record to `set_aside` with an operator's reason (`rnnd checkpoint
    /// delete`); false when there is no such stream.
    public func setAside(id: [UInt8], reason: String, detail: String) throws -> Bool {
        var moved = false
        try database.inTransaction(.immediate) { db in
            try db.execute(
                sql: "INSERT INTO set_aside(id, record, reason, detail, at) SELECT id, record, ?, ?, ? FROM streams WHERE id = ?",
                arguments: [reason, detail, Date().timeIntervalSince1970, Data(id)])
            try db.execute(sql: "DELETE FROM streams WHERE id = ?", arguments: [Data(id)])
            moved = db.changesCount > 0
            return .commit
        }
        return moved
    }

    /// Moves streams' records out of `streams` into `set_aside` (nothing is deleted), each with
    /// its reason, in one transaction: the restore's records that cannot be used.
    public func setAside(_ entries: [(id: [UInt8], reason: String, detail: String)]) throws {
        guard !entries.isEmpty else { return }
        let now = Date().timeIntervalSince1970
        try database.inTransaction(.immediate) { db in
            let copy = try db.cachedStatement(
                sql: "INSERT INTO set_aside(id, record, reason, detail, at) SELECT id, record, ?, ?, ? FROM streams WHERE id = ?")
            let delete = try db.cachedStatement(sql: "DELETE FROM streams WHERE id = ?")
            for e in entries {
                try copy.execute(arguments: [e.reason, e.detail, now, Data(e.id)])
                try delete.execute(arguments: [Data(e.id)])
            }
            return .commit
        }
    }

    /// One record set aside, by its number (`n`), with why and when; nil when there is none.
    public func setAsideRecord(_ n: Int) throws -> (id: [UInt8], record: [UInt8], reason: String, detail: String, at: Double)? {
        try database.read { db in
            try Row.fetchOne(db, sql: "SELECT id, record, reason, detail, at FROM set_aside WHERE n = ?", arguments: [n]).map {
                (Array($0[0] as Data), Array($0[1] as Data), $0[2], $0[3], $0[4])
            }
        }
    }

    /// Puts set-aside records back into `streams` (`rnnd checkpoint restore-aside`), in one
    /// transaction: each `n` leaves `set_aside` for its stream's live record, and a live record
    /// it replaces is set aside in its turn (`replaced`), so that nothing is deleted.
    public func restoreAside(_ entries: [(n: Int, savedAt: Double)], detail: String) throws {
        let now = Date().timeIntervalSince1970
        try database.inTransaction(.immediate) { db in
            for e in entries {
                guard let id = try Data.fetchOne(db, sql: "SELECT id FROM set_aside WHERE n = ?", arguments: [e.n]) else { continue }
                try db.execute(
                    sql: "INSERT INTO set_aside(id, record, reason, detail, at) SELECT id, record, 'replaced', ?, ? FROM streams WHERE id = ?",
                    arguments: [detail, now, id])
                try db.execute(
                    sql: "INSERT OR REPLACE INTO streams(id, record, saved_at) SELECT id, record, ? FROM set_aside WHERE n = ?",
                    arguments: [e.savedAt, e.n])
                try db.execute(sql: "DELETE FROM set_aside WHERE n = ?", arguments: [e.n])
            }
            return .commit
        }
    }

    /// Deletes the records set aside more than `days` days before `now` (0: none for their
    /// age), and those with `perStream` newer ones of the same stream (0: none for that), in one
    /// transaction; returns how many and their bytes.
    @discardableResult
    public func pruneSetAside(days: Double, perStream: Int, now: Double = Date().timeIntervalSince1970) throws -> (records: Int, bytes: Int) {
        var pruned = (records: 0, bytes: 0)
        try database.inTransaction(.immediate) { db in
            var conditions: [String] = [], arguments: StatementArguments = []
            if days > 0 {
                conditions.append("at < ?")
                arguments += [now - days * 86_400]
            }
            if perStream > 0 {
                conditions.append("(SELECT count(*) FROM set_aside newer WHERE newer.id = set_aside.id AND newer.n > set_aside.n) >= ?")
                arguments += [perStream]
            }
            guard !conditions.isEmpty else { return .commit }
            let which = conditions.joined(separator: " OR ")
            if let row = try Row.fetchOne(db, sql: "SELECT count(*), coalesce(sum(length(record)), 0) FROM set_aside WHERE \(which)", arguments: arguments) {
                pruned = (row[0], row[1])
            }
            if pruned.records > 0 { try db.execute(sql: "DELETE FROM set_aside WHERE \(which)", arguments: arguments) }
            return .commit
        }
        return pruned
    }

    /// Copies the write-ahead log into the database and empties it (`wal_checkpoint(TRUNCATE)`):
    /// at start-up, so that the daemon starts with a WAL of zero bytes.
    public func truncateLog() throws {
        try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Unix time of the last committed checkpoint, and how many streams it wrote.
    public func lastCheckpoint() throws -> (at: Double, streams: Int)? {
        try database.read { db in
            guard let at = try Double.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_checkpoint'") else { return nil }
            return (at, try Int.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_checkpoint_streams'") ?? 0)
        }
    }
}

/// Puts records within one `CheckpointStore.transaction`.
public final class CheckpointWriter {
    private let statement: Statement
    public private(set) var written = 0

    package init(put: Statement) { statement = put }

    public func put(id: [UInt8], record: [UInt8], savedAt: Double) throws {
        try statement.execute(arguments: [Data(id), Data(record), savedAt])
        written += 1
    }

    package func put(id: UnsafeRawBufferPointer, record: Data, savedAt: Double) throws {
        try statement.execute(arguments: [Data(id), record, savedAt])
        written += 1
    }
}

public enum CheckpointStoreError: Error, CustomStringConvertible {
    case cannotOpen(path: String, String)
    /// The file is not an SQLite database, or a damaged one.
    case corrupt(path: String, String)
    case newerSchema(path: String, version: Int)
    case inUse(path: String, holder: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let why): "\(path): \(why)"
        case .corrupt(let path, let why): "\(path): the database is damaged: \(why)"
        case .newerSchema(let path, let version):
            "\(path): written by a newer rnnd (schema \(version); this one reads up to \(CheckpointStore.schemaVersion))"
        case .inUse(let path, let holder): "\(path): in use by \(holder); one rnnd per state directory"
        }
    }
}

/// An exclusive lock on a state directory (`rnnd.lock`, flock), held for the daemon's life so
/// that two daemons never write the same checkpoints, and `rnnd checkpoint import` never
/// writes under a running daemon. The lock file holds the holder's pid, for the message.
public final class StateDirectoryLock {
    private let fd: Int32

    public init(directory: String) throws(CheckpointStoreError) {
        let path = directory.hasSuffix("/") ? directory + "rnnd.lock" : directory + "/rnnd.lock"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .cannotOpen(path: path, String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, 31, 0)
            let pid = n > 0 ? String(decoding: buffer[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            close(fd)
            throw .inUse(path: directory, holder: "rnnd process \(pid)")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
    }

    deinit { close(fd) }
}
