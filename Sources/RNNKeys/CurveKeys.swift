// CURVE key files (docs/security.md): `rnnd keygen` writes them, `rnnd run` reads its secret key
// and a directory of the public keys it lets in, `rnnd feed` and `rnnd tail` read a client's.
// A key file holds one key as 40 characters of Z85 on one line; a secret key file must be
// readable by its owner only.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

import ZeroMQ

/// Why a key file, or a directory of them, cannot be used. The text names the file and says what
/// to do; errors from the system keep errno and the C function's name.
public enum KeyFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call on `path` failed with errno `code`.
    case system(path: String, function: String, code: Int32)
    /// `path` is not a regular file (a directory, a device, ...).
    case notAFile(path: String)
    /// `path` holds something other than one key in Z85.
    case notAKey(path: String, reason: String)
    /// A secret key file that its group or others may read or write.
    case tooOpen(path: String, mode: UInt32)
    /// `rnnd keygen` would overwrite `path`.
    case exists(path: String)
    /// `open(2)` could not create `path` (errno `code`): no such directory, no permission, ...
    case cannotCreate(path: String, code: Int32)
    /// A directory of allowed clients without one valid `*.public` file.
    case noClients(directory: String)
    /// libzmq was built without CURVE.
    case noCurve

    public var description: String {
        switch self {
        case .system(let path, let function, let code):
            "\(path): \(function): \(String(cString: strerror(code))) (errno \(code))"
        case .notAFile(let path): "\(path): not a regular file"
        case .notAKey(let path, let reason):
            "\(path): not a CURVE key: \(reason); a key file holds one key, 40 characters of Z85 on one line (rnnd keygen writes them)"
        case .tooOpen(let path, let mode):
            "\(path): a secret key that others may read (mode \(String(mode, radix: 8, uppercase: false).leftPadded(to: 4))); chmod 600 it, or keep it where only its owner can read it"
        case .exists(let path): "\(path) exists; --force replaces it"
        case .cannotCreate(let path, let code): "\(path): open: cannot create it: \(String(cString: strerror(code))) (errno \(code))"
        case .noClients(let directory):
            "\(directory): no client is allowed: put each client's public key there as NAME.public (rnnd keygen NAME writes one)"
        case .noCurve:
            "this libzmq was built without CURVE (zmq_has(\"curve\") is false); install one built with libsodium (Debian and Ubuntu's libzmq5 is)"
        }
    }

    /// The sysexits code for a command that fails with this error: 73 (EX_CANTCREAT) for a file
    /// that exists or cannot be created, 74 (EX_IOERR) when writing or reading it fails,
    /// 69 (EX_UNAVAILABLE) without CURVE, 66 (EX_NOINPUT) for a file that cannot be opened,
    /// 65 (EX_DATAERR) for one that holds no key, 77 (EX_NOPERM) for a secret key others may read.
    public var exitCode: Int32 {
        switch self {
        case .exists, .cannotCreate: 73
        case .system(_, let function, _): function == "open" || function == "opendir" ? 66 : 74
        case .notAFile, .noClients: 66
        case .notAKey: 65
        case .tooOpen: 77
        case .noCurve: 69
        }
    }
}

// read(2) and write(2) under other names: CurveKeyFile's own `read` and `write` hide them.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, buffer, count) }
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}

/// Reading and writing the key files.
public enum CurveKeyFile {
    /// The largest key file read: a key and a line break, with room for white space.
    package static let maxBytes = 1024

    /// The key in the file at `path`: 40 characters of Z85, white space around it ignored. A
    /// `secret` key file must not be readable or writable by group or others.
    public static func read(_ path: String, secret: Bool) throws(KeyFileError) -> ZMQCurveKey {
        let (bytes, mode) = try readSmallFile(path)
        if secret, mode & 0o077 != 0 { throw .tooOpen(path: path, mode: mode & 0o7777) }
        let text = bytes.split(whereSeparator: { [0x20, 0x09, 0x0A, 0x0D].contains($0) })
        guard text.count == 1, let word = text.first else {
            throw .notAKey(path: path, reason: text.isEmpty ? "it is empty" : "it holds \(text.count) words")
        }
        guard word.count == ZMQCurveKey.textCount else {
            throw .notAKey(path: path, reason: "its key is \(word.count) characters long")
        }
        guard let key = ZMQCurveKey(z85: String(decoding: word, as: UTF8.self)) else {
            throw .notAKey(path: path, reason: "it is not valid Z85")
        }
        return key
    }

    /// The file's bytes (at most ``maxBytes``) and its permission bits.
    package static func readSmallFile(_ path: String) throws(KeyFileError) -> ([UInt8], UInt32) {
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw .system(path: path, function: "open", code: errno) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .system(path: path, function: "fstat", code: errno) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw .notAFile(path: path) }
        var bytes = [UInt8](repeating: 0, count: maxBytes + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .system(path: path, function: "read", code: errno)
            }
            if n == 0 { break }
            count += n
        }
        if count > maxBytes { throw .notAKey(path: path, reason: "it is larger than \(maxBytes) bytes") }
        return (Array(bytes.prefix(count)), UInt32(status.st_mode))
    }

    /// `rnnd keygen`: a new key pair in `directory` as `name.public` (mode 0644) and
    /// `name.secret` (mode 0600), each one line of Z85. Without `replace` neither file may
    /// exist and each is created with `O_EXCL`; with it each is written to a new file and
    /// renamed over the old one, so that a reader never sees half a key. Returns the public key
    /// in Z85 and the two paths.
    public static func generate(
        name: String, directory: String, replace: Bool
    ) throws(KeyFileError) -> (publicKey: String, publicPath: String, secretPath: String) {
        guard ZMQLibrary.has("curve") else { throw .noCurve }
        let base = (directory.hasSuffix("/") ? String(directory.dropLast()) : directory) + "/" + name
        let publicPath = base + ".public", secretPath = base + ".secret"
        if !replace {
            for path in [secretPath, publicPath] {
                var status = stat()
                if lstat(path, &status) == 0 { throw .exists(path: path) }
            }
        }
        let keys: ZMQCurveKeyPair
        do { keys = try ZMQCurveKeyPair.generate() } catch {
            throw .system(path: secretPath, function: error.function, code: error.code)
        }
        try write(Array((keys.secretKey.z85 + "\n").utf8), to: secretPath, mode: 0o600, replace: replace)
        do {
            try write(Array((keys.publicKey.z85 + "\n").utf8), to: publicPath, mode: 0o644, replace: replace)
        } catch {
            if !replace { unlink(secretPath) }  // no secret key without its public key
            throw error
        }
        return (keys.publicKey.z85, publicPath, secretPath)
    }

    /// Writes `bytes` to a file at `path` with permissions `mode` (whatever the umask), synced
    /// to disk: created with `O_EXCL`, or, with `replace`, written beside it and renamed over it.
    package static func write(_ bytes: [UInt8], to path: String, mode: mode_t, replace: Bool) throws(KeyFileError) {
        let target = replace ? path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" : path
        var fd: Int32
        repeat {
            fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        } while fd < 0 && errno == EINTR
        guard fd >= 0 else {
            if errno == EEXIST { throw .exists(path: target) }
            throw .cannotCreate(path: target, code: errno)
        }
        var failure: KeyFileError?
        if fchmod(fd, mode) != 0 { failure = .system(path: target, function: "fchmod", code: errno) }
        var written = 0
        while failure == nil, written < bytes.count {
            let n = bytes.withUnsafeBytes { systemWrite(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno != EINTR { failure = .system(path: target, function: "write", code: errno) }
                continue
            }
            written += n
        }
        if failure == nil, fsync(fd) != 0 { failure = .system(path: target, function: "fsync", code: errno) }
        close(fd)
        if failure == nil, replace, rename(target, path) != 0 { failure = .system(path: path, function: "rename", code: errno) }
        if let failure {
            unlink(target)
            throw failure
        }
    }
}

/// The clients a CURVE daemon lets in: the public keys in the `*.public` files of a directory,
/// each named by its file name without `.public`.
public struct AllowedClients: Sendable, Equatable {
    /// Key → name. A key in two files keeps the name that sorts first.
    public var names: [ZMQCurveKey: String]

    public init(names: [ZMQCurveKey: String] = [:]) { self.names = names }

    public var count: Int { names.count }

    /// The name of the client with `key`, or nil when it is not allowed.
    public func name(of key: ZMQCurveKey) -> String? { names[key] }

    /// The keys of every `*.public` file in `directory` (other files, and names starting with a
    /// dot, are left alone), with a problem for each such file that holds no key. Throws when
    /// the directory cannot be read.
    public static func load(_ directory: String) throws(KeyFileError) -> (clients: AllowedClients, problems: [KeyFileError]) {
        guard let stream = opendir(directory) else { throw .system(path: directory, function: "opendir", code: errno) }
        var files: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".public"), !name.hasPrefix("."), name.count > ".public".count { files.append(name) }
        }
        closedir(stream)
        var clients = AllowedClients(), problems: [KeyFileError] = []
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        for file in files.sorted() {
            do {
                let key = try CurveKeyFile.read(base + file, secret: false)
                if clients.names[key] == nil { clients.names[key] = String(file.dropLast(".public".count)) }
            } catch {
                problems.append(error)
            }
        }
        return (clients, problems)
    }

    /// What differs in `new`: the clients added and removed, as `name (key)`.
    public func changes(to new: AllowedClients) -> (added: [String], removed: [String]) {
        func describe(_ keys: some Sequence<ZMQCurveKey>, _ names: [ZMQCurveKey: String]) -> [String] {
            keys.map { "\(names[$0] ?? "?") (\($0.z85))" }.sorted()
        }
        let added = new.names.keys.filter { names[$0] == nil }
        let removed = names.keys.filter { new.names[$0] == nil }
        return (describe(added, new.names), describe(removed, names))
    }
}

/// A CURVE client's keys (`rnnd feed`, `rnnd tail`): the daemon's public key and the client's
/// own key pair.
public struct CurveClientKeys: Sendable {
    public var serverKey: ZMQCurveKey
    public var keyPair: ZMQCurveKeyPair

    public init(serverKey: ZMQCurveKey, keyPair: ZMQCurveKeyPair) {
        self.serverKey = serverKey
        self.keyPair = keyPair
    }

    /// Reads the daemon's public key from `serverKeyFile` and the client's secret key from
    /// `secretKeyFile` (mode 0600 or tighter); the client's public key is derived from it.
    public static func load(serverKeyFile: String, secretKeyFile: String) throws(KeyFileError) -> CurveClientKeys {
        guard ZMQLibrary.has("curve") else { throw .noCurve }
        let serverKey = try CurveKeyFile.read(serverKeyFile, secret: false)
        let secretKey = try CurveKeyFile.read(secretKeyFile, secret: true)
        do {
            return CurveClientKeys(serverKey: serverKey, keyPair: try ZMQCurveKeyPair(secretKey: secretKey))
        } catch {
            throw .system(path: secretKeyFile, function: error.function, code: error.code)
        }
    }
}

extension ZMQSocket {
    /// Makes a tool's socket a CURVE client with `keys`; nil leaves it plain. Before attaching.
    package func useCurve(_ keys: CurveClientKeys?) throws(ZMQError) {
        guard let keys else { return }
        try makeCurveClient(serverKey: keys.serverKey, keyPair: keys.keyPair)
    }
}
