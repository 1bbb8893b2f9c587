import Foundation
import Logging
import Synchronization
import ZeroMQ

// `rnnd proxy` (docs/scaling.md): libzmq's XSUB/XPUB forwarder, so that many publishers and many
// rnnd instances meet at one address. The frontend is an XSUB socket, where publishers send (or
// rnnd instances send their forecasts); the backend an XPUB socket, where subscribers take
// (rnnd instances their samples, or consumers the forecasts). Subscriptions travel the other
// way, up to the publishers, which keep filtering at the source.

/// The settings of `rnnd proxy`.
public struct ProxyConfiguration: Sendable, Equatable {
    /// The XSUB socket: where publishers connect (`@`), or publishers it connects to (`>`).
    public var frontend: String
    /// The XPUB socket: where subscribers connect, or subscribers it connects to.
    public var backend: String
    /// An optional PUB socket that gets a copy of every message through the proxy.
    public var capture: String?
    /// Messages queued per peer on each socket, 1 ... 10,000,000 (libzmq's high-water marks).
    /// Past it a subscriber that reads too slowly loses messages (the XPUB drops, uncounted); a
    /// publisher sending faster than the proxy forwards is pushed back by TCP.
    public var highWaterMark = 100_000
    /// The largest frame the frontend takes, in bytes (`ZMQ_MAXMSGSIZE`): a peer that sends a
    /// larger one is disconnected and the frame never forwarded. 16 ... 64 MiB.
    public var maxMessageBytes = 1 << 20
    /// The quietest log level written.
    public var logLevel = "info"

    public init(frontend: String, backend: String, capture: String? = nil) {
        self.frontend = frontend
        self.backend = backend
        self.capture = capture
    }

    /// Everything that is wrong, each naming its flag; empty when the proxy can start.
    public func problems() -> [String] {
        var found: [String] = []
        for (flag, endpoint) in [("--frontend", frontend), ("--backend", backend)] + (capture.map { [("--capture", $0)] } ?? []) {
            if let problem = DaemonConfiguration.endpointProblem(endpoint) { found.append("\(flag): \(problem)") }
        }
        let bound = [frontend, backend] + (capture.map { [$0] } ?? [])
        for endpoint in Set(bound) where endpoint.first == "@" && !endpoint.hasSuffix(":*") && bound.count(where: { $0 == endpoint }) > 1 {
            found.append("\(endpoint) is bound twice: give the frontend, the backend and the capture socket an address each")
        }
        if !(1...10_000_000).contains(highWaterMark) {
            found.append("--hwm: must be from 1 to 10000000, got \(highWaterMark)")
        }
        if !(16...64 << 20).contains(maxMessageBytes) {
            found.append("--max-message-bytes: must be from 16 to \(64 << 20) (64 MiB), got \(maxMessageBytes)")
        }
        if !DaemonConfiguration.logLevels.contains(logLevel) {
            found.append("--log-level: must be one of \(DaemonConfiguration.logLevels.joined(separator: ", ")), got \"\(logLevel)\"")
        }
        return found
    }
}

/// Runs `rnnd proxy` until SIGINT or SIGTERM; returns the exit status: 0 after such a stop, 69
/// when a socket cannot be bound or connected, 70 when the proxy failed while running.
public func runProxy(_ configuration: ProxyConfiguration, notifier: SystemdNotifier = SystemdNotifier()) -> Int32 {
    var logger = Logger(label: "rnnd")
    logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
    return ProxyService(configuration: configuration, logger: logger, notifier: notifier).run()
}

/// The proxy: one thread owns the three sockets and runs `zmq_proxy` on them; the main thread
/// waits for a signal and stops it by shutting the context down.
final class ProxyService: Sendable {
    let configuration: ProxyConfiguration
    let logger: Logger
    let notifier: SystemdNotifier

    init(configuration: ProxyConfiguration, logger: Logger, notifier: SystemdNotifier) {
        self.configuration = configuration
        self.logger = logger
        self.notifier = notifier
    }

    func run() -> Int32 {
        // Blocked before any thread exists (libzmq's too), so only the wait below receives them.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let context: ZMQContext
        do { context = try ZMQContext(ioThreads: 1) } catch {
            logger.critical("cannot create the ZeroMQ context: \(error)")
            return 70
        }
        let gate = StartupGate()
        let failure = Mutex<String?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            try? "rnnd-proxy".write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            do {
                try forward(context, gate: gate)
            } catch {
                if !gate.report(error: "\(error)") { failure.withLock { $0 = "\(error)" } }
            }
            finished.signal()
        }
        thread.name = "rnnd-proxy"
        thread.start()
        if let error = gate.wait() {
            logger.critical("\(error)")
            return 69
        }
        let c = configuration
        logger.info("ready: forwarding \(c.frontend) (XSUB) → \(c.backend) (XPUB)\(c.capture.map { ", a copy to \($0)" } ?? "")")
        notifier.ready(status: "forwarding \(c.frontend) → \(c.backend)")

        var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        while true {
            let signal = sigtimedwait(&signals, nil, &timeout)
            if signal == SIGINT || signal == SIGTERM {
                notifier.stopping()
                logger.notice("\(signal == SIGTERM ? "SIGTERM" : "SIGINT"): stopping")
                break
            }
            if signal == SIGHUP { logger.notice("SIGHUP: the proxy has no configuration to read again; nothing changed") }
            if finished.wait(timeout: .now()) == .success {
                logger.critical("the proxy stopped: \(failure.withLock { $0 } ?? "for no reason given")")
                return 70
            }
        }
        // zmq_proxy returns when its context is shut down; messages still queued are dropped.
        context.shutdown()
        guard finished.wait(timeout: .now() + 5) == .success else {
            logger.error("the proxy thread did not stop within 5 s")
            return 70
        }
        if let message = failure.withLock({ $0 }) {
            logger.critical("the proxy failed: \(message)")
            return 70
        }
        logger.info("stopped")
        return 0
    }

    /// Binds or connects the sockets, reports them, then forwards until the context is shut down.
    private func forward(_ context: ZMQContext, gate: StartupGate) throws {
        let c = configuration
        let frontend = try ZMQSocket(context, type: .xsub)
        let backend = try ZMQSocket(context, type: .xpub)
        try frontend.setReceiveHighWaterMark(c.highWaterMark)
        try frontend.setSendHighWaterMark(c.highWaterMark)
        try backend.setReceiveHighWaterMark(c.highWaterMark)
        try backend.setSendHighWaterMark(c.highWaterMark)
        // Both take input from the network: messages at the frontend, subscriptions (a byte and
        // a prefix of at most a topic's 510 bytes) at the backend. Larger ones cost their sender
        // its connection, not the proxy its memory.
        try frontend.setMaxMessageSize(c.maxMessageBytes)
        try backend.setMaxMessageSize(1024)
        try attach(frontend, c.frontend, "frontend")
        try attach(backend, c.backend, "backend")
        if let address = c.capture {
            let capture = try ZMQSocket(context, type: .pub)
            try capture.setSendHighWaterMark(c.highWaterMark)
            try attach(capture, address, "capture")
            _ = gate.report(error: nil)
            try ZMQProxy.run(frontend: frontend, backend: backend, capture: capture)
        } else {
            _ = gate.report(error: nil)
            try ZMQProxy.run(frontend: frontend, backend: backend)
        }
    }

    /// Binds or connects `socket`; logs the address it is bound to (the port of `:*` resolved).
    private func attach(_ socket: borrowing ZMQSocket, _ endpoint: String, _ role: String) throws {
        do {
            try socket.attach(endpoint)
        } catch {
            throw ProxyStartError(role: role, endpoint: endpoint, error: error)
        }
        if endpoint.hasPrefix("@") {
            let bound = try socket.lastEndpoint
            logger.info("\(role): \(bound)")
        } else {
            logger.info("\(role): connecting to \(endpoint.dropFirst())")
        }
    }
}

struct ProxyStartError: Error, CustomStringConvertible {
    var role: String
    var endpoint: String
    var error: ZMQError
    var description: String { "\(role) \(endpoint): \(error)" }
}
