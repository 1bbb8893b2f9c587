/// An endpoint in rnnd's CZMQ-style syntax: `@tcp://127.0.0.1:5556` binds,
/// `>tcp://host:5556` connects, `@ipc:///run/rnnd/in.sock` binds a Unix domain socket.
///
/// Parsing checks the shape (prefix, transport, a port for tcp) so an operator gets an error
/// that says what to write; libzmq checks the address itself when the socket attaches.
public struct ZMQEndpoint: Hashable, Sendable, CustomStringConvertible {
    /// Whether the socket binds the address (`@`) or connects to it (`>`).
    public enum Action: Hashable, Sendable {
        case bind
        case connect
    }

    /// The transports libzmq may know; which of them it was built with is its own business.
    static let transports: Set<Substring> = ["tcp", "ipc", "inproc", "pgm", "epgm", "tipc", "vmci", "udp", "ws", "wss"]

    public var action: Action
    /// The address libzmq takes, without the prefix: `tcp://127.0.0.1:5556`.
    public var address: String

    public init(_ action: Action, _ address: String) {
        self.action = action
        self.address = address
    }

    /// Parses `@transport://address` or `>transport://address`.
    public init(parsing text: String) throws(ZMQError) {
        func reject(_ reason: String) -> ZMQError {
            .invalidEndpoint(text, reason: reason + "; write @tcp://127.0.0.1:5556 to bind or >tcp://host:5556 to connect")
        }
        guard let first = text.first else { throw reject("it is empty") }
        switch first {
        case "@": action = .bind
        case ">": action = .connect
        default: throw reject("it must start with '@' (bind) or '>' (connect)")
        }
        let rest = text.dropFirst()
        if let bad = rest.unicodeScalars.first(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
            throw reject("it contains \(bad.value == 0x20 ? "a space" : "a whitespace or control character")")
        }
        guard let separator = rest.firstRange(of: "://") else {
            throw reject("expected transport://address after '\(first)'")
        }
        let transport = rest[..<separator.lowerBound]
        let location = rest[separator.upperBound...]
        guard !transport.isEmpty else { throw reject("the transport before :// is missing") }
        guard Self.transports.contains(transport) else {
            throw reject("unknown transport '\(transport)' (tcp and ipc are the usual ones)")
        }
        guard !location.isEmpty else { throw reject("the address after \(transport):// is missing") }
        if transport == "tcp" || transport == "udp" {
            guard let colon = location.lastIndex(of: ":"), colon != location.startIndex else {
                throw reject("a \(transport) address is host:port")
            }
            let port = location[location.index(after: colon)...]
            let isNumber = !port.isEmpty && port.allSatisfy(\.isASCII) && port.allSatisfy(\.isNumber)
            guard port == "*" || (isNumber && Int(port).map { $0 <= 65535 } == true) else {
                throw reject("the port '\(port)' is not a number from 0 to 65535 or *")
            }
        }
        address = String(rest)
    }

    /// The transport: `tcp`, `ipc`, ...
    public var transport: Substring {
        address.firstRange(of: "://").map { address[..<$0.lowerBound] } ?? ""
    }

    /// The endpoint as it is written: `@tcp://127.0.0.1:5556`.
    public var description: String {
        (action == .bind ? "@" : ">") + address
    }
}
