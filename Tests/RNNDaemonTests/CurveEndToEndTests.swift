import Foundation
import RNNDaemon
@testable import RNNKeys
import Testing
import ZeroMQ

/// The real `rnnd` binary with CURVE on both sockets: only the clients in the allowed directory
/// publish samples and read forecasts; the others, with CURVE or without, get nothing through,
/// and the daemon counts and names them.
@Suite(.timeLimit(.minutes(2)))
struct CurveEndToEndTests {
    typealias RunningDaemon = DaemonEndToEndTests.RunningDaemon

    /// A directory of key pairs (`NAME.public`, `NAME.secret`, written as `rnnd keygen` does)
    /// and the daemon's directory of allowed clients, `clients/`.
    struct Keys {
        let directory: String
        var clients: String { directory + "/clients" }
        var serverSecret: String { directory + "/server.secret" }

        init(_ names: [String], allowed: [String]) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-curve-\(UUID())").path
            try FileManager.default.createDirectory(atPath: directory + "/clients", withIntermediateDirectories: true)
            for name in ["server"] + names { _ = try CurveKeyFile.generate(name: name, directory: directory, replace: false) }
            for name in allowed { try allow(name) }
        }

        func allow(_ name: String) throws {
            try FileManager.default.copyItem(atPath: "\(directory)/\(name).public", toPath: "\(clients)/\(name).public")
        }

        func disallow(_ name: String) throws {
            try FileManager.default.removeItem(atPath: "\(clients)/\(name).public")
        }

        /// The client `name`'s keys for the daemon.
        func client(_ name: String) throws -> CurveClientKeys {
            try CurveClientKeys.load(serverKeyFile: directory + "/server.public", secretKeyFile: "\(directory)/\(name).secret")
        }

        func publicKey(_ name: String) throws -> String {
            try String(contentsOfFile: "\(directory)/\(name).public", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }
    }

    static let arguments = ServiceEndToEndTests.model + ["--metrics-listen", "127.0.0.1:0"]

    /// `rnnd run` with CURVE, ready, and its two endpoints.
    static func start(_ keys: Keys) throws -> (daemon: RunningDaemon, samplesIn: String, forecastsOut: String) {
        let daemon = try RunningDaemon(arguments + ["--curve-secret-key-file", keys.serverSecret, "--curve-allowed-clients", keys.clients])
        do {
            let samplesIn = try daemon.await("samples in:"), forecastsOut = try daemon.await("forecasts out:")
            _ = try daemon.await("ready")
            return (daemon, samplesIn, forecastsOut)
        } catch {
            kill(daemon.process.processIdentifier, SIGKILL)
            throw error
        }
    }

    /// A socket of `type` connected to `endpoint`, a CURVE client with `keys` or a plain one.
    static func socket(_ context: ZMQContext, _ type: ZMQSocketType, _ endpoint: String, keys: CurveClientKeys?) throws -> ZMQSocket {
        let socket = try ZMQSocket(context, type: type)
        if let keys { try socket.makeCurveClient(serverKey: keys.serverKey, keyPair: keys.keyPair) }
        if type == .sub {
            try socket.subscribe("")
            try socket.setReceiveTimeout(.milliseconds(50))
        }
        try socket.connect(endpoint)
        return socket
    }

    /// The messages `sub` receives within `seconds`.
    static func drain(_ sub: borrowing ZMQSocket, seconds: Double) throws -> Int {
        var count = 0
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline { if case .frames = try sub.receiveFrames() { count += 1 } }
        return count
    }

    @Test func onlyAllowedClientsPublishAndSubscribe() throws {
        let keys = try Keys(["publisher", "subscriber", "intruder", "eavesdropper"], allowed: ["publisher", "subscriber"])
        defer { keys.remove() }
        let (daemon, samplesIn, forecastsOut) = try Self.start(keys)
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        #expect(try daemon.await("CURVE on samples and forecasts:").contains("2 clients allowed"))

        // The allowed publisher and subscriber, past the slow joiner.
        let client = try ForecastClient(
            samplesIn: samplesIn, forecastsOut: forecastsOut, warmup: #"{"v": 1}"#,
            publisherKeys: keys.client("publisher"), subscriberKeys: keys.client("subscriber"))
        // The others: CURVE clients with the server's key but not allowed, and plain ones.
        let context = try ZMQContext()
        let intruder = try Self.socket(context, .pub, samplesIn, keys: keys.client("intruder"))
        let plainPublisher = try Self.socket(context, .pub, samplesIn, keys: nil)
        let eavesdropper = try Self.socket(context, .sub, forecastsOut, keys: keys.client("eavesdropper"))
        let plainSubscriber = try Self.socket(context, .sub, forecastsOut, keys: nil)
        // Each has tried by now: the daemon names the refused keys, and the failed handshakes.
        for name in ["intruder", "eavesdropper"] {
            let line = try daemon.await("refused a client not in the allowed clients: key \(try keys.publicKey(name))")
            #expect(line.contains("from 127.0.0.1"), "\(line)")
        }
        _ = try daemon.await("handshake failed on samples")
        _ = try daemon.await("handshake failed on forecasts")

        for i in 0..<50 {
            let t = 1_700_000_000 + Double(i)
            #expect(try intruder.sendMultipart([Array("evil".utf8), Array(#"{"v": 1e6, "t": \#(t)}"#.utf8)]) == .sent)
            #expect(try plainPublisher.sendMultipart([Array("evil".utf8), Array(#"{"v": -1e6, "t": \#(t)}"#.utf8)]) == .sent)
            if i < 20 { try client.send("good", #"{"v": \#(sin(Double(i))), "t": \#(t)}"#) }
        }
        try client.collect(until: { $0["good", default: []].count >= 20 }, seconds: 20)
        // Anything else would come now.
        try client.collect(until: { _ in false }, seconds: 1)
        #expect(client.messages["good", default: []].count == 20)
        #expect(Set(client.messages.keys) == ["good"], "only the allowed publisher's stream: \(client.messages.keys)")
        #expect(try Self.drain(eavesdropper, seconds: 0.5) == 0, "a CURVE subscriber that is not allowed receives nothing")
        #expect(try Self.drain(plainSubscriber, seconds: 0.5) == 0, "a plain subscriber receives nothing")
        let metrics = try MetricsEndToEndTests.scrape(try daemon.await("metrics on: http://"))
        #expect(metrics.value("rnnd_curve_clients_refused_total").map { $0 >= 2 } == true)
        #expect(metrics.value("rnnd_curve_handshakes_failed_total").map { $0 >= 2 } == true)

        #expect(daemon.stop() == 0)
        let summary = try daemon.await("stopped:")
        #expect(DaemonEndToEndTests.counter("streams", in: summary) == 2, "warmup and good, no other: \(summary)")
        #expect(DaemonEndToEndTests.counter("learned", in: summary).map { $0 >= 21 } == true, "\(summary)")
        #expect(summary.contains("refused={}"), "nothing of the refused clients was received: \(summary)")
        #expect(DaemonEndToEndTests.counter("curve_rejected", in: summary).map { $0 >= 2 } == true, "\(summary)")
        #expect(DaemonEndToEndTests.counter("curve_handshake_failed", in: summary).map { $0 >= 2 } == true, "\(summary)")
    }

    @Test func sighupReadsTheAllowedClientsAgain() throws {
        let keys = try Keys(["publisher", "subscriber", "newcomer"], allowed: ["publisher", "subscriber"])
        defer { keys.remove() }
        let (daemon, samplesIn, forecastsOut) = try Self.start(keys)
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }

        try keys.allow("newcomer")
        try keys.disallow("publisher")
        kill(daemon.process.processIdentifier, SIGHUP)
        let change = try daemon.await("SIGHUP: allowed clients:")
        #expect(change.contains("added newcomer (\(try keys.publicKey("newcomer")))"), "\(change)")
        #expect(change.contains("removed publisher (\(try keys.publicKey("publisher")))"), "\(change)")
        #expect(change.hasSuffix("2 clients now"), "\(change)")

        // The newcomer now gets in; the removed publisher no longer does.
        let newcomer = try ForecastClient(
            samplesIn: samplesIn, forecastsOut: forecastsOut, warmup: #"{"v": 1}"#,
            publisherKeys: keys.client("newcomer"), subscriberKeys: keys.client("subscriber"))
        try newcomer.send("newcomer/stream", #"{"v": 2}"#)
        try newcomer.collect(until: { $0["newcomer/stream"] != nil }, seconds: 10)
        #expect(newcomer.messages["newcomer/stream"]?.count == 1)
        let context = try ZMQContext()
        let removed = try Self.socket(context, .pub, samplesIn, keys: keys.client("publisher"))
        _ = try daemon.await("refused a client not in the allowed clients: key \(try keys.publicKey("publisher"))")
        #expect(try removed.sendMultipart([Array("removed".utf8), Array(#"{"v": 3}"#.utf8)]) == .sent)

        // A directory left without a valid key changes nothing.
        try Data("not a key\n".utf8).write(to: URL(fileURLWithPath: keys.clients + "/broken.public"))
        kill(daemon.process.processIdentifier, SIGHUP)
        #expect(try daemon.await("SIGHUP: the configuration has errors; nothing changed").contains("broken.public"))

        #expect(daemon.stop() == 0)
        let summary = try daemon.await("stopped:")
        #expect(DaemonEndToEndTests.counter("streams", in: summary) == 2, "warmup and newcomer/stream: \(summary)")
    }

    @Test func feedAndTailAreCurveClients() throws {
        let keys = try Keys(["feeder", "tailer", "stranger"], allowed: ["feeder", "tailer"])
        defer { keys.remove() }
        let (daemon, samplesIn, forecastsOut) = try Self.start(keys)
        defer { if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) } }
        func curve(_ name: String) -> [String] {
            ["--curve-server-key", keys.directory + "/server.public", "--curve-secret-key-file", "\(keys.directory)/\(name).secret"]
        }

        let tail = try ReplayCommandTests.Command(["tail", "--sub", ">" + forecastsOut, "--count", "20"] + curve("tailer"))
        _ = try daemon.await("CURVE: client tailer")
        Thread.sleep(forTimeInterval: 0.3)  // its subscription follows the handshake
        let feed = try ReplayCommandTests.run(
            ["feed", ReplayCommandTests.taxi, "--pub", ">" + samplesIn, "--topic", "taxi", "--limit", "20"] + curve("feeder"))
        #expect(feed.status == 0, "\(feed.stderr)")
        #expect(try tail.wait(seconds: 30) == 0, "\(tail.stderr)")
        #expect(tail.stdout.split(separator: "\n").count == 20, "\(tail.stdout)")
        #expect(try daemon.await("CURVE: client feeder").contains("to samples"))

        // A key the daemon does not allow: feed hears no subscriber, and says what to check.
        let stranger = try ReplayCommandTests.run(
            ["feed", ReplayCommandTests.taxi, "--pub", ">" + samplesIn, "--topic", "taxi", "--wait-seconds", "1"] + curve("stranger"))
        #expect(stranger.status == 69)
        #expect(stranger.stderr.contains("With CURVE, are the server key and this client's key the daemon's?"), "\(stranger.stderr)")
        _ = try daemon.await("refused a client not in the allowed clients: key \(try keys.publicKey("stranger"))")

        // Key files that cannot be used end the tools before they connect.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keys.directory + "/stranger.secret")
        let open = try ReplayCommandTests.run(["tail", "--sub", ">" + forecastsOut] + curve("stranger"))
        #expect(open.status == 77)
        #expect(open.stderr.contains("stranger.secret: a secret key that others may read (mode 0644)"), "\(open.stderr)")
        let half = try ReplayCommandTests.run(["tail", "--curve-secret-key-file", keys.directory + "/tailer.secret"])
        #expect(half.status == 64)
        let missing = try ReplayCommandTests.run(["tail", "--curve-server-key", keys.directory + "/nope.public", "--curve-secret-key-file", keys.directory + "/tailer.secret"])
        #expect(missing.status == 66)
        #expect(daemon.stop() == 0)
    }

    @Test func badCurveSettingsExitBeforeAnythingStarts() throws {
        let keys = try Keys([], allowed: [])
        defer { keys.remove() }
        func exitStatus(_ arguments: [String]) throws -> (Int32, String) {
            let daemon = try RunningDaemon(ServiceEndToEndTests.ports + arguments)
            let deadline = Date().addingTimeInterval(10)
            while daemon.process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            if daemon.process.isRunning { kill(daemon.process.processIdentifier, SIGKILL) }
            Thread.sleep(forTimeInterval: 0.05)
            return (daemon.process.terminationStatus, daemon.text)
        }
        // One without the other, from the flags: 64.
        let (alone, aloneText) = try exitStatus(["--curve-secret-key-file", keys.serverSecret])
        #expect(alone == 64)
        #expect(aloneText.contains("security.curve_allowed_clients (--curve-allowed-clients): is not set"), "\(aloneText)")
        // No valid client yet: 64, naming the directory.
        let (empty, emptyText) = try exitStatus(["--curve-secret-key-file", keys.serverSecret, "--curve-allowed-clients", keys.clients])
        #expect(empty == 64)
        #expect(emptyText.contains("no client is allowed"), "\(emptyText)")
        // The same from a file, with a bad key file named: 78.
        try Data("HelloWorld\n".utf8).write(to: URL(fileURLWithPath: keys.clients + "/short.public"))
        let file = keys.directory + "/rnnd.toml"
        try Data("[security]\ncurve_secret_key_file = \"\(keys.serverSecret)\"\ncurve_allowed_clients = \"\(keys.clients)\"\n".utf8)
            .write(to: URL(fileURLWithPath: file))
        let (bad, badText) = try exitStatus(["--config", file])
        #expect(bad == 78)
        #expect(badText.contains("short.public: not a CURVE key: its key is 10 characters long"), "\(badText)")
        #expect(!badText.contains("ready"))
    }
}
