import Foundation
import RNNDaemon
@testable import RNNKeys
import Testing
import ZeroMQ

/// Key files, the allowed clients' directory, the CURVE settings of `rnnd run`, and `rnnd keygen`
/// as a user runs it.
@Suite(.timeLimit(.minutes(1)))
struct CurveKeyTests {
    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-keys-\(UUID())").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes `text` to `path` with permissions `mode`.
    static func write(_ text: String, to path: String, mode: Int = 0o644) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func keyFilesHoldOneKeyAndSecretOnesAreTheOwnersOnly() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (publicKey, publicPath, secretPath) = try CurveKeyFile.generate(name: "a", directory: directory, replace: false)
        #expect(try CurveKeyFile.read(publicPath, secret: false).z85 == publicKey)
        let secret = try CurveKeyFile.read(secretPath, secret: true)
        #expect(secret.z85 != publicKey)

        // White space around the key is fine; anything else is named.
        let path = directory + "/k"
        try Self.write("  \(publicKey)\r\n\n", to: path)
        #expect(try CurveKeyFile.read(path, secret: false).z85 == publicKey)
        func refusal(_ text: String, secret: Bool = false, mode: Int = 0o600) throws -> KeyFileError? {
            try Self.write(text, to: path, mode: mode)
            do throws(KeyFileError) {
                _ = try CurveKeyFile.read(path, secret: secret)
                return nil
            } catch {
                return error
            }
        }
        #expect(try refusal("") == .notAKey(path: path, reason: "it is empty"))
        #expect(try refusal(String(publicKey.dropLast())) == .notAKey(path: path, reason: "its key is 39 characters long"))
        #expect(try refusal("\(publicKey) \(publicKey)") == .notAKey(path: path, reason: "it holds 2 words"))
        #expect(try refusal(String(repeating: "\"", count: 40)) == .notAKey(path: path, reason: "it is not valid Z85"))
        #expect(try refusal(String(repeating: "#", count: 40)) == .notAKey(path: path, reason: "it is not valid Z85"), "beyond 2^32")
        #expect(try refusal(String(repeating: "x", count: 2000)) == .notAKey(path: path, reason: "it is larger than 1024 bytes"))
        #expect(try refusal(secret.z85, secret: true, mode: 0o640) == .tooOpen(path: path, mode: 0o640))
        #expect(try refusal(secret.z85, secret: true, mode: 0o604) == .tooOpen(path: path, mode: 0o604))
        #expect(try refusal(secret.z85, secret: true, mode: 0o400) == nil)
        #expect(try refusal(publicKey, secret: false, mode: 0o644) == nil)
        let tooOpen = try #require(try refusal(secret.z85, secret: true, mode: 0o644))
        #expect(tooOpen.description == "\(path): a secret key that others may read (mode 0644); chmod 600 it, or keep it where only its owner can read it")
        #expect(tooOpen.exitCode == 77)

        do throws(KeyFileError) {
            _ = try CurveKeyFile.read(directory + "/missing", secret: false)
            Issue.record("read a missing file")
        } catch {
            #expect(error == .system(path: directory + "/missing", function: "open", code: ENOENT))
            #expect(error.exitCode == 66)
        }
        do throws(KeyFileError) {
            _ = try CurveKeyFile.read(directory, secret: false)
            Issue.record("read a directory")
        } catch {
            #expect(error == .notAFile(path: directory))
        }
    }

    @Test func theAllowedClientsAreThePublicFilesOfADirectory() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keys = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: keys) }
        var z85: [String: String] = [:]
        for name in ["alice", "bob", "carol"] {
            z85[name] = try CurveKeyFile.generate(name: name, directory: keys, replace: false).publicKey
        }
        try Self.write(z85["alice"]! + "\n", to: directory + "/alice.public")
        try Self.write(z85["bob"]! + "\n", to: directory + "/bob.public")
        try Self.write("see alice.public\n", to: directory + "/README")             // not *.public: left alone
        try Self.write(z85["carol"]! + "\n", to: directory + "/.carol.public")     // hidden: left alone
        try Self.write("nonsense\n", to: directory + "/broken.public")

        let (clients, problems) = try AllowedClients.load(directory)
        #expect(clients.count == 2)
        #expect(Set(clients.names.values) == ["alice", "bob"])
        #expect(problems == [.notAKey(path: directory + "/broken.public", reason: "its key is 8 characters long")])

        var changed = clients
        changed.names = changed.names.filter { $0.value != "bob" }
        let (added, removed) = clients.changes(to: changed)
        #expect(added == [])
        #expect(removed == ["bob (\(z85["bob"]!))"])
        #expect(changed.changes(to: clients).added == ["bob (\(z85["bob"]!))"])

        do throws(KeyFileError) {
            _ = try AllowedClients.load(directory + "/missing")
            Issue.record("read a missing directory")
        } catch {
            #expect(error == .system(path: directory + "/missing", function: "opendir", code: ENOENT))
        }
    }

    @Test func theCurveSettingsAreCheckedBeforeAnythingStarts() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try CurveKeyFile.generate(name: "rnnd", directory: directory, replace: false)
        _ = try CurveKeyFile.generate(name: "alice", directory: directory, replace: false)
        let clients = directory + "/clients"
        try FileManager.default.createDirectory(atPath: clients, withIntermediateDirectories: false)

        var c = DaemonConfiguration()
        #expect(!c.curveEnabled)
        c.curveSecretKeyFile = directory + "/rnnd.secret"
        #expect(c.problems() == [
            "security.curve_allowed_clients (--curve-allowed-clients): is not set, but security.curve_secret_key_file is: "
                + "CURVE needs both, the daemon's secret key and the directory of the clients it lets in",
        ])
        c.curveAllowedClients = clients
        #expect(c.curveEnabled)
        #expect(c.problems() == [
            "security.curve_allowed_clients (--curve-allowed-clients): \(clients): no client is allowed: put each client's "
                + "public key there as NAME.public (rnnd keygen NAME writes one)",
        ])
        try FileManager.default.copyItem(atPath: directory + "/alice.public", toPath: clients + "/alice.public")
        #expect(c.problems() == [])

        // The secret key must be a secret one, readable by its owner only.
        c.curveSecretKeyFile = directory + "/alice.public"
        #expect(c.problems().map { $0.contains("is a public key file; give the daemon its .secret file") } == [true])
        c.curveSecretKeyFile = directory + "/rnnd.secret"
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: directory + "/rnnd.secret")
        #expect(c.problems().map { $0.contains("a secret key that others may read") } == [true])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: directory + "/rnnd.secret")

        // A relative path is a credential when systemd passes some.
        c.curveSecretKeyFile = "rnnd.secret"
        #expect(c.resolvedCurveSecretKeyFile(credentialsDirectory: directory) == directory + "/rnnd.secret")
        #expect(c.resolvedCurveSecretKeyFile(credentialsDirectory: nil) == "rnnd.secret")
        c.curveSecretKeyFile = directory + "/rnnd.secret"
        #expect(c.resolvedCurveSecretKeyFile(credentialsDirectory: "/run/credentials/rnnd.service") == directory + "/rnnd.secret")

        // In the file: [security], printed back by --print-config; a bad value there exits 78.
        let text = "[security]\ncurve_secret_key_file = \"\(directory)/rnnd.secret\"\ncurve_allowed_clients = \"\(clients)\"\n"
        let parsed = try ConfigurationFile.parse(text, file: "rnnd.toml")
        #expect(parsed.curveSecretKeyFile == directory + "/rnnd.secret" && parsed.curveAllowedClients == clients)
        let printed = ConfigurationFile.render(parsed, environment: [:])
        #expect(try ConfigurationFile.parse(printed, file: "printed.toml") == parsed)
        #expect(ConfigurationFile.render(DaemonConfiguration(), environment: [:]).contains(
            "# curve_secret_key_file is not set: no CURVE, every peer may connect (docs/security.md)"))
        let file = directory + "/rnnd.toml"
        try Self.write(text.replacingOccurrences(of: clients, with: directory + "/nowhere"), to: file)
        do throws(ConfigurationError) {
            _ = try DaemonConfiguration.resolve(file: file) { _ in }
            Issue.record("accepted a missing directory")
        } catch {
            #expect(error.exitCode == 78)
            #expect(error.issues.map(\.key) == ["security.curve_allowed_clients"])
            #expect(error.description.contains("\(directory)/nowhere: opendir: No such file or directory (errno 2)"))
        }
        #expect(throws: Never.self) { try DaemonConfiguration.resolve(file: file) { $0.curveAllowedClients = clients } }
    }

    @Test func keygenWritesAPairAndNeverOverwritesUnlessForced() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try ReplayCommandTests.run(["keygen", "sensor-7", "--dir", directory])
        #expect(first.status == 0, "\(first.stderr)")
        let publicPath = directory + "/sensor-7.public", secretPath = directory + "/sensor-7.secret"
        #expect(try Self.mode(secretPath) == 0o600)
        #expect(try Self.mode(publicPath) == 0o644)
        let publicKey = try CurveKeyFile.read(publicPath, secret: false)
        #expect(first.stdout.contains("public key \(publicKey.z85)"))
        // The public key is the one of the secret key.
        let keys = try CurveClientKeys.load(serverKeyFile: publicPath, secretKeyFile: secretPath)
        #expect(keys.keyPair.publicKey == publicKey)
        #expect(try String(contentsOfFile: secretPath, encoding: .utf8).count == 41, "40 characters and a line break")

        let again = try ReplayCommandTests.run(["keygen", "sensor-7", "--dir", directory])
        #expect(again.status == 73)
        #expect(again.stderr == "rnnd keygen: \(secretPath) exists; --force replaces it\n")
        #expect(try CurveKeyFile.read(publicPath, secret: false) == publicKey, "untouched")

        // --force replaces both, and the secret key is 0600 again whatever it was.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: secretPath)
        let forced = try ReplayCommandTests.run(["keygen", "sensor-7", "--dir", directory, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try CurveKeyFile.read(publicPath, secret: false) != publicKey)
        #expect(try Self.mode(secretPath) == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["sensor-7.public", "sensor-7.secret"])

        let badName = try ReplayCommandTests.run(["keygen", "../escape", "--dir", directory])
        #expect(badName.status == 64)
        let noDirectory = try ReplayCommandTests.run(["keygen", "x", "--dir", directory + "/missing"])
        #expect(noDirectory.status == 73)
        #expect(noDirectory.stderr.contains("cannot create it: No such file or directory"))
    }
}
