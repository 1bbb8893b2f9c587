// systemd's readiness and watchdog protocol, sd_notify(3), without linking libsystemd: one
// datagram of newline-separated `KEY=value` assignments to the AF_UNIX socket named in
// $NOTIFY_SOCKET. The kernel attaches the sender's credentials itself (systemd sets SO_PASSCRED
// on its socket), which is how systemd knows the datagram is from this unit's main process.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// Tells systemd that rnnd is ready, alive, reloading or stopping (`Type=notify` units).
///
/// Without `$NOTIFY_SOCKET` (not started by systemd, or a unit that is not `Type=notify`) every
/// call does nothing and returns false, so the daemon needs no separate code path for it. One
/// unconnected socket is opened here: a send costs one `sendto` and never blocks, because a
/// notification that cannot go out at once is worth less than a stalled caller. The environment variables are left in place (libsystemd's `unset_environment` is not
/// mimicked): rnnd starts no children that could inherit them.
public final class SystemdNotifier: Sendable {
    /// The datagram socket, or -1 when notifications are off.
    private let descriptor: Int32
    private let address: sockaddr_un
    /// The exact length of `address`: for an abstract name every byte up to it is part of the
    /// name, so `MemoryLayout<sockaddr_un>.size` would address another socket.
    private let addressLength: socklen_t

    /// `WatchdogSec=` of the unit, from `$WATCHDOG_USEC`: send `watchdog()` at least this often
    /// (sd_watchdog_enabled(3) recommends every half of it), or systemd kills the service and
    /// restarts it. Nil when the watchdog is off, or when `$WATCHDOG_PID` names another process
    /// (the variables were inherited from a parent that systemd watches instead).
    public let watchdogInterval: Duration?

    /// Whether `$NOTIFY_SOCKET` named a usable address and the socket opened, so that sends can
    /// reach systemd.
    public var isEnabled: Bool { descriptor >= 0 }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from `environment` and opens the
    /// socket. `NOTIFY_SOCKET` is a path (`/run/systemd/notify`) or, starting with `@`, a name in
    /// Linux's abstract socket namespace; anything else (such as a `vsock:` address, which only a
    /// virtual machine's init needs) leaves notifications off.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        watchdogInterval = Self.watchdogInterval(environment)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        var length = -1
        if let name = environment["NOTIFY_SOCKET"], let first = name.utf8.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "@") {
            var path = Array(name.utf8)
            if first == UInt8(ascii: "@") {
                path[0] = 0  // abstract: a leading NUL, then the name, no terminator
            } else {
                path.append(0)  // a path: NUL-terminated
            }
            if path.count <= capacity {
                withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
                length = pathOffset + path.count
            }
        }
        self.address = address
        addressLength = socklen_t(max(length, 0))
        descriptor = length < 0 ? -1 : socket(AF_UNIX, Self.datagramCloseOnExec, 0)
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Sends `state`, newline-separated assignments such as `"READY=1\nSTATUS=…"`, as one
    /// datagram. False when notifications are off or the datagram could not be sent at once
    /// (systemd gone, its queue full); the daemon carries on either way, as sd_notify(3) advises.
    @discardableResult
    public func send(_ state: String) -> Bool {
        guard descriptor >= 0 else { return false }
        let bytes = Array(state.utf8)
        let sent = bytes.withUnsafeBytes { message in
            withUnsafePointer(to: address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                    var result: Int
                    repeat {
                        result = sendto(descriptor, message.baseAddress, message.count, Self.sendFlags, target, addressLength)
                    } while result < 0 && errno == EINTR
                    return result
                }
            }
        }
        return sent == bytes.count
    }

    /// `READY=1`: start-up is finished; systemd then reports the unit active and runs the units
    /// ordered after it.
    @discardableResult
    public func ready(status: String? = nil) -> Bool {
        send(status.map { "READY=1\n" + Self.statusAssignment($0) } ?? "READY=1")
    }

    /// `STATUS=`: one line shown by `systemctl status`.
    @discardableResult
    public func status(_ text: String) -> Bool {
        send(Self.statusAssignment(text))
    }

    /// `WATCHDOG=1`: the keep-alive ping that `WatchdogSec=` asks for.
    @discardableResult
    public func watchdog() -> Bool {
        send("WATCHDOG=1")
    }

    /// `EXTEND_TIMEOUT_USEC=`: the start-up (or stop) takes longer than the unit's timeout may
    /// allow; systemd then waits `duration` more from now, and again at each such message. Sent
    /// while the restore makes progress (``StartupExtension``), so that a large store, not the
    /// unit's `TimeoutStartSec=`, decides how long a start takes, and a stuck one still fails.
    @discardableResult
    public func extendTimeout(_ duration: Duration) -> Bool {
        let microseconds = max(0, duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)
        return send("EXTEND_TIMEOUT_USEC=\(microseconds)")
    }

    /// `STOPPING=1`: shutdown has begun; systemd shows the unit as deactivating meanwhile.
    @discardableResult
    public func stopping() -> Bool {
        send("STOPPING=1")
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=`, the time of the message on CLOCK_MONOTONIC in µs:
    /// a reload has begun. systemd (253 and later) uses the timestamp to tell this reload from an
    /// earlier one; `readyAfterReload()` must follow.
    @discardableResult
    public func reloading() -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        return send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
    }

    /// `READY=1` again: the reload `reloading()` announced is done and the unit is active again.
    @discardableResult
    public func readyAfterReload(status: String? = nil) -> Bool {
        ready(status: status)
    }

    /// The watchdog interval as sd_watchdog_enabled(3) defines it: `WATCHDOG_USEC` a positive
    /// decimal below 2^64 - 1 (systemd's "infinity"), and `WATCHDOG_PID`, when present, this
    /// process.
    static func watchdogInterval(_ environment: [String: String]) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0, usec < UInt64.max else {
            return nil
        }
        if let pid = environment["WATCHDOG_PID"], pid_t(pid) != getpid() {
            return nil
        }
        return .microseconds(Int64(clamping: usec))
    }

    /// `STATUS=text`. STATUS is one line: a newline in `text` would start another assignment
    /// (a stream id in it could say `READY=1`), so newlines become spaces.
    private static func statusAssignment(_ text: String) -> String {
        "STATUS=" + String(text.map { $0.isNewline ? " " : $0 })
    }

    #if canImport(Glibc)
    private static let datagramCloseOnExec = Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue)
    #else
    private static let datagramCloseOnExec = SOCK_DGRAM | SOCK_CLOEXEC
    #endif
    /// Never raise SIGPIPE, never wait for room in systemd's queue.
    private static let sendFlags = Int32(MSG_NOSIGNAL | MSG_DONTWAIT)
}

/// The start-up's `EXTEND_TIMEOUT_USEC=` messages: one when the start-up's long work begins,
/// then one each time it moves on after `interval` since the last, each asking for `extensionTime`
/// more. Progress is what extends: a restore that stops moving stops extending, and systemd's
/// timeout ends it.
public struct StartupExtension {
    /// Between two messages, at least.
    public static let interval = Duration.seconds(5)
    /// What each message asks for: several intervals, so that a slow stretch of the restore (a
    /// large record, a busy disk) is not taken for a stuck one.
    public static let extensionTime = Duration.seconds(30)

    private let send: (Duration) -> Void
    private var last: ContinuousClock.Instant?

    public init(send: @escaping (Duration) -> Void) { self.send = send }

    /// Sends a message when none was sent yet or `interval` has passed since the last; true
    /// when it sent one.
    @discardableResult
    public mutating func progress(now: ContinuousClock.Instant = .now) -> Bool {
        if let last, now - last < Self.interval { return false }
        last = now
        send(Self.extensionTime)
        return true
    }
}
