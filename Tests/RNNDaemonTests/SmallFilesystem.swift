#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A tmpfs of its own, a few megabytes, for a state directory that runs out of room for real:
/// mounted at init, unmounted (lazily, so that a daemon still running cannot keep it) at deinit.
/// Mounting needs root (CAP_SYS_ADMIN); ``canMount`` says whether this test run may.
final class SmallFilesystem {
    let path: String
    private var filler: Int32 = -1

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Whether a tmpfs can be mounted here: tried once, on a scratch directory.
    static let canMount: Bool = {
        guard let probe = try? SmallFilesystem(megabytes: 1) else { return false }
        withExtendedLifetime(probe) {}
        return true
    }()

    init(megabytes: Int) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-tmpfs-\(UUID())").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(megabytes)m,mode=0700") == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: path)
            throw Failure(description: "mount tmpfs on \(path): \(reason)")
        }
    }

    deinit {
        if filler >= 0 { close(filler) }
        umount2(path, Int32(MNT_DETACH))
        rmdir(path)
    }

    /// Bytes still free.
    var available: Int {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return -1 }
        return Int(s.f_bavail) * Int(s.f_frsize)
    }

    /// Takes every free byte with a file of zeros (`filler`), so that the next write that needs
    /// room fails with ENOSPC.
    func fill() throws {
        if filler < 0 {
            filler = open(path + "/filler", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard filler >= 0 else { throw Failure(description: "open filler: \(String(cString: strerror(errno)))") }
        }
        let zeros = [UInt8](repeating: 0, count: 65_536)
        var chunk = zeros.count
        while chunk > 0 {
            let n = zeros.withUnsafeBytes { write(filler, $0.baseAddress, chunk) }
            if n < 0, errno != ENOSPC { throw Failure(description: "write filler: \(String(cString: strerror(errno)))") }
            if n < chunk { chunk /= 2 }
        }
    }

    /// Gives `bytes` of the filler's room back.
    func free(bytes: Int) throws {
        guard filler >= 0 else { return }
        var s = stat()
        guard fstat(filler, &s) == 0, ftruncate(filler, max(0, Int(s.st_size) - bytes)) == 0 else {
            throw Failure(description: "truncate filler: \(String(cString: strerror(errno)))")
        }
    }

    /// Gives the filler's room back.
    func free() throws {
        guard filler >= 0 else { return }
        close(filler)
        filler = -1
        guard unlink(path + "/filler") == 0 else { throw Failure(description: "unlink filler: \(String(cString: strerror(errno)))") }
    }

    /// Makes the file system `megabytes` large, keeping what it holds.
    func resize(megabytes: Int) throws {
        guard mount("tmpfs", path, "tmpfs", UInt(MS_REMOUNT), "size=\(megabytes)m") == 0 else {
            throw Failure(description: "remount \(path): \(String(cString: strerror(errno)))")
        }
    }
}
