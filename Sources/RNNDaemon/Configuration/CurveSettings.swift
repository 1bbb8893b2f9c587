#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

import RNNKeys
import ZeroMQ

extension DaemonConfiguration {
    /// systemd's `$CREDENTIALS_DIRECTORY` (`LoadCredential=`), or nil when it is not set.
    public static var credentialsDirectory: String? {
        guard let value = getenv("CREDENTIALS_DIRECTORY") else { return nil }
        let directory = String(cString: value)
        return directory.isEmpty ? nil : directory
    }

    /// The secret key file as the daemon opens it: a relative path names a credential in
    /// `credentialsDirectory` when there is one (`LoadCredential=rnnd.secret:/etc/rnnd/keys/rnnd.secret`
    /// and `curve_secret_key_file = "rnnd.secret"`), else a file in the working directory.
    public func resolvedCurveSecretKeyFile(credentialsDirectory: String? = Self.credentialsDirectory) -> String? {
        guard let file = curveSecretKeyFile else { return nil }
        guard !file.hasPrefix("/"), let credentialsDirectory else { return file }
        return (credentialsDirectory.hasSuffix("/") ? credentialsDirectory : credentialsDirectory + "/") + file
    }

    /// The CURVE settings' problems: one without the other, a libzmq without CURVE, a secret
    /// key file that cannot be read, holds no key or is open to others, and an allowed-clients
    /// directory that cannot be read, has a `*.public` file without a key (each named) or no
    /// valid one at all.
    func curveIssues(credentialsDirectory: String? = Self.credentialsDirectory) -> [ConfigurationError.Issue] {
        let secretKey = ("security.curve_secret_key_file", "--curve-secret-key-file")
        let clients = ("security.curve_allowed_clients", "--curve-allowed-clients")
        var found: [ConfigurationError.Issue] = []
        func add(_ setting: (String, String), _ message: String) {
            found.append(.init(kind: .invalidValue, key: setting.0, flag: setting.1, message: message))
        }
        switch (curveSecretKeyFile, curveAllowedClients) {
        case (nil, nil):
            return []
        case (_?, nil):
            add(clients, "is not set, but \(secretKey.0) is: CURVE needs both, the daemon's secret key and the directory of the clients it lets in")
            return found
        case (nil, _?):
            add(secretKey, "is not set, but \(clients.0) is: CURVE needs both, the daemon's secret key and the directory of the clients it lets in")
            return found
        case (let file?, let directory?):
            if file.isEmpty { add(secretKey, "is empty") }
            if directory.isEmpty { add(clients, "is empty") }
            if !found.isEmpty { return found }
            guard ZMQLibrary.has("curve") else {
                add(secretKey, KeyFileError.noCurve.description)
                return found
            }
        }
        let path = resolvedCurveSecretKeyFile(credentialsDirectory: credentialsDirectory)!
        let inCredentials = path == curveSecretKeyFile ? "" : " (\(curveSecretKeyFile!) in $CREDENTIALS_DIRECTORY)"
        if path.hasSuffix(".public") {
            add(secretKey, "\(path) is a public key file; give the daemon its .secret file")
        } else {
            do { _ = try CurveKeyFile.read(path, secret: true) } catch { add(secretKey, "\(error)\(inCredentials)") }
        }
        do {
            let (allowed, problems) = try AllowedClients.load(curveAllowedClients!)
            for problem in problems { add(clients, "\(problem)") }
            if allowed.count == 0 && problems.isEmpty { add(clients, KeyFileError.noClients(directory: curveAllowedClients!).description) }
        } catch {
            add(clients, "\(error)")
        }
        return found
    }
}
