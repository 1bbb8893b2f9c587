// Every setting of `rnnd run` (docs/configuration.md): the defaults, the checks that run before
// anything starts, and where state goes. The TOML file is ConfigurationFile.swift.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

import RNNCore
import RNNMetrics
import RNNWire


/// Every setting of `rnnd run`. A new value holds the defaults, which need no file and no flag:
/// SUB binds `@tcp://127.0.0.1:5556`, PUB binds `@tcp://127.0.0.1:5557`, every stream is taken.
///
/// The sources are layered: defaults, then the TOML file (``ConfigurationFile``), then the flags
/// that were given. ``problems()`` checks the result before anything starts.
public struct DaemonConfiguration: Sendable, Equatable {
    /// The levels `logLevel` takes, quietest last (swift-log's names).
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// The most workers a daemon runs.
    public static let maxWorkers = 256

    /// Upper bounds of the model's shape in a daemon, whose every stream gets such a model: a
    /// model's memory grows with hidden² and with window × hidden, a forecast with horizon ×
    /// inputs (docs/security.md, "Limits").
    public static let maxHidden = 4096
    public static let maxWindow = 10_000
    public static let maxHorizon = 1000
    /// The most values one forecast may have, `horizon × max_inputs`: with its band, at most
    /// 48 MiB of JSON (16 bytes a number), which the publisher's buffer is sized for.
    public static let maxForecastValues = 1 << 20

    // MARK: input

    /// SUB endpoints, CZMQ style: `@tcp://127.0.0.1:5556` binds, `>tcp://host:5556` connects;
    /// `tcp://` and `ipc://`. One SUB socket attaches to all of them.
    public var subscribe: [String] = ["@tcp://127.0.0.1:5556"]
    /// SUB prefix filters on the stream id; `""` takes every stream.
    public var topics: [String] = [""]
    /// Largest sample payload accepted, in bytes (larger ones are refused as `payload_too_large`).
    public var maxMessageBytes = 65_536
    /// Widest sample accepted, in values (wider ones are refused as `too_many_values`).
    public var maxInputs = 64
    /// `I/N`: take only the streams of shard I of N (``StreamShard``); nil takes every stream.
    /// Kept as written, so that ``problems()`` can name what is wrong with it.
    public var shard: String?

    /// ``shard`` parsed; nil when not set (or not valid, which ``problems()`` reports).
    public var streamShard: StreamShard? { shard.flatMap(StreamShard.init(parsing:)) }
    /// Seconds a sample's `t` may lie ahead of the host's clock (beyond: `future_time`); 0: no limit.
    public var maxClockSkew: Double = ClockPolicy.standard.maxSkew
    /// Consecutive out-of-order samples, their times increasing, after which a stream takes its
    /// clock as set back and accepts the last of them; 0: never.
    public var clockResetAfter = ClockPolicy.standard.resetAfter

    /// The streams' clock policy (``StreamPolicy``).
    public var clockPolicy: ClockPolicy { ClockPolicy(maxSkew: maxClockSkew, resetAfter: clockResetAfter) }

    // MARK: output

    /// The PUB endpoint of the forecasts, CZMQ style.
    public var publish = "@tcp://127.0.0.1:5557"
    /// Put before the stream id in the topic frame of every forecast.
    public var forecastTopicPrefix = ""
    /// Forecasts queued for each subscriber (ZeroMQ's send high-water mark); past it, that
    /// subscriber alone misses forecasts until it catches up.
    public var subscriberHighWaterMark = 10_000

    // MARK: model

    /// The model of every new stream. `inputs` is fixed by the stream's first sample, so its value
    /// here is ignored (see ``modelConfiguration(inputs:)``).
    public var model = ModelConfiguration()

    /// The forgetting factor of the running input normalisation, in (0, 1): below 1 weights recent
    /// samples more. `nil`, the default, weighs every sample seen the same. A view of
    /// `model.normalization`, which the daemon always keeps `.running`.
    public var normalizationForgetting: Double? {
        get {
            if case .running(let forgetting) = model.normalization { return forgetting }
            return nil
        }
        set { model.normalization = .running(forgetting: newValue) }
    }

    // MARK: security

    /// CURVE (docs/security.md): the file of the daemon's secret key. Set together with
    /// ``curveAllowedClients``; then the samples and the forecasts socket are CURVE servers. A
    /// relative path is looked up in systemd's `$CREDENTIALS_DIRECTORY` when that is set
    /// (``resolvedCurveSecretKeyFile(credentialsDirectory:)``).
    public var curveSecretKeyFile: String?
    /// CURVE: the directory of the public keys (`NAME.public`) of the clients let in, read again
    /// on SIGHUP.
    public var curveAllowedClients: String?

    /// Whether CURVE is configured (both settings are; ``problems()`` refuses one alone).
    public var curveEnabled: Bool { curveSecretKeyFile != nil && curveAllowedClients != nil }

    // MARK: daemon

    /// Where checkpoints live; `nil` means ``resolvedStateDirectory(environment:)``'s rule.
    public var stateDirectory: String?
    /// Learning threads (1 ... 256); streams are sharded across them.
    public var workers = DaemonConfiguration.onlineProcessors
    /// Most streams the daemon keeps models for in memory at once. A new stream past it unloads
    /// the worker's least recently used stream (saved first, loaded again on its next sample).
    public var maxStreams = 10_000
    /// Samples waiting per worker: the bound of each worker's queue.
    public var queueCapacity = 10_000
    /// Seconds between checkpoints of every stream that changed (and one at every stop).
    public var checkpointInterval: Double = 60
    /// Seconds without a committed checkpoint, while checkpoints fail, after which `/healthz`
    /// reports the daemon unhealthy; nil: three checkpoint intervals (``resolvedCheckpointMaxAge``).
    public var checkpointMaxAge: Double?
    /// Seconds the daemon has to stop after SIGTERM: drain, the final checkpoint and its retries.
    /// The systemd units' `TimeoutStopSec=` is the same.
    public var stopTimeout: Double = 30
    /// What the start does with stored streams this configuration cannot restore as they are: a
    /// model of another shape, or a record of a newer format (docs/checkpoints.md, "Restoring").
    public var onModelChange = ModelChangePolicy.refuse
    /// Days a record set aside is kept before the start-up deletes it; 0 keeps it whatever its age.
    public var setAsideDays: Double = 30
    /// Records set aside kept per stream, the newest; 0 keeps every one (within `setAsideDays`).
    public var setAsidePerStream = 3
    /// Seconds without a sample after which a stream is quiet: counted in `rnnd_streams_quiet`.
    public var quietAfter: Double = 300
    /// Seconds without a sample after which a stream is unloaded from memory (its state saved,
    /// loaded again on its next sample); 0 keeps every stream loaded.
    public var idleUnload: Double = 3600
    /// The quietest log level written: one of ``logLevels``.
    public var logLevel = "info"

    // MARK: metrics

    /// `HOST:PORT` to serve Prometheus metrics (`/metrics`) and a health check (`/healthz`) on
    /// over HTTP; nil, the default, serves nothing. Kept as written, so that ``problems()`` can
    /// name what is wrong with it; ``metricsAddress`` is the parsed form.
    public var metricsListen: String?

    /// ``metricsListen`` parsed; nil when not set (or not valid, which ``problems()`` reports).
    public var metricsAddress: MetricsAddress? { metricsListen.flatMap(MetricsAddress.init(parsing:)) }
    /// How many streams get series of their own in the metrics (their rolling errors and band
    /// coverage, labelled by stream id): the first this many the daemon has a model for.
    public var metricsStreamLabels = 100
    /// The most `metricsStreamLabels` can be: three series a stream.
    public static let maxMetricsStreamLabels = 10_000

    public init() {}

    /// ``checkpointMaxAge``, or three checkpoint intervals when it is not set.
    public var resolvedCheckpointMaxAge: Double { checkpointMaxAge ?? 3 * checkpointInterval }

    /// Fewest seconds ``stopTimeout`` may be: the daemon keeps 3 s of it to close the sockets and
    /// exit before systemd's SIGKILL, and needs some for the final checkpoint.
    public static let minStopTimeout: Double = 5

    /// The default of `workers`: the processors online (`sysconf(_SC_NPROCESSORS_ONLN)`), at least
    /// 1 and at most ``maxWorkers``.
    public static var onlineProcessors: Int {
        min(max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1), maxWorkers)
    }

    /// The model of a stream whose samples have `inputs` values.
    public func modelConfiguration(inputs: Int) -> ModelConfiguration {
        var configuration = model
        configuration.inputs = inputs
        return configuration
    }

    /// Where checkpoints go: `stateDirectory` when set; else the first directory of
    /// `$STATE_DIRECTORY` (systemd sets it from `StateDirectory=`); else
    /// `$XDG_STATE_HOME/rnnd`; else `~/.local/state/rnnd`, with `~` from `$HOME` or, failing
    /// that, the user database; `/var/lib/rnnd` when there is no home at all.
    public func resolvedStateDirectory(environment: [String: String]) -> String {
        if let stateDirectory { return stateDirectory }
        // systemd joins several StateDirectory= entries with ':'; the first is ours.
        if let systemd = environment["STATE_DIRECTORY"]?.split(separator: ":").first, !systemd.isEmpty {
            return String(systemd)
        }
        // The XDG base directory spec ignores relative values.
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") {
            return Self.joined(xdg, "rnnd")
        }
        if let home = environment["HOME"].flatMap({ $0.isEmpty ? nil : $0 }) ?? Self.userDatabaseHome() {
            return Self.joined(home, ".local/state/rnnd")
        }
        return "/var/lib/rnnd"
    }

    /// Everything that is wrong, in words an operator can act on; empty when the daemon can start.
    /// Each names the TOML key and the flag that set the value.
    public func problems() -> [String] {
        issues().map(\.description)
    }

    /// ``problems()`` with the TOML key of each, for callers that tell the file from the flags.
    public func issues() -> [ConfigurationError.Issue] {
        var found: [ConfigurationError.Issue] = []
        func add(_ key: String, _ flag: String?, _ message: String) {
            found.append(.init(kind: .invalidValue, key: key, flag: flag, message: message))
        }

        // input
        if subscribe.isEmpty {
            add("input.subscribe", "--sub", #"lists no endpoint; the default is ["@tcp://127.0.0.1:5556"]"#)
        }
        for endpoint in subscribe {
            if let problem = Self.endpointProblem(endpoint) { add("input.subscribe", "--sub", problem) }
        }
        for endpoint in Set(subscribe) where subscribe.count(where: { $0 == endpoint }) > 1 {
            add("input.subscribe", "--sub", "lists \(endpoint) twice")
        }
        if topics.isEmpty {
            add("input.topics", "--topic", #"lists no prefix, so no stream would be taken; [""] takes every stream"#)
        }
        for topic in topics where topic.utf8.count > WireLimits.maxTopicBytes {
            add("input.topics", "--topic",
                "the prefix \"\(topic.prefix(24))…\" is \(topic.utf8.count) bytes, longer than any stream id "
                    + "(\(WireLimits.maxTopicBytes) bytes), so it matches nothing")
        }
        if !(16...64 << 20).contains(maxMessageBytes) {
            add("input.max_message_bytes", "--max-message-bytes",
                "must be from 16 to \(64 << 20) (64 MiB), got \(maxMessageBytes)")
        }
        if !(1...Int(UInt16.max)).contains(maxInputs) {
            add("input.max_inputs", "--max-inputs", "must be from 1 to \(UInt16.max), got \(maxInputs)")
        }
        if let shard, let problem = StreamShard.problem(shard) {
            add("input.shard", "--shard", problem)
        }
        if !(maxClockSkew == 0 || (maxClockSkew >= 1 && maxClockSkew <= 31_536_000)) {
            add("input.max_clock_skew", "--max-clock-skew", "must be 0 (no limit) or from 1 to 31536000 seconds, got \(maxClockSkew)")
        }
        if !(0...1_000_000).contains(clockResetAfter) {
            add("input.clock_reset_after", "--clock-reset-after", "must be 0 (never) or from 1 to 1000000 samples, got \(clockResetAfter)")
        }

        // output
        if let problem = Self.endpointProblem(publish) { add("output.publish", "--pub", problem) }
        // A wildcard port (`:*`) binds a different free port each time, so it cannot clash.
        // (Port 0 is refused by endpointProblem, so `:*` is the only wildcard.)
        let wildcard = publish.hasSuffix(":*")
        if publish.first == "@", !wildcard,
            subscribe.contains(where: { $0.first == "@" && $0.dropFirst() == publish.dropFirst() })
        {
            add("output.publish", "--pub", "binds \(publish.dropFirst()), which a subscribe endpoint binds too")
        }
        if forecastTopicPrefix.utf8.count > WireLimits.maxTopicBytes {
            add("output.topic_prefix", "--forecast-topic-prefix",
                "is \(forecastTopicPrefix.utf8.count) bytes; at most \(WireLimits.maxTopicBytes)")
        }
        if !(1...10_000_000).contains(subscriberHighWaterMark) {
            add("output.subscriber_hwm", "--subscriber-hwm", "must be from 1 to 10000000, got \(subscriberHighWaterMark)")
        }

        // model: the core's own checks, for a one-input stream (the width comes with the stream).
        var core = modelConfiguration(inputs: 1)
        if let forgetting = normalizationForgetting, !(forgetting > 0 && forgetting < 1) {
            // Named here rather than by the core, which does not know that 1 means "none".
            add("model.normalization_forgetting", "--normalization-forgetting",
                "must be in (0, 1], 1 for no forgetting; got \(forgetting)")
            core.normalization = .running(forgetting: nil)
        }
        // What only the direct expert's look-back, or only the experts, make wrong is named by
        // its key: the core's problems that go when the setting is left out.
        for (key, flag, unset) in [
            ("model.direct_lookback", "--direct-lookback", { (m: inout ModelConfiguration) in m.directLookback = nil }),
            ("model.experts", "--experts", { (m: inout ModelConfiguration) in m.experts = nil }),
        ] {
            var without = core
            unset(&without)
            let others = Set(without.problems())
            for problem in core.problems() where !others.contains(problem) { add(key, flag, problem) }
            core = without
        }
        for problem in core.problems() {
            found.append(.init(kind: .invalidValue, key: "model", flag: nil, message: problem))
        }
        for (key, flag, value, limit) in [
            ("model.hidden", "--hidden", model.hidden, Self.maxHidden),
            ("model.window", "--window", model.window, Self.maxWindow),
            ("model.horizon", "--horizon", model.horizon, Self.maxHorizon),
        ] where value > limit {
            add(key, flag, "must be at most \(limit), got \(value)")
        }
        if model.horizon <= Self.maxHorizon, (1...Int(UInt16.max)).contains(maxInputs),
            model.horizon * maxInputs > Self.maxForecastValues
        {
            add("model.horizon", "--horizon",
                "times input.max_inputs (--max-inputs) must be at most \(Self.maxForecastValues) values a forecast, "
                    + "got \(model.horizon) × \(maxInputs) = \(model.horizon * maxInputs)")
        }
        if model.seed > UInt64(Int64.max) {
            add("model.seed", "--seed", "must be at most \(Int64.max) (the largest TOML integer), got \(model.seed)")
        }

        // daemon
        if let stateDirectory {
            if stateDirectory.isEmpty {
                add("daemon.state_directory", "--state-dir", "is empty; leave it out to use the default")
            } else if stateDirectory.utf8.contains(0) {
                add("daemon.state_directory", "--state-dir", "contains a NUL byte")
            }
        }
        if !(1...Self.maxWorkers).contains(workers) {
            add("daemon.workers", "--workers", "must be from 1 to \(Self.maxWorkers), got \(workers)")
        }
        if !(1...100_000_000).contains(maxStreams) {
            add("daemon.max_streams", "--max-streams", "must be from 1 to 100000000, got \(maxStreams)")
        }
        if !(1...10_000_000).contains(queueCapacity) {
            add("daemon.queue_capacity", "--queue-capacity", "must be from 1 to 10000000, got \(queueCapacity)")
        }
        if !(checkpointInterval >= 1 && checkpointInterval <= 86_400) {
            add("daemon.checkpoint_interval", "--checkpoint-interval", "must be from 1 to 86400 seconds, got \(checkpointInterval)")
        }
        if !(quietAfter >= 1 && quietAfter <= 31_536_000) {
            add("daemon.quiet_after", "--quiet-after", "must be from 1 to 31536000 seconds, got \(quietAfter)")
        }
        if !(idleUnload == 0 || (idleUnload >= 1 && idleUnload <= 31_536_000)) {
            add("daemon.idle_unload", "--idle-unload", "must be 0 (never) or from 1 to 31536000 seconds, got \(idleUnload)")
        }
        if let checkpointMaxAge, !(checkpointMaxAge >= checkpointInterval && checkpointMaxAge <= 10 * 86_400) {
            add("daemon.checkpoint_max_age", "--checkpoint-max-age",
                "must be from checkpoint_interval (\(checkpointInterval)) to 864000 seconds, got \(checkpointMaxAge)")
        }
        if !(stopTimeout >= Self.minStopTimeout && stopTimeout <= 86_400) {
            add("daemon.stop_timeout", "--stop-timeout",
                "must be from \(Int(Self.minStopTimeout)) to 86400 seconds (the systemd unit's TimeoutStopSec=), got \(stopTimeout)")
        }
        if !(setAsideDays >= 0 && setAsideDays <= 36_500) {
            add("daemon.set_aside_days", "--set-aside-days", "must be from 0 (keep them) to 36500 days, got \(setAsideDays)")
        }
        if !(0...1_000_000).contains(setAsidePerStream) {
            add("daemon.set_aside_per_stream", "--set-aside-per-stream", "must be from 0 (keep every one) to 1000000, got \(setAsidePerStream)")
        }
        if !Self.logLevels.contains(logLevel) {
            add("daemon.log_level", "--log-level",
                "must be one of \(Self.logLevels.joined(separator: ", ")), got \"\(logLevel)\"")
        }

        // metrics
        if !(0...Self.maxMetricsStreamLabels).contains(metricsStreamLabels) {
            add("metrics.stream_labels", "--metrics-stream-labels",
                "must be from 0 to \(Self.maxMetricsStreamLabels), got \(metricsStreamLabels)")
        }
        if let metricsListen, let problem = MetricsAddress.problem(metricsListen) {
            add("metrics.listen", "--metrics-listen", problem)
        }

        // security: the key files are read here, so that a bad one stops the start (CurveKeys.swift).
        found += curveIssues()
        return found
    }

    /// What is wrong with a CZMQ-style endpoint, or nil. The same shape rules as the ZeroMQ
    /// module's `ZMQEndpoint(parsing:)`, limited to the transports rnnd supports.
    static func endpointProblem(_ text: String) -> String? {
        let hint = "; write @tcp://127.0.0.1:5556 to bind or >tcp://host:5556 to connect"
        func reject(_ reason: String) -> String { "\"\(text)\": " + reason + hint }
        guard let first = text.first else { return reject("the endpoint is empty") }
        guard first == "@" || first == ">" else {
            return reject("an endpoint starts with '@' (bind) or '>' (connect)")
        }
        let rest = text.dropFirst()
        if rest.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
            return reject("it contains white space or a control character")
        }
        guard let separator = rest.firstRange(of: "://") else {
            return reject("expected tcp://host:port or ipc://path after '\(first)'")
        }
        let transport = rest[..<separator.lowerBound]
        let location = rest[separator.upperBound...]
        switch transport {
        case "tcp":
            guard let colon = location.lastIndex(of: ":"), colon != location.startIndex else {
                return reject("a tcp address is host:port")
            }
            let port = location[location.index(after: colon)...]
            if port == "*" {
                if first == ">" { return reject("connecting needs a port number, not *") }
            } else if !(port.allSatisfy { $0.isASCII && $0.isNumber } && Int(port).map { (1...65535).contains($0) } == true) {
                return reject("the port '\(port)' is not a number from 1 to 65535 (or * to bind any free port)")
            }
        case "ipc":
            guard !location.isEmpty else { return reject("the socket path after ipc:// is missing") }
            // sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
            if location.utf8.count > 107 {
                return reject("the socket path is \(location.utf8.count) bytes; Unix sockets take at most 107")
            }
        default:
            return reject("the transport must be tcp or ipc, not '\(transport)'")
        }
        return nil
    }

    private static func joined(_ directory: String, _ relative: String) -> String {
        (directory.hasSuffix("/") ? String(directory.dropLast()) : directory) + "/" + relative
    }

    /// The home directory of the current user from the user database, or nil.
    private static func userDatabaseHome() -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        return buffer.withUnsafeMutableBufferPointer { storage -> String? in
            guard let base = storage.baseAddress,
                getpwuid_r(getuid(), &entry, base, storage.count, &result) == 0, result != nil,
                let directory = entry.pw_dir
            else { return nil }
            let home = String(cString: directory)
            return home.isEmpty ? nil : home
        }
    }
}

/// What `rnnd run` does at start with the stored streams it cannot restore under its
/// configuration as they are: trained with a model of another shape (`model_changed`), or
/// written by a newer rnnd (`unsupported_version`). None of them loses a record.
public enum ModelChangePolicy: String, CaseIterable, Sendable {
    /// Start nothing: exit 78 (EX_CONFIG), saying which settings differ from the records and for
    /// how many streams. The store is left as it was.
    case refuse
    /// Start, and leave those streams' records in place, not loaded: their samples are refused
    /// (`model_changed`) until a start whose configuration matches them again restores them.
    case keep
    /// Start, set those records aside (`model_changed`), and start their streams afresh; `rnnd
    /// checkpoint restore-aside` brings the records back.
    case fresh
}
