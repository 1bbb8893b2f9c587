import Logging

/// Runs the daemon with `configuration` until SIGINT or SIGTERM; returns the exit status
/// (0 after an orderly stop, 69 when a socket cannot be bound, 70 after an internal error, 73
/// when the state directory cannot be used, 74 when the final checkpoint could not be written).
/// `reload` reads the configuration again on SIGHUP.
public func runDaemon(
    _ configuration: DaemonConfiguration, reload: (@Sendable () throws -> DaemonConfiguration)? = nil
) throws -> Int32 {
    var logger = Logger(label: "rnnd")
    logger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
    return Daemon(configuration: configuration, logger: logger, reload: reload).run()
}
