import ArgumentParser
import Foundation
import RNNDaemon
import RNNKeys

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a CURVE key pair: NAME.public and NAME.secret (docs/security.md).",
        discussion: """
            Each file holds one key, 40 characters of Z85 on one line. NAME.secret is created \
            with mode 0600 and never overwritten unless --force is given; NAME.public may be \
            given to anyone. For the daemon: rnnd run --curve-secret-key-file NAME.secret, and \
            its public key to every client. For a client: its NAME.public in the daemon's \
            --curve-allowed-clients directory, its NAME.secret to rnnd feed or rnnd tail \
            (--curve-secret-key-file). Exit status: 0, 64 for a bad name, 73 when a file exists \
            or cannot be created, 74 when it cannot be written, 69 when libzmq lacks CURVE.
            """
    )

    @Argument(help: ArgumentHelp(
        "The key's name: 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or '-'; it names the client in the daemon's log.",
        valueName: "name"))
    var name: String

    @Option(name: .customLong("dir"), help: ArgumentHelp("Where to write the two files.", valueName: "directory"))
    var directory = "."

    @Flag(help: "Replace existing files of the same name.")
    var force = false

    mutating func validate() throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard (1...64).contains(name.count), name.allSatisfy(allowed.contains), !name.hasPrefix("."), !name.hasPrefix("-") else {
            throw ValidationError(
                "the name \"\(name)\" is not 1 to 64 letters, digits, '.', '_' or '-' (not starting with '.' or '-')")
        }
        if directory.isEmpty { throw ValidationError("--dir is empty") }
    }

    func run() throws {
        do throws(KeyFileError) {
            let (publicKey, publicPath, secretPath) = try CurveKeyFile.generate(name: name, directory: directory, replace: force)
            print("rnnd keygen: public key \(publicKey)")
            print("rnnd keygen: wrote \(publicPath) (the public key, for anyone) and \(secretPath) (the secret key, mode 0600: keep it secret)")
        } catch {
            FileHandle.standardError.write(Data("rnnd keygen: \(error)\n".utf8))
            throw ExitCode(error.exitCode)
        }
    }
}
