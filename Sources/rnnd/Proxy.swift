import ArgumentParser
import Foundation
import Logging
import RNNDaemon

struct Proxy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Forward samples (or forecasts) between many publishers and many subscribers: a ZeroMQ XSUB/XPUB proxy.",
        discussion: """
            Publishers connect to the frontend (an XSUB socket), subscribers to the backend (an \
            XPUB socket); their subscriptions travel up to the publishers. For samples: sensors \
            publish to the frontend, rnnd instances subscribe to the backend (rnnd run --sub \
            >tcp://proxy:PORT). For forecasts, a second proxy: instances publish to its frontend \
            (rnnd run --pub >tcp://proxy:PORT), consumers subscribe to its backend. Endpoints are \
            CZMQ style: @ binds, > connects; @tcp://127.0.0.1:* binds a free port, logged as \
            "frontend: tcp://...". Runs until SIGINT or SIGTERM, then exits 0; messages still \
            queued in the proxy are dropped. Exit 64 for bad flags, 69 when a socket cannot be \
            bound or connected. docs/scaling.md has the topologies.
            """
    )

    @Option(help: ArgumentHelp("The XSUB socket publishers send to, e.g. @tcp://*:5556.", valueName: "endpoint"))
    var frontend: String

    @Option(help: ArgumentHelp("The XPUB socket subscribers take from, e.g. @tcp://*:5558.", valueName: "endpoint"))
    var backend: String

    @Option(help: ArgumentHelp(
        "A PUB socket that gets a copy of every message (and the subscriptions going upstream).", valueName: "endpoint"))
    var capture: String?

    @Option(help: ArgumentHelp("Messages queued per peer on each socket before a slow subscriber loses them (default: 100000).", valueName: "n"))
    var hwm: Int?

    @Option(name: .customLong("max-message-bytes"), help: ArgumentHelp(
        "The largest frame taken at the frontend; a peer that sends a larger one is disconnected (default: 1048576).",
        valueName: "bytes"))
    var maxMessageBytes: Int?

    @Option(name: .customLong("log-level"), help: ArgumentHelp(
        "trace, debug, info, notice, warning, error or critical (default: info).", valueName: "level"))
    var logLevel: String?

    var settings: ProxyConfiguration {
        var c = ProxyConfiguration(frontend: frontend, backend: backend, capture: capture)
        if let hwm { c.highWaterMark = hwm }
        if let maxMessageBytes { c.maxMessageBytes = maxMessageBytes }
        if let logLevel { c.logLevel = logLevel }
        return c
    }

    func validate() throws {
        let problems = settings.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
    }

    func run() throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let code = runProxy(settings)
        if code != 0 { throw ExitCode(code) }
    }
}
