internal import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// CURVE (RFC 26/CurveZMQ, RFC 25/ZMTP-CURVE): encryption and authentication of a ZeroMQ
// connection with Curve25519 keys, and Z85 (RFC 32), the text form of those keys.

/// What this libzmq was built with.
public enum ZMQLibrary {
    /// Whether libzmq supports `capability`: "curve", "ipc", "draft", ...
    ///
    /// The corresponding C function is `zmq_has`.
    public static func has(_ capability: String) -> Bool {
        zmq_has(capability) != 0
    }

    /// libzmq's version, e.g. (4, 3, 4).
    ///
    /// The corresponding C function is `zmq_version`.
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }
}

/// Z85 (RFC 32/Z85): 4 bytes as 5 printable ASCII characters, the form CURVE keys are written in.
public enum ZMQZ85 {
    /// The 85 characters, in value order.
    static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)

    /// `bytes` as Z85 text; nil unless its length is a multiple of 4.
    ///
    /// The corresponding C function is `zmq_z85_encode`.
    public static func encode(_ bytes: [UInt8]) -> String? {
        guard bytes.count % 4 == 0 else { return nil }
        var text = [CChar](repeating: 0, count: bytes.count / 4 * 5 + 1)
        guard bytes.withUnsafeBufferPointer({ zmq_z85_encode(&text, $0.baseAddress, $0.count) }) != nil else { return nil }
        return String(decoding: text.prefix(bytes.count / 4 * 5).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The bytes of Z85 `text`; nil unless its length is a multiple of 5 and every character
    /// and every group of five is valid Z85.
    ///
    /// The corresponding C function is `zmq_z85_decode`.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let characters = Array(text.utf8)
        // Checked here too: older libzmq versions read past a character outside the alphabet.
        guard characters.count % 5 == 0, characters.allSatisfy(alphabet.contains) else { return nil }
        if characters.isEmpty { return [] }
        var bytes = [UInt8](repeating: 0, count: characters.count / 5 * 4)
        let decoded = (characters.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer {
            zmq_z85_decode(&bytes, $0.baseAddress)
        }
        return decoded == nil ? nil : bytes
    }
}

/// A CURVE key: 32 bytes of a Curve25519 public or secret key, written as 40 characters of Z85.
///
/// Its `description` is the Z85 text, which is fine to log for a public key and never for a
/// secret one.
public struct ZMQCurveKey: Hashable, Sendable, CustomStringConvertible {
    /// Bytes in a key.
    public static let byteCount = 32
    /// Characters in its Z85 form.
    public static let textCount = 40

    /// The 32 bytes.
    public let bytes: [UInt8]

    /// The key of 32 `bytes`; nil for another length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    /// The key written as 40 characters of Z85; nil for anything else.
    public init?(z85 text: some StringProtocol) {
        guard text.utf8.count == Self.textCount, let bytes = ZMQZ85.decode(text) else { return nil }
        self.bytes = bytes
    }

    /// The 40 characters of Z85.
    public var z85: String { ZMQZ85.encode(bytes)! }

    public var description: String { z85 }
}

/// A CURVE key pair: a secret key and the public key that belongs to it.
public struct ZMQCurveKeyPair: Sendable {
    public let publicKey: ZMQCurveKey
    public let secretKey: ZMQCurveKey

    /// A new random key pair (libsodium's random source).
    ///
    /// The corresponding C function is `zmq_curve_keypair`; it fails with `ENOTSUP` when libzmq
    /// was built without CURVE.
    public static func generate() throws(ZMQError) -> ZMQCurveKeyPair {
        var publicText = [CChar](repeating: 0, count: ZMQCurveKey.textCount + 1)
        var secretText = [CChar](repeating: 0, count: ZMQCurveKey.textCount + 1)
        defer { secretText.withUnsafeMutableBufferPointer { wipe(UnsafeMutableRawBufferPointer($0)) } }
        try call("zmq_curve_keypair") { zmq_curve_keypair(&publicText, &secretText) }
        return ZMQCurveKeyPair(publicKey: key(publicText), secretKey: key(secretText))
    }

    /// The pair of `secretKey`, its public key derived from it.
    ///
    /// The corresponding C function is `zmq_curve_public`; it fails with `ENOTSUP` when libzmq
    /// was built without CURVE.
    public init(secretKey: ZMQCurveKey) throws(ZMQError) {
        var publicText = [CChar](repeating: 0, count: ZMQCurveKey.textCount + 1)
        var secretText = secretKey.z85.utf8.map { CChar(bitPattern: $0) } + [0]
        defer { secretText.withUnsafeMutableBufferPointer { wipe(UnsafeMutableRawBufferPointer($0)) } }
        try call("zmq_curve_public") { zmq_curve_public(&publicText, secretText) }
        self.init(publicKey: Self.key(publicText), secretKey: secretKey)
    }

    public init(publicKey: ZMQCurveKey, secretKey: ZMQCurveKey) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    private static func key(_ text: [CChar]) -> ZMQCurveKey {
        ZMQCurveKey(z85: String(decoding: text.prefix(ZMQCurveKey.textCount).map { UInt8(bitPattern: $0) }, as: UTF8.self))!
    }
}

/// Overwrites a buffer that held key material (the Swift key values themselves are ordinary
/// arrays, which the runtime may have copied; this clears the C-side copies we made).
func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
    guard let base = buffer.baseAddress else { return }
    memset(base, 0, buffer.count)
}

extension ZMQSocket {
    /// Makes the socket a CURVE server with `secretKey`: every connection to it must be a CURVE
    /// client that knows the server's public key, and is encrypted. Which clients may connect
    /// is decided by the process's ZAP handler, when one is bound (``setZAPDomain(_:)``,
    /// ``setZAPEnforceDomain(_:)``). Set before bind or connect.
    ///
    /// The corresponding C function is `zmq_setsockopt(ZMQ_CURVE_SERVER)` and
    /// `zmq_setsockopt(ZMQ_CURVE_SECRETKEY)`.
    public func makeCurveServer(secretKey: ZMQCurveKey) throws(ZMQError) {
        try setOption(.curveServer, 1)
        try setBytes(ZMQ_CURVE_SECRETKEY, secretKey.bytes)
    }

    /// Makes the socket a CURVE client of the server whose public key is `serverKey`,
    /// authenticating with `keyPair`. Set before bind or connect.
    ///
    /// The corresponding C function is `zmq_setsockopt` with `ZMQ_CURVE_SERVERKEY`,
    /// `ZMQ_CURVE_PUBLICKEY` and `ZMQ_CURVE_SECRETKEY`.
    public func makeCurveClient(serverKey: ZMQCurveKey, keyPair: ZMQCurveKeyPair) throws(ZMQError) {
        try setBytes(ZMQ_CURVE_SERVERKEY, serverKey.bytes)
        try setBytes(ZMQ_CURVE_PUBLICKEY, keyPair.publicKey.bytes)
        try setBytes(ZMQ_CURVE_SECRETKEY, keyPair.secretKey.bytes)
    }

    /// The ZAP domain (RFC 27) of this socket's connections: passed to the ZAP handler with
    /// every authentication request, so that one handler can tell the sockets of a process
    /// apart. At most 255 bytes.
    ///
    /// The corresponding C function is `zmq_setsockopt(ZMQ_ZAP_DOMAIN)`.
    public func setZAPDomain(_ domain: String) throws(ZMQError) {
        try setBytes(ZMQ_ZAP_DOMAIN, domain.utf8)
    }

    /// With `true`, a CURVE server refuses every connection while no ZAP handler is bound at
    /// `inproc://zeromq.zap.01` in its context, instead of letting every client that knows its
    /// public key in (libzmq's default, for compatibility): fail closed. Only together with a
    /// ZAP domain (``setZAPDomain(_:)``): libzmq 4.3 skips ZAP altogether for a socket that
    /// enforces the domain but has none.
    ///
    /// The corresponding C function is `zmq_setsockopt(ZMQ_ZAP_ENFORCE_DOMAIN)`.
    public func setZAPEnforceDomain(_ enforce: Bool) throws(ZMQError) {
        try setOption(.zapEnforceDomain, enforce ? 1 : 0)
    }

    /// Whether the socket is a CURVE server.
    ///
    /// The corresponding C function is `zmq_getsockopt(ZMQ_CURVE_SERVER)`.
    public var isCurveServer: Bool {
        get throws(ZMQError) { try option(.curveServer) != 0 }
    }
}

extension ZMQSocketOption {
    /// The socket is a CURVE server (`ZMQ_CURVE_SERVER`, 0 or 1); see ``ZMQSocket/makeCurveServer(secretKey:)``.
    public static let curveServer = Self(rawValue: ZMQ_CURVE_SERVER)
    /// Refuse connections while no ZAP handler is bound (`ZMQ_ZAP_ENFORCE_DOMAIN`, 0 or 1).
    public static let zapEnforceDomain = Self(rawValue: ZMQ_ZAP_ENFORCE_DOMAIN)
}
