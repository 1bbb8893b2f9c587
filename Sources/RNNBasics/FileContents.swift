// Reading a file whole, the one way every part of rnnd does it: the configuration file, CSV
// files, record files, key files' callers. POSIX rather than Foundation's `Data(contentsOf:)`:
// the error keeps errno's own text ("No such file or directory", "Permission denied"), which
// the commands print as they are, and a directory is refused by name rather than read as empty.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be read: errno's text, or what was wrong with the file.
public struct FileReadError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

public enum FileContents {
    /// The bytes of the file at `path`, read to its end; refuses a directory and, past `limit`
    /// bytes, a file too large (the reason says the limit in MiB).
    public static func read(_ path: String, limit: Int = .max) throws(FileReadError) -> [UInt8] {
        func errnoText() -> FileReadError { FileReadError(reason: String(cString: strerror(errno))) }
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw errnoText() }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw errnoText() }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw FileReadError(reason: "it is a directory") }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(Int(status.st_size), limit == .max ? Int(status.st_size) : limit + 1))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw errnoText()
            }
            if count == 0 { break }
            bytes += chunk.prefix(count)
            if bytes.count > limit { throw FileReadError(reason: "it is larger than \(limit >> 20) MiB") }
        }
        return bytes
    }
}

/// `read(2)`, named apart from `FileContents.read`.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }
