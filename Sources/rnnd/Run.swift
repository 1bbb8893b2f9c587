import ArgumentParser
import Foundation
import Logging
import RNNCore
import RNNDaemon
import RNNWire

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: learn every stream of the SUB socket online and publish forecasts.",
        discussion: """
            Settings come from the defaults, then the --config file (TOML), then the flags given \
            here; --print-config shows the result. With no arguments at all, samples are taken \
            on @tcp://127.0.0.1:5556 and forecasts published on @tcp://127.0.0.1:5557. \
            Endpoints are CZMQ style: @ binds, > connects. docs/configuration.md lists every \
            setting. A bad file exits 78 (EX_CONFIG), bad flags 64 (EX_USAGE), before anything starts.
            """
    )

    @Option(name: .customLong("config"), help: ArgumentHelp("TOML configuration file.", valueName: "file"))
    var configFile: String?

    @Option(name: .customLong("sub"), help: ArgumentHelp(
        "SUB endpoint of the samples; repeat for several, which replace the file's list (default: @tcp://127.0.0.1:5556).",
        valueName: "endpoint"))
    var subscribe: [String] = []

    @Option(name: .customLong("pub"), help: ArgumentHelp(
        "PUB endpoint of the forecasts (default: @tcp://127.0.0.1:5557).", valueName: "endpoint"))
    var publish: String?

    @Option(name: .customLong("topic"), help: ArgumentHelp(
        "Stream id prefix to take; repeat for several, which replace the file's list (default: \"\", every stream).",
        valueName: "prefix"))
    var topics: [String] = []

    @Option(help: ArgumentHelp(
        "Take only shard I of N of the streams, by the hash of their ids (docs/scaling.md); default: every stream.",
        valueName: "I/N"))
    var shard: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp(
        "Checkpoint directory (default: $STATE_DIRECTORY, else ~/.local/state/rnnd).", valueName: "directory"))
    var stateDirectory: String?

    @Option(help: "Learning threads, 1 ... 256 (default: the online CPUs).")
    var workers: Int?

    @Option(name: .customLong("max-streams"), help: "Most streams kept in memory at once; past it the least recently used is saved and unloaded (default: 10000).")
    var maxStreams: Int?

    @Option(name: .customLong("quiet-after"), help: ArgumentHelp(
        "Seconds without a sample after which a stream counts as quiet (default: 300).", valueName: "seconds"))
    var quietAfter: Double?

    @Option(name: .customLong("idle-unload"), help: ArgumentHelp(
        "Seconds without a sample after which a stream is saved and unloaded from memory; 0: never (default: 3600).", valueName: "seconds"))
    var idleUnload: Double?

    @Option(name: .customLong("max-clock-skew"), help: ArgumentHelp(
        "Seconds a sample's t may lie ahead of this host's clock, beyond which it is refused as future_time; 0: no limit (default: 3600).",
        valueName: "seconds"))
    var maxClockSkew: Double?

    @Option(name: .customLong("clock-reset-after"), help: ArgumentHelp(
        "Consecutive out-of-order samples, their times increasing, after which a stream's clock counts as set back and the last of them is accepted; 0: never (default: 3).",
        valueName: "samples"))
    var clockResetAfter: Int?

    @Option(name: .customLong("max-inputs"), help: "Widest sample accepted, in values (default: 64).")
    var maxInputs: Int?

    @Option(name: .customLong("max-message-bytes"), help: "Largest sample payload accepted, in bytes (default: 65536).")
    var maxMessageBytes: Int?

    @Option(name: .customLong("queue-capacity"), help: "Samples waiting per worker before drops (default: 10000).")
    var queueCapacity: Int?

    @Option(name: .customLong("checkpoint-interval"), help: ArgumentHelp(
        "Seconds between checkpoints of the streams that changed, 1 ... 86400 (default: 60).", valueName: "seconds"))
    var checkpointInterval: Double?

    @Option(name: .customLong("checkpoint-max-age"), help: ArgumentHelp(
        "Seconds without a committed checkpoint, while checkpoints fail, after which /healthz says unhealthy (default: 3 checkpoint intervals).",
        valueName: "seconds"))
    var checkpointMaxAge: Double?

    @Option(name: .customLong("stop-timeout"), help: ArgumentHelp(
        "Seconds to stop in after SIGTERM, the final checkpoint and its retries included; the systemd unit's TimeoutStopSec= (default: 30).",
        valueName: "seconds"))
    var stopTimeout: Double?
    @Option(name: .customLong("on-model-change"), help: ArgumentHelp(
        "Stored streams whose model has another shape than the configuration gives them: refuse (exit 78, the default), keep (not loaded, records left in place) or fresh (records set aside, streams start afresh).",
        valueName: "policy"))
    var onModelChange: String?

    @Option(name: .customLong("set-aside-days"), help: ArgumentHelp(
        "Days a checkpoint record set aside is kept before the start-up deletes it; 0 keeps it (default: 30).", valueName: "days"))
    var setAsideDays: Double?

    @Option(name: .customLong("set-aside-per-stream"), help: ArgumentHelp(
        "Checkpoint records set aside kept per stream, the newest; 0 keeps every one (default: 3).", valueName: "n"))
    var setAsidePerStream: Int?

    @Option(name: .customLong("forecast-topic-prefix"), help: ArgumentHelp(
        "Put before the stream id in every forecast's topic (default: none).", valueName: "prefix"))
    var forecastTopicPrefix: String?

    @Option(name: .customLong("subscriber-hwm"), help: ArgumentHelp(
        "Forecasts queued for each subscriber; past it, that subscriber alone misses forecasts until it catches up, 1 ... 10000000 (default: 10000).",
        valueName: "n"))
    var subscriberHighWaterMark: Int?

    @Option(name: .customLong("log-level"), help: ArgumentHelp(
        "trace, debug, info, notice, warning, error or critical (default: info).", valueName: "level"))
    var logLevel: String?

    @Option(name: .customLong("metrics-listen"), help: ArgumentHelp(
        "Serve Prometheus metrics (/metrics) and a health check (/healthz) over HTTP on this numeric address, such as 127.0.0.1:9557 or [::1]:9557; port 0 takes a free one (default: not served).",
        valueName: "host:port"))
    var metricsListen: String?

    @Option(name: .customLong("metrics-stream-labels"), help: ArgumentHelp(
        "Streams with series of their own in the metrics (rolling errors and band coverage by stream id), 0 ... 10000 (default: 100).",
        valueName: "n"))
    var metricsStreamLabels: Int?

    @Option(name: .customLong("curve-secret-key-file"), help: ArgumentHelp(
        "CURVE on both sockets: the daemon's secret key (rnnd keygen); relative: in $CREDENTIALS_DIRECTORY when set. Needs --curve-allowed-clients.",
        valueName: "file"))
    var curveSecretKeyFile: String?

    @Option(name: .customLong("curve-allowed-clients"), help: ArgumentHelp(
        "CURVE: the directory of the NAME.public keys of the clients let in, read again on SIGHUP.", valueName: "directory"))
    var curveAllowedClients: String?

    @OptionGroup var model: OptionalModelOptions

    @Flag(name: .customLong("print-config"), help: "Print the resolved configuration as TOML and exit.")
    var printConfig = false

    /// Sets the values given on the command line.
    func applyFlags(to c: inout DaemonConfiguration) {
        if !subscribe.isEmpty { c.subscribe = subscribe }
        if let publish { c.publish = publish }
        if !topics.isEmpty { c.topics = topics }
        if let shard { c.shard = shard }
        if let stateDirectory { c.stateDirectory = stateDirectory }
        if let workers { c.workers = workers }
        if let maxStreams { c.maxStreams = maxStreams }
        if let maxInputs { c.maxInputs = maxInputs }
        if let maxClockSkew { c.maxClockSkew = maxClockSkew }
        if let clockResetAfter { c.clockResetAfter = clockResetAfter }
        if let maxMessageBytes { c.maxMessageBytes = maxMessageBytes }
        if let queueCapacity { c.queueCapacity = queueCapacity }
        if let checkpointInterval { c.checkpointInterval = checkpointInterval }
        if let checkpointMaxAge { c.checkpointMaxAge = checkpointMaxAge }
        if let stopTimeout { c.stopTimeout = stopTimeout }
        if let quietAfter { c.quietAfter = quietAfter }
        if let idleUnload { c.idleUnload = idleUnload }
        if let forecastTopicPrefix { c.forecastTopicPrefix = forecastTopicPrefix }
        if let subscriberHighWaterMark { c.subscriberHighWaterMark = subscriberHighWaterMark }
        if let policy = onModelChange.flatMap(ModelChangePolicy.init(rawValue:)) { c.onModelChange = policy }
        if let setAsideDays { c.setAsideDays = setAsideDays }
        if let setAsidePerStream { c.setAsidePerStream = setAsidePerStream }
        if let logLevel { c.logLevel = logLevel }
        if let metricsListen { c.metricsListen = metricsListen }
        if let metricsStreamLabels { c.metricsStreamLabels = metricsStreamLabels }
        if let curveSecretKeyFile { c.curveSecretKeyFile = curveSecretKeyFile }
        if let curveAllowedClients { c.curveAllowedClients = curveAllowedClients }
        model.apply(to: &c.model)
    }

    /// Defaults < file < flags, checked: a bad file exits 78, bad flags exit 64.
    func resolve() throws -> DaemonConfiguration {
        try resolveConfiguration(command: "run", file: configFile) { applyFlags(to: &$0) }
    }

    mutating func validate() throws {
        if let onModelChange, ModelChangePolicy(rawValue: onModelChange) == nil {
            let choices = ModelChangePolicy.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("--on-model-change: expected one of \(choices), got '\(onModelChange)'")
        }
        _ = try resolve()
    }

    func run() throws {
        let configuration = try resolve()
        let environment = ProcessInfo.processInfo.environment
        if printConfig {
            print(ConfigurationFile.render(configuration, environment: environment), terminator: "")
            return
        }
        FileHandle.standardError.write(Data(summary(configuration).utf8))
        // Logs go to stderr, which journald collects under systemd; one level for every
        // thread's logger, so that SIGHUP can change it.
        SharedLevelLogHandler.bootstrap(StreamLogHandler.standardError)
        let command = self
        let code = try runDaemon(configuration) {
            try DaemonConfiguration.resolve(file: command.configFile) { command.applyFlags(to: &$0) }
        }
        if code != 0 { throw ExitCode(code) }
    }

    /// The resolved configuration in a few lines, for the log.
    private func summary(_ c: DaemonConfiguration) -> String {
        let m = c.model
        var topics = c.topics == [""] ? "every stream" : c.topics.map { "\"\($0)\"" }.joined(separator: ", ")
        if let shard = c.streamShard { topics += "; shard \(shard): the streams whose id hash % \(shard.count) is \(shard.index)" }
        let loss = if case .huber(let delta) = m.loss { "huber (delta \(delta))" } else { "squared" }
        return """
            rnnd run: samples from \(c.subscribe.joined(separator: ", ")) (\(topics)), forecasts to \(c.publish)
            rnnd run: \(m.cell.rawValue) hidden \(m.hidden), window \(m.window), update every \(m.updateEvery), \
            horizon \(m.horizon), lr \(m.learningRate), clip \(m.clipMode.rawValue) \(m.clipThreshold), \(loss) loss, seed \(m.seed)
            rnnd run: \(c.workers) workers, at most \(c.maxStreams) streams of \(c.maxInputs) inputs, \
            log level \(c.logLevel), checkpoints every \(c.checkpointInterval) s in \
            \(c.resolvedStateDirectory(environment: ProcessInfo.processInfo.environment))
            rnnd run: \(c.curveEnabled
                ? "CURVE on both sockets, secret key \(c.resolvedCurveSecretKeyFile() ?? ""), the clients of \(c.curveAllowedClients ?? "")"
                : "no CURVE: every peer that reaches the endpoints may send samples and read forecasts (docs/security.md)")
            \(c.metricsListen.map { "rnnd run: metrics (/metrics, /healthz) over HTTP on \($0)\n" } ?? "")
            """
    }
}
