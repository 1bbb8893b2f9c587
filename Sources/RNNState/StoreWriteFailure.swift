import GRDB

/// Why a write to the store failed, in the terms an operator acts on: SQLite's primary result
/// code, named (docs/checkpoints.md, "When a checkpoint fails").
public enum StoreWriteFailure: Sendable, Equatable {
    /// `SQLITE_FULL`: the file system has no room left.
    case diskFull
    /// `SQLITE_IOERR`: the operating system reported an I/O error (a file-size limit among them).
    case ioError
    /// `SQLITE_READONLY`, `SQLITE_CANTOPEN`, `SQLITE_PERM`: the files cannot be written.
    case readOnly
    /// `SQLITE_BUSY`, `SQLITE_LOCKED`: another connection holds the database.
    case busy
    /// `SQLITE_CORRUPT`, `SQLITE_NOTADB`: the file is damaged.
    case corrupt

    /// The kind of `error`, when it is SQLite's and one of the above; nil otherwise.
    public init?(_ error: any Error) {
        guard let error = error as? DatabaseError else { return nil }
        switch error.resultCode {
        case .SQLITE_FULL: self = .diskFull
        case .SQLITE_IOERR: self = .ioError
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM: self = .readOnly
        case .SQLITE_BUSY, .SQLITE_LOCKED: self = .busy
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: self = .corrupt
        default: return nil
        }
    }
}
