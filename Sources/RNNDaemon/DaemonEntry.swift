import Logging

/// Runs the daemon with `configuration` until SIGINT or SIGTERM; returns the exit status
/// (0 after an orderly stop, 69 when a socket cannot be bound, 70 after an internal error).
public func runDaemon(_ configuration: DaemonConfiguration) throws -> Int32 {
    var logger = Logger(label: "rnnd")
    logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
    return Daemon(configuration: configuration, logger: logger).run()
}
