import Dispatch
import FlyingFox
import FlyingSocks
import Foundation
import Logging
import Synchronization

/// `--metrics-listen`: `/metrics` (the Prometheus text format) and `/healthz` over HTTP/1.1, for
/// GET and HEAD (docs/metrics.md).
///
/// FlyingFox serves on Swift's cooperative thread pool and waits for its sockets in epoll on a
/// dispatch queue of its own, never on the daemon's threads, and a scrape only reads their
/// atomics: the sample path neither waits for it nor knows about it.
package final class MetricsServer: Sendable {
    private let server: HTTPServer
    package let address: MetricsAddress
    private let logger: Logger
    private let stopped = Atomic(false)

    package init(address: MetricsAddress, exporter: MetricsExporter, health: DaemonHealth, logger: Logger = Logger(label: "rnnd")) throws {
        self.address = address
        self.logger = logger
        let handler = ClosureHTTPHandler { request in Self.respond(to: request, exporter: exporter, health: health) }
        let log = FlyingFoxLog(logger: logger)
        if address.isIPv6 {
            server = HTTPServer(address: try .inet6(ip6: address.host, port: address.port), timeout: 10, logger: log, handler: handler)
        } else {
            server = HTTPServer(address: try .inet(ip4: address.host, port: address.port), timeout: 10, logger: log, handler: handler)
        }
    }

    /// Binds and starts serving; returns the bound address (`127.0.0.1:41234`, `[::1]:41234`),
    /// which names the port a requested port 0 got. Throws when the address cannot be bound.
    package func start() async throws(MetricsServerError) -> String {
        let server = self.server
        let failure: String? = await withCheckedContinuation { continuation in
            // Whichever comes first: listening, or the server's end (a bind that failed).
            let outcome = FirstOutcome(continuation)
            Task.detached {
                do { try await server.run() } catch {
                    if !outcome.report(Self.explain(error)), !self.stopped.load(ordering: .relaxed) {
                        self.logger.error("metrics: the server stopped: \(Self.explain(error)); /metrics and /healthz no longer answer")
                    }
                }
            }
            Task.detached {
                do {
                    try await server.waitUntilListening(timeout: 10)
                    _ = outcome.report(nil)
                } catch {
                    _ = outcome.report("not listening after 10 s")
                }
            }
        }
        if let failure { throw MetricsServerError(address: address, reason: failure) }
        switch await server.listeningAddress {
        case .ip4(let host, let port): return "\(host):\(port)"
        case .ip6(let host, let port): return "[\(host)]:\(port)"
        case .unix(let path): return path
        case nil: return address.description
        }
    }

    /// Closes the listening socket and gives the requests in progress a quarter of a second.
    package func stop() async {
        stopped.store(true, ordering: .relaxed)
        await server.stop(timeout: 0.25)
    }

    /// The answer to one request: GET or HEAD of `/metrics` or `/healthz`.
    package static func respond(to request: HTTPRequest, exporter: MetricsExporter, health: DaemonHealth) -> HTTPResponse {
        let a = answer(method: request.method.rawValue, path: request.path, exporter: exporter, health: health)
        let status: HTTPStatusCode =
            switch a.status {
            case 200: .ok
            case 405: .methodNotAllowed
            case 503: .serviceUnavailable
            default: .notFound
            }
        return HTTPResponse(
            statusCode: status, headers: HTTPHeaders(Dictionary(uniqueKeysWithValues: a.headers.map { (HTTPHeader($0.key), $0.value) })),
            body: Data(a.body))
    }

    /// What is answered, apart from HTTP's framing: a status, headers, a body.
    package struct Answer {
        package var status: Int
        package var headers: [String: String]
        package var body: [UInt8]
    }

    /// The answer to `method path`: 200 for `/metrics`, 200 or 503 with the reason for
    /// `/healthz`; for HEAD the headers of GET, its `Content-Length` included, without the body;
    /// 405 for another method, 404 for another path.
    package static func answer(method: String, path: String, exporter: MetricsExporter, health: DaemonHealth) -> Answer {
        let text = "text/plain; charset=utf-8"
        let status: Int, type: String, body: [UInt8]
        switch path {
        case "/metrics":
            (status, type) = (200, "text/plain; version=0.0.4; charset=utf-8")
            body = method == "GET" || method == "HEAD" ? exporter.exposition() : []
        case "/healthz":
            let (healthy, reason) = health.check
            (status, type, body) = (healthy ? 200 : 503, text, Array((reason + "\n").utf8))
        default:
            return Answer(status: 404, headers: ["Content-Type": text], body: Array("not found: /metrics or /healthz\n".utf8))
        }
        guard method == "GET" || method == "HEAD" else {
            return Answer(status: 405, headers: ["Allow": "GET, HEAD", "Content-Type": text], body: Array("only GET and HEAD\n".utf8))
        }
        return Answer(
            status: status, headers: ["Content-Type": type, "Content-Length": String(body.count)],
            body: method == "HEAD" ? [] : body)
    }

    private static func explain(_ error: any Error) -> String {
        if case SocketError.failed(let call, let code, let message) = error {
            return "\(call): \(message) (errno \(code))"
        }
        return "\(error)"
    }
}

/// Resumes a continuation with the first outcome reported (nil: started; else why not).
private final class FirstOutcome: Sendable {
    private let pending: Mutex<CheckedContinuation<String?, Never>?>

    package init(_ continuation: CheckedContinuation<String?, Never>) { pending = Mutex(continuation) }

    /// False when an outcome was reported already.
    package func report(_ error: String?) -> Bool {
        guard let continuation = pending.withLock({ $0.take() }) else { return false }
        continuation.resume(returning: error)
        return true
    }
}

/// Why the metrics server could not start (the daemon then exits 69, as for a ZeroMQ address).
package struct MetricsServerError: Error, CustomStringConvertible {
    package var address: MetricsAddress
    package var reason: String
    package var description: String { "cannot listen on \(address) (--metrics-listen, metrics.listen): \(reason)" }
}

extension MetricsServer {
    /// ``start()`` for a caller outside Swift concurrency: the daemon's main thread.
    package func startWaiting() throws(MetricsServerError) -> String {
        try waiting { () async throws(MetricsServerError) in try await self.start() }.get()
    }

    /// ``stop()`` for the daemon's main thread.
    package func stopWaiting() {
        _ = waiting { () async throws(Never) in await self.stop() }
    }

    /// Runs `body` on Swift's cooperative pool and blocks the calling thread until it is done; only
    /// for threads that are not the pool's, which it could starve.
    private func waiting<T: Sendable, E: Error>(_ body: @escaping @Sendable () async throws(E) -> T) -> Result<T, E> {
        let result = Mutex<Result<T, E>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let outcome: Result<T, E>
            do throws(E) { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return result.withLock { $0! }
    }
}

/// FlyingFox's log lines into the daemon's log: a connection's comings and goings at trace, the
/// rest at debug (a scraper that hangs up is not the operator's problem; the server's own
/// failures the daemon logs itself).
private struct FlyingFoxLog: FlyingSocks.Logging {
    package let logger: Logger

    package func logDebug(_ debug: @autoclosure () -> String) { logger.trace("metrics server: \(debug())") }
    package func logInfo(_ info: @autoclosure () -> String) { logger.trace("metrics server: \(info())") }
    package func logWarning(_ warning: @autoclosure () -> String) { logger.debug("metrics server: \(warning())") }
    package func logError(_ error: @autoclosure () -> String) { logger.debug("metrics server: \(error())") }
    package func logCritical(_ critical: @autoclosure () -> String) { logger.debug("metrics server: \(critical())") }
}
