import ArgumentParser
import Foundation
import RNNDaemon
import RNNKeys

/// The CURVE flags of `rnnd feed` and `rnnd tail`, to talk to a daemon whose sockets are CURVE
/// servers (docs/security.md).
struct CurveClientOptions: ParsableArguments {
    @Option(name: .customLong("curve-server-key"), help: ArgumentHelp(
        "The daemon's public key file (its NAME.public), for a daemon with CURVE; needs --curve-secret-key-file.",
        valueName: "file"))
    var serverKeyFile: String?

    @Option(name: .customLong("curve-secret-key-file"), help: ArgumentHelp(
        "This client's secret key file (rnnd keygen; mode 0600), whose public key the daemon allows.",
        valueName: "file"))
    var secretKeyFile: String?

    func validate() throws {
        if (serverKeyFile == nil) != (secretKeyFile == nil) {
            throw ValidationError("--curve-server-key and --curve-secret-key-file go together: the daemon's public key and this client's secret key")
        }
    }

    /// The keys, or nil without CURVE; a file that cannot be used ends the command with
    /// `rnnd COMMAND: error` and the key file's exit status (65, 66, 69, 74 or 77).
    func load(command: String) throws -> CurveClientKeys? {
        guard let serverKeyFile, let secretKeyFile else { return nil }
        do throws(KeyFileError) {
            return try CurveClientKeys.load(serverKeyFile: serverKeyFile, secretKeyFile: secretKeyFile)
        } catch {
            FileHandle.standardError.write(Data("rnnd \(command): \(error)\n".utf8))
            throw ExitCode(error.exitCode)
        }
    }
}
