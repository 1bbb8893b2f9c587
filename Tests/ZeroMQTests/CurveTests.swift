import Foundation
import Synchronization
import Testing
import ZeroMQ

/// CURVE over real tcp loopback sockets: who gets through to a CURVE server and who does not,
/// with and without a ZAP handler, and what the server's monitor reports.
@Suite(.timeLimit(.minutes(1)))
struct CurveTests {
    /// RFC 32/Z85's test vector.
    @Test func z85MatchesTheSpecification() throws {
        let bytes: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        #expect(ZMQZ85.encode(bytes) == "HelloWorld")
        #expect(ZMQZ85.decode("HelloWorld") == bytes)
        #expect(ZMQZ85.encode([1, 2, 3]) == nil, "not a multiple of 4 bytes")
        #expect(ZMQZ85.decode("HelloWorl") == nil, "not a multiple of 5 characters")
        #expect(ZMQZ85.decode("Hello Worl") == nil, "a space is not Z85")
        #expect(ZMQZ85.decode("#####") == nil, "beyond 2^32 - 1")
        #expect(ZMQZ85.decode("") == [])
    }

    @Test func keysRoundTripAndThePublicKeyFollowsFromTheSecret() throws {
        try #require(ZMQLibrary.has("curve"), "libzmq was built without CURVE")
        let pair = try ZMQCurveKeyPair.generate()
        #expect(pair.publicKey != pair.secretKey)
        #expect(pair.publicKey.z85.count == 40)
        #expect(ZMQCurveKey(z85: pair.publicKey.z85) == pair.publicKey)
        #expect(try ZMQCurveKeyPair(secretKey: pair.secretKey).publicKey == pair.publicKey)
        #expect(try ZMQCurveKeyPair.generate().publicKey != pair.publicKey)
        #expect(ZMQCurveKey(z85: String(pair.publicKey.z85.dropLast())) == nil)
        #expect(ZMQCurveKey(bytes: Array(repeating: 0, count: 31)) == nil)
    }

    /// A PULL server with CURVE on tcp://127.0.0.1:*, its address, and a monitor of its failed
    /// handshakes at `inproc://monitor-<n>`.
    struct Server: ~Copyable {
        let pull: ZMQSocket
        let address: String
        let keys: ZMQCurveKeyPair

        init(_ context: ZMQContext, monitor: String? = nil, zapDomain: String? = nil, enforce: Bool = false) throws {
            let keys = try ZMQCurveKeyPair.generate()
            let pull = try ZMQSocket(context, type: .pull)
            try pull.makeCurveServer(secretKey: keys.secretKey)
            if let zapDomain { try pull.setZAPDomain(zapDomain) }
            try pull.setZAPEnforceDomain(enforce)
            try pull.setReceiveTimeout(.milliseconds(100))
            if let monitor { try pull.monitor(monitor, events: .handshakeFailures) }
            try pull.bind("tcp://127.0.0.1:*")
            address = try pull.lastEndpoint
            self.keys = keys
            self.pull = pull
        }

        /// Whether `push` gets a message through within `seconds` (it sends until then).
        func delivers(_ push: borrowing ZMQSocket, _ text: String, seconds: Double = 1) throws -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            _ = try push.sendMultipart([bytes(text)], flags: .dontWait)
            while Date() < deadline {
                if case .frames(let frames) = try pull.receiveFrames() { return frames == [bytes(text)] }
            }
            return false
        }
    }

    static func push(_ context: ZMQContext, to address: String, serverKey: ZMQCurveKey?, keys: ZMQCurveKeyPair? = nil) throws -> ZMQSocket {
        let push = try ZMQSocket(context, type: .push)
        if let serverKey { try push.makeCurveClient(serverKey: serverKey, keyPair: keys ?? ZMQCurveKeyPair.generate()) }
        try push.setOption(.reconnectInterval, 50)
        try push.connect(address)
        return push
    }

    @Test func aCurveClientWithTheServersKeyTalksAndOthersDoNot() throws {
        try #require(ZMQLibrary.has("curve"))
        let context = try ZMQContext()
        let server = try Server(context, monitor: "inproc://monitor-1")
        #expect(try server.pull.isCurveServer)
        let monitor = try ZMQSocket(context, type: .pair)
        try monitor.setReceiveTimeout(.seconds(5))
        try monitor.connect("inproc://monitor-1")

        let good = try Self.push(context, to: server.address, serverKey: server.keys.publicKey)
        #expect(try server.delivers(good, "encrypted", seconds: 5))

        // Plain ZeroMQ (the NULL mechanism): the handshake fails on the mechanism.
        let plain = try Self.push(context, to: server.address, serverKey: nil)
        #expect(try !server.delivers(plain, "plain"))
        let mismatch = try #require(ZMQMonitorEvent(frames: monitor.receiveFrames().frames ?? []))
        #expect(mismatch.event == .handshakeFailedProtocol)
        #expect(ZMQProtocolError(rawValue: mismatch.value) == .mechanismMismatch, "\(ZMQProtocolError(rawValue: mismatch.value))")
        #expect(mismatch.endpoint == server.address)
        // Drop it before the next client, so that its retries do not fill the monitor.
        _ = consume plain

        // CURVE with another server's key: the server cannot open the client's hello.
        let wrong = try Self.push(context, to: server.address, serverKey: ZMQCurveKeyPair.generate().publicKey)
        #expect(try !server.delivers(wrong, "wrong key"))
        var sawCryptographic = false
        while case .frames(let frames) = try monitor.receiveFrames(flags: .dontWait), let event = ZMQMonitorEvent(frames: frames) {
            if event.event == .handshakeFailedProtocol, ZMQProtocolError(rawValue: event.value) == .cryptographic { sawCryptographic = true }
        }
        #expect(sawCryptographic)
        #expect(try server.delivers(good, "still talking"))
    }

    /// A ZAP handler (RFC 27) that lets in the clients whose keys it holds: requests are
    /// version, request id, domain, address, identity, mechanism, key; the reply echoes the
    /// version and the id, then status code, status text, user id and metadata.
    final class Handler: Sendable {
        let allowed: Set<ZMQCurveKey>
        let requests = Mutex<[[[UInt8]]]>([])
        let stop = Atomic<Bool>(false)
        let done = DispatchSemaphore(value: 0)
        let ready = DispatchSemaphore(value: 0)

        init(_ context: ZMQContext, allowed: Set<ZMQCurveKey>) {
            self.allowed = allowed
            Thread { [self] in
                defer { done.signal() }
                guard let rep = try? ZMQSocket(context, type: .rep) else { ready.signal(); return }
                try? rep.setReceiveTimeout(.milliseconds(50))
                try? rep.bind("inproc://zeromq.zap.01")
                ready.signal()
                while !stop.load(ordering: .relaxed) {
                    guard case .frames(let request)? = try? rep.receiveFrames() else { continue }
                    requests.withLock { $0.append(request) }
                    let key = request.count == 7 ? ZMQCurveKey(bytes: request[6]) : nil
                    let ok = key.map(allowed.contains) ?? false
                    _ = try? rep.sendMultipart([request[0], request[1], bytes(ok ? "200" : "400"), bytes(ok ? "OK" : "no"), bytes(ok ? "user" : ""), []])
                }
            }.start()
            ready.wait()
        }

        func finish() {
            stop.store(true, ordering: .relaxed)
            done.wait()
        }
    }

    @Test func aZAPHandlerDecidesWhichClientsGetIn() throws {
        try #require(ZMQLibrary.has("curve"))
        let context = try ZMQContext()
        let allowedKeys = try ZMQCurveKeyPair.generate(), otherKeys = try ZMQCurveKeyPair.generate()
        let handler = Handler(context, allowed: [allowedKeys.publicKey])
        defer { handler.finish() }
        let server = try Server(context, monitor: "inproc://monitor-2", zapDomain: "samples", enforce: true)
        let monitor = try ZMQSocket(context, type: .pair)
        try monitor.setReceiveTimeout(.seconds(5))
        try monitor.connect("inproc://monitor-2")

        let allowed = try Self.push(context, to: server.address, serverKey: server.keys.publicKey, keys: allowedKeys)
        #expect(try server.delivers(allowed, "allowed", seconds: 5))
        let other = try Self.push(context, to: server.address, serverKey: server.keys.publicKey, keys: otherKeys)
        #expect(try !server.delivers(other, "not allowed"))
        let refused = try #require(ZMQMonitorEvent(frames: monitor.receiveFrames().frames ?? []))
        #expect(refused.event == .handshakeFailedAuth && refused.value == 400)

        let requests = handler.requests.withLock { $0 }
        let first = try #require(requests.first)
        #expect(first.count == 7)
        #expect(first[0] == bytes("1.0") && first[2] == bytes("samples") && first[3] == bytes("127.0.0.1") && first[5] == bytes("CURVE"))
        #expect(Set(requests.map { $0.last ?? [] }) == [allowedKeys.publicKey.bytes, otherKeys.publicKey.bytes])
    }

    @Test func withTheDomainEnforcedNoHandlerMeansNoClient() throws {
        try #require(ZMQLibrary.has("curve"))
        let context = try ZMQContext()
        let server = try Server(context, zapDomain: "samples", enforce: true)
        let client = try Self.push(context, to: server.address, serverKey: server.keys.publicKey)
        #expect(try !server.delivers(client, "no handler"))

        // Enforcing without a domain skips ZAP altogether (libzmq 4.3): the domain is needed.
        let noDomain = try Server(context, enforce: true)
        let anyone = try Self.push(context, to: noDomain.address, serverKey: noDomain.keys.publicKey)
        #expect(try noDomain.delivers(anyone, "enforced, but no domain", seconds: 5))

        // libzmq's default lets every client in that knows the server's key.
        let open = try Server(context, enforce: false)
        let welcome = try Self.push(context, to: open.address, serverKey: open.keys.publicKey)
        #expect(try open.delivers(welcome, "no handler, not enforced", seconds: 5))
    }
}
