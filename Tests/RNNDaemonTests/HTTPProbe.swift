#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A tiny HTTP/1.1 client for the tests, over a plain socket with a receive timeout: one request
/// with `Connection: close`, the whole reply read until the server closes. No URLSession, so that
/// what goes over the wire is exactly what is written here.
enum HTTPProbe {
    struct Reply {
        var status: Int
        /// Header names in lower case.
        var headers: [String: String]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `method path` to `address` (`127.0.0.1:9557` or `[::1]:9557`).
    static func request(_ method: String, _ path: String, at address: String, seconds: Int = 5) throws -> Reply {
        let socket = try connect(to: address, seconds: seconds)
        defer { close(socket) }
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            throw Failure(description: "send: \(String(cString: strerror(errno)))")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw Failure(description: "recv: \(String(cString: strerror(errno))) after \(bytes.count) bytes") }
            bytes += chunk.prefix(n)
        }
        guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { throw Failure(description: "no end of headers in \(bytes.count) bytes") }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = head[0].split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let status = Int(statusLine[1]) else {
            throw Failure(description: "bad status line '\(head[0])'")
        }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw Failure(description: "bad header line '\(line)'") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, headers: headers, body: Array(bytes[end.upperBound...]))
    }

    /// A connected TCP socket, with send and receive timeouts.
    private static func connect(to address: String, seconds: Int) throws -> Int32 {
        let (host, port, v6) = try split(address)
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withSocketAddress(host: host, port: port, v6: v6) { Glibc.connect(fd, $0, $1) }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "connect to \(address): \(reason)")
        }
        return fd
    }

    static func split(_ address: String) throws -> (host: String, port: UInt16, v6: Bool) {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw Failure(description: "not HOST:PORT: \(address)")
        }
        let host = address[..<colon]
        if host.hasPrefix("[") { return (String(host.dropFirst().dropLast()), port, true) }
        return (String(host), port, false)
    }

    /// Calls `body` with the socket address of `host` (numeric) and `port`.
    static func withSocketAddress<T>(host: String, port: UInt16, v6: Bool, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            _ = host.withCString { inet_pton(AF_INET6, $0, &a.sin6_addr) }
            return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        _ = host.withCString { inet_pton(AF_INET, $0, &a.sin_addr) }
        return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    }
}

/// A TCP socket listening on a loopback port the system chose, held by a test so that another
/// program finds the port taken; closed when released.
final class TakenPort {
    let fd: Int32
    let port: UInt16

    /// Listens on `host` (`127.0.0.1`, or `::1` with `v6`), any free port.
    init(host: String = "127.0.0.1", v6: Bool = false) throws {
        fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let fd = self.fd
        let bound = HTTPProbe.withSocketAddress(host: host, port: 0, v6: v6) { bind(fd, $0, $1) }
        guard fd >= 0, bound == 0, listen(fd, 1) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw HTTPProbe.Failure(description: "cannot listen on \(host): \(reason)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
    }

    deinit { close(fd) }
}
