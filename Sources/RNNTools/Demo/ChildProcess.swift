#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

import Foundation
import Synchronization

/// A child process whose stdout and stderr are collected through a pipe.
final class ChildProcess: Sendable {
    let pid: pid_t
    private let output = Mutex<[UInt8]>([])
    private let waitStatus = Mutex<Int32?>(nil)
    private let readerDone = DispatchSemaphore(value: 0)

    /// Starts `executable` with `arguments`, in a process group of its own (a Ctrl-C on the
    /// terminal reaches the demo, which stops the child itself), its signals unblocked and at
    /// their defaults, stdin from /dev/null.
    init(executable: String, arguments: [String]) throws(DemoError) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw .system("pipe: \(String(cString: strerror(errno)))") }
        // Not inherited: the child gets its own copies as 1 and 2.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var mask = sigset_t(), defaults = sigset_t()
        sigemptyset(&mask)
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        close(fds[1])
        guard code == 0 else {
            close(fds[0])
            throw .system("cannot start \(executable): \(String(cString: strerror(code)))")
        }
        self.pid = pid
        let fd = fds[0]
        let thread = Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                output.withLock { $0 += chunk[0..<n] }
            }
            close(fd)
            readerDone.signal()
        }
        thread.name = "rnnd-demo-log"
        thread.start()
    }

    /// Everything the child wrote so far.
    var log: String { output.withLock { String(decoding: $0, as: UTF8.self) } }

    /// What follows `marker` on the first line of the log that holds it.
    func line(after marker: String) -> String? {
        guard let line = log.split(separator: "\n").first(where: { $0.contains(marker) }),
            let range = line.range(of: marker)
        else { return nil }
        return String(line[range.upperBound...]).trimmingCharacters(in: .whitespaces)
    }

    /// The raw wait status once the child has exited (it is reaped then); nil while it runs.
    func exited() -> Int32? {
        waitStatus.withLock { status in
            if status == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
            }
            return status
        }
    }

    /// Sends SIGTERM, waits up to `seconds`, then SIGKILL; returns the wait status.
    func stop(seconds: Double) -> Int32 {
        if let status = exited() { return finish(status) }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let status = exited() { return finish(status) }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        while true {
            if let status = exited() { return finish(status) }
            usleep(20_000)
        }
    }

    /// Waits for the child to exit, looking every 20 ms; if `shouldStop()` turns true first, stops
    /// it as ``stop(seconds:)`` does. Returns the wait status. (A child of its own process group
    /// does not see the terminal's Ctrl-C: the parent passes it on this way.)
    func wait(stoppingWhen shouldStop: () -> Bool, seconds: Double = 5) -> Int32 {
        while true {
            if let status = exited() { return finish(status) }
            if shouldStop() { return stop(seconds: seconds) }
            usleep(20_000)
        }
    }

    private func finish(_ status: Int32) -> Int32 {
        _ = readerDone.wait(timeout: .now() + 2)  // the last lines of the log
        return status
    }

    /// `exit status 0`, `killed by signal 9`.
    static func describe(_ status: Int32) -> String {
        status & 0x7F == 0 ? "exit status \((status >> 8) & 0xFF)" : "killed by signal \(status & 0x7F)"
    }

    static func succeeded(_ status: Int32) -> Bool { status == 0 }
}
