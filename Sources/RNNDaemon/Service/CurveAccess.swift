import Logging
import RNNKeys
import RNNMetrics
import Synchronization
import ZeroMQ

// CURVE on the daemon's sockets (docs/security.md). When `curve_secret_key_file` and
// `curve_allowed_clients` are set, the SUB socket (samples) and the XPUB socket (forecasts) are
// CURVE servers with the daemon's secret key, each with its own ZAP domain and with the domain
// enforced, so that libzmq refuses every client while no ZAP handler answers (fail closed). The
// ZAP handler is a thread of its own, started before the sockets bind: it owns a REP socket at
// inproc://zeromq.zap.01 and lets in exactly the clients whose public keys are in the allowed
// directory. It also reads the two sockets' monitors, which report the handshakes that fail
// before ZAP is asked: a client without CURVE, or with another server key.

/// The CURVE state of a running daemon: its key pair and the clients it lets in, which SIGHUP
/// replaces. Read by the ZAP thread at each handshake, written by the main thread.
final class CurveAccess: Sendable {
    private let state = Mutex<(keys: ZMQCurveKeyPair?, clients: AllowedClients)>((nil, AllowedClients()))

    /// The ZAP domains of the two sockets, which the log names.
    static let samplesDomain = "samples"
    static let forecastsDomain = "forecasts"
    /// Where each socket's monitor publishes its failed handshakes.
    static func monitorAddress(_ domain: String) -> String { "inproc://rnnd-monitor-\(domain)" }
    /// The ZAP endpoint (RFC 27): every CURVE server of the context asks the handler bound here.
    static let zapAddress = "inproc://zeromq.zap.01"

    var keys: ZMQCurveKeyPair? { state.withLock { $0.keys } }
    var clients: AllowedClients { state.withLock { $0.clients } }

    func start(keys: ZMQCurveKeyPair, clients: AllowedClients) {
        state.withLock { $0 = (keys, clients) }
    }

    /// Replaces the allowed clients; returns the ones before.
    func replace(_ clients: AllowedClients) -> AllowedClients {
        state.withLock { state in
            defer { state.clients = clients }
            return state.clients
        }
    }
}

extension ZMQSocket {
    /// Makes a daemon socket a CURVE server with `keys` whose clients the ZAP handler admits
    /// under `domain`, reporting its failed handshakes at ``CurveAccess/monitorAddress(_:)``.
    /// Call before it binds or connects.
    func serveCurve(_ keys: ZMQCurveKeyPair, domain: String) throws(ZMQError) {
        try makeCurveServer(secretKey: keys.secretKey)
        try setZAPDomain(domain)
        try setZAPEnforceDomain(true)
        try monitor(CurveAccess.monitorAddress(domain), events: [.handshakeFailedProtocol, .handshakeFailedNoDetail])
    }
}

extension Daemon {
    /// Loads the secret key and the allowed clients before anything starts; nil with the reason
    /// when they cannot be used (the configuration was checked, so only a file changed since
    /// then gets here).
    func loadCurve() -> String? {
        let c = configuration
        guard c.curveEnabled, let file = c.resolvedCurveSecretKeyFile(), let directory = c.curveAllowedClients else { return nil }
        guard ZMQLibrary.has("curve") else { return KeyFileError.noCurve.description }
        do {
            let keys = try ZMQCurveKeyPair(secretKey: CurveKeyFile.read(file, secret: true))
            let (clients, problems) = try AllowedClients.load(directory)
            if let problem = problems.first { return problem.description }
            if clients.count == 0 { return KeyFileError.noClients(directory: directory).description }
            curve.start(keys: keys, clients: clients)
            logger.notice("CURVE on samples and forecasts: server public key \(keys.publicKey.z85); \(clients.count) client\(clients.count == 1 ? "" : "s") allowed (\(directory)): \(clients.names.values.sorted().joined(separator: ", "))")
            return nil
        } catch let error as KeyFileError {
            return error.description
        } catch {
            return "\(error)"
        }
    }

    /// SIGHUP: reads the allowed clients' directory again and says who was added and removed.
    /// Connections that are up stay up: ZAP is asked only at a handshake.
    func reloadAllowedClients() {
        guard configuration.curveEnabled, let directory = configuration.curveAllowedClients else { return }
        let new: AllowedClients
        do {
            let (clients, problems) = try AllowedClients.load(directory)
            if let problem = problems.first { throw problem }
            if clients.count == 0 { throw KeyFileError.noClients(directory: directory) }
            new = clients
        } catch {
            logger.error("SIGHUP: the allowed clients were not read again; they stay as they were: \(error)")
            return
        }
        let (added, removed) = curve.replace(new).changes(to: new)
        if added.isEmpty && removed.isEmpty {
            logger.notice("SIGHUP: allowed clients read again: unchanged, \(new.count) clients")
        } else {
            var parts: [String] = []
            if !added.isEmpty { parts.append("added \(added.joined(separator: ", "))") }
            if !removed.isEmpty { parts.append("removed \(removed.joined(separator: ", ")) (their connections that are up stay up until they drop or rnnd restarts)") }
            logger.notice("SIGHUP: allowed clients: \(parts.joined(separator: "; ")); \(new.count) clients now")
        }
    }

    // MARK: - The ZAP thread

    func zapHandler(_ context: ZMQContext, gate: StartupGate) {
        do {
            try zapLoop(context, gate: gate)
        } catch {
            // Without its handler a CURVE server refuses everyone (the domain is enforced), so a
            // failure here closes the door; the daemon stops and says why.
            if !gate.report(error: "ZAP handler: \(error)") { fail("ZAP handler: \(error)") }
        }
    }

    private func zapLoop(_ context: ZMQContext, gate: StartupGate) throws {
        let rep = try ZMQSocket(context, type: .rep)
        try rep.bind(CurveAccess.zapAddress)
        let domains = [CurveAccess.samplesDomain, CurveAccess.forecastsDomain]
        let samplesMonitor = try ZMQSocket(context, type: .pair)
        try samplesMonitor.connect(CurveAccess.monitorAddress(domains[0]))
        let forecastsMonitor = try ZMQSocket(context, type: .pair)
        try forecastsMonitor.connect(CurveAccess.monitorAddress(domains[1]))
        _ = gate.report(error: nil)

        var poller = ZMQPoller()
        poller.add(rep)
        poller.add(samplesMonitor)
        poller.add(forecastsMonitor)
        var log = RateLimitedLog(logger: logger)
        var lastAdmitted: [String: ContinuousClock.Instant] = [:]
        while !stopping.load(ordering: .relaxed) {
            switch try poller.poll(timeout: .milliseconds(200)) {
            case .terminated: return
            case .timedOut: continue
            case .ready: break
            }
            if poller.events(at: 0).contains(.readable), case .frames(let request) = try rep.receiveFrames(flags: .dontWait) {
                let reply = answer(request, log: &log, lastAdmitted: &lastAdmitted)
                if try rep.sendMultipart(reply) == .terminated { return }
            }
            if poller.events(at: 1).contains(.readable), case .frames(let frames) = try samplesMonitor.receiveFrames(flags: .dontWait),
                let event = ZMQMonitorEvent(frames: frames)
            {
                handshakeFailed(event, domain: domains[0], log: &log)
            }
            if poller.events(at: 2).contains(.readable), case .frames(let frames) = try forecastsMonitor.receiveFrames(flags: .dontWait),
                let event = ZMQMonitorEvent(frames: frames)
            {
                handshakeFailed(event, domain: domains[1], log: &log)
            }
        }
    }

    /// The reply to one ZAP request (RFC 27): `200` for a CURVE client whose key is allowed,
    /// `400` for anyone else. Requests are [version, request id, domain, address, identity,
    /// mechanism, credentials...]; replies [version, request id, status code, status text,
    /// user id, metadata], the user id being the client's name.
    private func answer(
        _ request: [[UInt8]], log: inout RateLimitedLog, lastAdmitted: inout [String: ContinuousClock.Instant]
    ) -> [[UInt8]] {
        let version = Array("1.0".utf8)
        guard request.count >= 6, request[0] == version else {
            logger.error("ZAP: a request that is not ZAP 1.0 (\(request.count) frames); refused")
            return [version, request.count > 1 ? request[1] : [], Array("500".utf8), Array("not ZAP 1.0".utf8), [], []]
        }
        let id = request[1], domain = String(decoding: request[2], as: UTF8.self)
        let address = String(decoding: request[3], as: UTF8.self), mechanism = String(decoding: request[5], as: UTF8.self)
        let key = request.count == 7 && mechanism == "CURVE" ? ZMQCurveKey(bytes: request[6]) : nil
        if let key, let name = curve.clients.name(of: key) {
            // Admissions at info, at most one a minute per client: a client whose connection
            // flaps cannot flood the log.
            let now = ContinuousClock.now
            if lastAdmitted[name + domain].map({ now - $0 >= .seconds(60) }) ?? true {
                lastAdmitted[name + domain] = now
                logger.info("CURVE: client \(name) (\(key.z85)) connected from \(address) to \(domain)")
            }
            return [version, id, Array("200".utf8), Array("OK".utf8), Array(name.utf8), []]
        }
        counters.curveRejected.add(1, ordering: .relaxed)
        let who = key.map { "key \($0.z85)" } ?? "mechanism \(mechanism)"
        log.warning(
            reason: DaemonCounters.curveRejectedReason + ":" + domain,
            message: "CURVE: refused a client not in the allowed clients: \(who) from \(address) on \(domain)", stream: nil)
        return [version, id, Array("400".utf8), Array("not an allowed client".utf8), [], []]
    }

    /// A handshake that failed before ZAP was asked, as the socket's monitor reported it.
    private func handshakeFailed(_ event: ZMQMonitorEvent, domain: String, log: inout RateLimitedLog) {
        guard event.event == .handshakeFailedProtocol || event.event == .handshakeFailedNoDetail else { return }
        counters.curveHandshakeFailed.add(1, ordering: .relaxed)
        let why: String
        switch ZMQProtocolError(rawValue: event.value) {
        case _ where event.event == .handshakeFailedNoDetail:
            why = "it did not complete: the peer closed the connection during it (a client without CURVE, or with another mechanism, does when it reads the server's greeting first)"
        case .mechanismMismatch: why = "the client does not use CURVE (plain ZeroMQ)"
        case .cryptographic: why = "the client's CURVE handshake does not decrypt: it uses another server key"
        case let error: why = "a malformed handshake (\(error))"
        }
        log.warning(
            reason: DaemonCounters.curveHandshakeFailedReason + ":" + domain,
            message: "CURVE: a handshake failed on \(domain) (\(event.endpoint)): \(why)", stream: nil)
    }
}
