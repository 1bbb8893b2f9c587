#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where `--metrics-listen` serves: a numeric IPv4 address, or an IPv6 address in brackets, and a
/// port; port 0 takes any free port (the log names the one bound). Host names are not resolved,
/// so that the address cannot change under a running daemon.
public struct MetricsAddress: Sendable, Equatable, CustomStringConvertible {
    /// The address as `inet_pton(3)` reads it: dotted IPv4, or IPv6 without the brackets.
    public var host: String
    public var isIPv6: Bool
    public var port: UInt16

    /// Parses `127.0.0.1:9557`, `0.0.0.0:9557`, `[::1]:9557`, `[::]:0`; nil for anything else.
    public init?(parsing text: String) {
        guard Self.problem(text) == nil, let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            return nil
        }
        let host = text[..<colon]
        isIPv6 = host.hasPrefix("[")
        self.host = String(isIPv6 ? host.dropFirst().dropLast() : host)
        self.port = port
    }

    /// `HOST:PORT` as it is written, with the brackets of an IPv6 address.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// What is wrong with `text` as a listen address, or nil.
    package static func problem(_ text: String) -> String? {
        let example = "write HOST:PORT with a numeric address, such as 127.0.0.1:9557, 0.0.0.0:9557 or [::1]:9557"
        guard !text.isEmpty else { return "is empty; \(example), or leave it out to serve no metrics" }
        if text.contains("://") || text.contains("/") { return "\"\(text)\": only the address, without a scheme or a path; \(example)" }
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex else {
            return "\"\(text)\": expected HOST:PORT; \(example)"
        }
        let host = text[..<colon], port = text[text.index(after: colon)...]
        guard port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(port), number <= 65535 else {
            return "\"\(text)\": the port '\(port)' is not a number from 0 to 65535 (0: any free port)"
        }
        if host.hasPrefix("[") || host.hasSuffix("]") {
            guard host.hasPrefix("["), host.hasSuffix("]"), host.count > 2, isAddress(String(host.dropFirst().dropLast()), family: AF_INET6) else {
                return "\"\(text)\": '\(host)' is not an IPv6 address in brackets, such as [::1]"
            }
            return nil
        }
        if host.contains(":") {
            return "\"\(text)\": an IPv6 address goes in brackets, such as [::1]:9557"
        }
        guard isAddress(String(host), family: AF_INET) else {
            return "\"\(text)\": '\(host)' is not a numeric IPv4 address (host names are not resolved); \(example)"
        }
        return nil
    }

    private static func isAddress(_ text: String, family: Int32) -> Bool {
        var buffer = in6_addr()  // room for either family
        return text.withCString { inet_pton(family, $0, &buffer) } == 1
    }
}
