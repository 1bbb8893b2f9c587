import Foundation
import RNNDaemon
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// sd_notify(3) over real AF_UNIX datagram sockets bound where systemd's would be: the bytes
/// that arrive are compared exactly, at a filesystem path and at an abstract name.
@Suite(.timeLimit(.minutes(1)))
struct SystemdNotifierTests {
    /// Stands in for systemd's notification socket; `notifySocket` is the NOTIFY_SOCKET value
    /// naming it. Bound with the exact address length, so that a sender addressing an abstract
    /// name with any other length reaches nothing.
    final class Receiver {
        let descriptor: Int32
        let notifySocket: String
        let path: String?

        init(abstract: Bool) throws {
            let unique = "rnnd-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            var name: [UInt8]
            if abstract {
                notifySocket = "@" + unique
                path = nil
                name = [0] + Array(unique.utf8)
            } else {
                let file = FileManager.default.temporaryDirectory.appendingPathComponent(unique + ".sock").path
                notifySocket = file
                path = file
                name = Array(file.utf8) + [0]
            }
            #if canImport(Glibc)
            descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
            #else
            descriptor = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)
            #endif
            try #require(descriptor >= 0)
            // A test that expects a datagram fails after 2 s instead of hanging.
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
            let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + name.count)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
            }
            try #require(bound == 0, "bind \(notifySocket): errno \(errno)")
        }

        deinit {
            close(descriptor)
            if let path { unlink(path) }
        }

        /// The next datagram, or nil after 2 s.
        func receive() -> [UInt8]? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            return count < 0 ? nil : Array(buffer.prefix(count))
        }

        func receiveText() -> String? { receive().map { String(decoding: $0, as: UTF8.self) } }
    }

    @Test(arguments: [false, true])
    func eachStateArrivesAsOneDatagram(abstract: Bool) throws {
        let receiver = try Receiver(abstract: abstract)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": receiver.notifySocket])
        #expect(notifier.isEnabled)
        let cases: [(sent: Bool, expected: String)] = [
            (notifier.ready(status: "3 streams, 120 samples/s learned, 0 refused"), "READY=1\nSTATUS=3 streams, 120 samples/s learned, 0 refused"),
            (notifier.ready(), "READY=1"),
            (notifier.status("0 streams"), "STATUS=0 streams"),
            (notifier.watchdog(), "WATCHDOG=1"),
            (notifier.stopping(), "STOPPING=1"),
            (notifier.extendTimeout(.seconds(30)), "EXTEND_TIMEOUT_USEC=30000000"),
            (notifier.extendTimeout(.milliseconds(1500)), "EXTEND_TIMEOUT_USEC=1500000"),
            (notifier.readyAfterReload(), "READY=1"),
            (notifier.send("X_RNND=é"), "X_RNND=é"),
        ]
        for (sent, expected) in cases {
            #expect(sent)
            #expect(receiver.receive() == Array(expected.utf8))
        }
    }

    @Test func reloadingCarriesTheMonotonicTime() throws {
        let receiver = try Receiver(abstract: true)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": receiver.notifySocket])
        func monotonicMicroseconds() -> UInt64 {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        }
        let before = monotonicMicroseconds()
        #expect(notifier.reloading())
        let after = monotonicMicroseconds()
        let text = try #require(receiver.receiveText())
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2)
        #expect(lines.first == "RELOADING=1")
        let stamp = try #require(lines.last.flatMap { $0.hasPrefix("MONOTONIC_USEC=") ? UInt64($0.dropFirst(15)) : nil }, "\(text)")
        #expect(before <= stamp && stamp <= after)
    }

    /// The restore's extensions: one at once, then one per `interval` of progress, each asking
    /// for `extensionTime`; progress that stops sends nothing more.
    @Test func theStartupIsExtendedWhileItMovesOn() {
        var sent: [Duration] = []
        var startup = StartupExtension { sent.append($0) }
        let t0 = ContinuousClock.now
        let offsets: [Duration] = [.zero, .seconds(1), .milliseconds(4900), .seconds(5), .seconds(9), .seconds(40)]
        let sends = offsets.map { startup.progress(now: t0 + $0) }
        #expect(sends == [true, false, false, true, false, true])
        #expect(sent == [StartupExtension.extensionTime, StartupExtension.extensionTime, StartupExtension.extensionTime])
        #expect(StartupExtension.extensionTime >= StartupExtension.interval * 4, "a slow stretch is not taken for a stuck restore")
    }

    @Test func statusStaysOneLine() throws {
        let receiver = try Receiver(abstract: false)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": receiver.notifySocket])
        #expect(notifier.status("plant-7\nREADY=1\r\nx"))
        #expect(receiver.receiveText() == "STATUS=plant-7 READY=1 x")
    }

    @Test(arguments: [
        [String: String](),
        ["NOTIFY_SOCKET": ""],
        ["NOTIFY_SOCKET": "run/systemd/notify"],  // neither a path from / nor an abstract name
        ["NOTIFY_SOCKET": "vsock:2:1234"],
        ["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 200)],  // longer than sun_path
        ["NOTIFY_SOCKET": "@" + String(repeating: "x", count: 108)],
    ])
    func withoutAUsableSocketNothingIsSent(environment: [String: String]) {
        let notifier = SystemdNotifier(environment: environment)
        #expect(!notifier.isEnabled)
        #expect(!notifier.ready(status: "ready"))
        #expect(!notifier.watchdog())
        #expect(!notifier.send("READY=1"))
    }

    @Test func aSocketNobodyListensOnFailsTheSend() {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-notify-missing-\(getpid()).sock").path
        for name in [missing, "@rnnd-notify-missing-\(getpid())"] {
            let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": name])
            #expect(notifier.isEnabled)
            #expect(!notifier.watchdog())
        }
    }

    @Test(arguments: [
        (["WATCHDOG_USEC": "30000000"], Duration.seconds(30)),
        (["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": String(getpid())], .seconds(30)),
        (["WATCHDOG_USEC": "1500"], .microseconds(1500)),
        (["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": String(getppid())], nil),  // another process's
        (["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "not a pid"], nil),
        (["WATCHDOG_USEC": "0"], nil),
        (["WATCHDOG_USEC": "-1"], nil),
        (["WATCHDOG_USEC": "30s"], nil),
        (["WATCHDOG_USEC": ""], nil),
        (["WATCHDOG_USEC": "18446744073709551615"], nil),  // systemd's infinity
        (["WATCHDOG_PID": String(getpid())], nil),
        ([:], nil),
    ] as [([String: String], Duration?)])
    func watchdogIntervalFollowsSdWatchdogEnabled(environment: [String: String], expected: Duration?) {
        #expect(SystemdNotifier(environment: environment).watchdogInterval == expected)
    }
}
