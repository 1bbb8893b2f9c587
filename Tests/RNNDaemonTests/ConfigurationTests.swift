import Foundation
import RNNCore
@testable import RNNDaemon
@testable import RNNMetrics
import Testing

@Suite(.timeLimit(.minutes(1)))
struct ConfigurationTests {
    /// Parses `text` as the file `rnnd.toml`, expecting it to be refused.
    func refusal(_ text: String) throws -> ConfigurationError {
        do {
            let configuration = try ConfigurationFile.parse(text, file: "rnnd.toml")
            Issue.record("accepted: \(configuration)")
            throw CancellationError()
        } catch let error as ConfigurationError {
            return error
        }
    }

    /// Writes `text` to a new temporary file and returns its path.
    func temporaryFile(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-\(UUID().uuidString).toml")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// `resolve` with a file (when given) and flags, returning the error it throws, if any.
    func resolveError(
        file text: String?, flags: (inout DaemonConfiguration) -> Void = { _ in }
    ) throws -> ConfigurationError? {
        let path = try text.map(temporaryFile)
        defer { if let path { try? FileManager.default.removeItem(atPath: path) } }
        do throws(ConfigurationError) {
            _ = try DaemonConfiguration.resolve(file: path, flags: flags)
            return nil
        } catch {
            return error
        }
    }

    @Test func defaultsNeedNoFileAndNoFlag() throws {
        let c = DaemonConfiguration()
        #expect(c.subscribe == ["@tcp://127.0.0.1:5556"])
        #expect(c.publish == "@tcp://127.0.0.1:5557")
        #expect(c.topics == [""])
        #expect(c.forecastTopicPrefix == "")
        #expect(c.subscriberHighWaterMark == 10_000)
        #expect(c.stateDirectory == nil)
        #expect(c.model == ModelConfiguration())
        #expect(c.normalizationForgetting == 0.9999)
        #expect(c.workers == DaemonConfiguration.onlineProcessors)
        #expect((1...DaemonConfiguration.maxWorkers).contains(c.workers))
        #expect(c.maxStreams == 10_000)
        #expect(c.maxInputs == 64)
        #expect(c.maxMessageBytes == 65_536)
        #expect(c.queueCapacity == 10_000)
        #expect(c.checkpointInterval == 60)
        #expect(c.checkpointMaxAge == nil && c.resolvedCheckpointMaxAge == 180, "three intervals")
        #expect(c.stopTimeout == 30)
        #expect(c.logLevel == "info")
        #expect(c.metricsListen == nil && c.metricsAddress == nil, "no metrics unless asked for")
        #expect(c.problems() == [])
        #expect(try DaemonConfiguration.resolve(file: nil) { _ in } == c)
        // An empty file and empty sections change nothing.
        #expect(try ConfigurationFile.parse("", file: "empty.toml") == c)
        #expect(try ConfigurationFile.parse("[input]\n[output]\n[model]\n[daemon]\n", file: "empty.toml") == c)
    }

    static let fullFile = """
        # every key, none at its default
        [input]
        subscribe = ["@tcp://0.0.0.0:6000", ">ipc:///run/sensors/out.sock"]
        topics = ["plant-7/", "plant-9/"]
        max_message_bytes = 4096
        max_inputs = 8
        max_clock_skew = 600
        clock_reset_after = 5

        [output]
        publish = ">tcp://forecasts.example:7000"
        topic_prefix = "fc/"
        subscriber_hwm = 500

        [model]
        cell = "gru"
        hidden = 16
        window = 48
        update_every = 4
        horizon = 3
        optimizer = "momentum"
        lr = 0.01
        clip = 5            # an integer where a float belongs
        clip_mode = "step"
        seed = 42
        huber_delta = 0.5   # before loss on purpose: the order in the file does not matter
        loss = "huber"
        elman_activation = "relu"
        normalization_forgetting = 0.999
        direct_lookback = 96
        experts = ["persistence", "linear", "direct"]

        [daemon]
        state_directory = "/var/lib/rnnd"
        workers = 3
        max_streams = 500
        queue_capacity = 2000
        checkpoint_interval = 15
        checkpoint_max_age = 100
        stop_timeout = 90
        quiet_after = 120
        idle_unload = 0
        on_model_change = "keep"
        set_aside_days = 7
        set_aside_per_stream = 1
        log_level = "debug"

        [metrics]
        listen = "[::1]:9557"
        """

    static var fullConfiguration: DaemonConfiguration {
        var c = DaemonConfiguration()
        c.subscribe = ["@tcp://0.0.0.0:6000", ">ipc:///run/sensors/out.sock"]
        c.topics = ["plant-7/", "plant-9/"]
        c.maxMessageBytes = 4096
        c.maxInputs = 8
        c.maxClockSkew = 600
        c.clockResetAfter = 5
        c.publish = ">tcp://forecasts.example:7000"
        c.forecastTopicPrefix = "fc/"
        c.subscriberHighWaterMark = 500
        c.model.cell = .gru
        c.model.hidden = 16
        c.model.window = 48
        c.model.updateEvery = 4
        c.model.horizon = 3
        c.model.optimizer = .momentum(0.9)
        c.model.learningRate = 0.01
        c.model.clipThreshold = 5
        c.model.clipMode = .step
        c.model.seed = 42
        c.model.loss = .huber(delta: 0.5)
        c.model.elmanActivation = .relu
        c.normalizationForgetting = 0.999
        c.model.directLookback = 96
        c.model.experts = [.persistence, .linear, .direct]
        c.stateDirectory = "/var/lib/rnnd"
        c.workers = 3
        c.maxStreams = 500
        c.queueCapacity = 2000
        c.checkpointInterval = 15
        c.checkpointMaxAge = 100
        c.stopTimeout = 90
        c.quietAfter = 120
        c.idleUnload = 0
        c.onModelChange = .keep
        c.setAsideDays = 7
        c.setAsidePerStream = 1
        c.logLevel = "debug"
        c.metricsListen = "[::1]:9557"
        return c
    }

    @Test func fullFileRoundTrips() throws {
        let path = try temporaryFile(Self.fullFile)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loaded = try ConfigurationFile.load(path: path)
        #expect(loaded == Self.fullConfiguration)
        #expect(loaded.problems() == [])
        let rendered = ConfigurationFile.render(loaded, environment: [:])
        #expect(try ConfigurationFile.parse(rendered, file: "printed.toml") == loaded)
        // Loading over a base keeps what the file leaves out.
        var base = DaemonConfiguration()
        base.maxStreams = 7
        #expect(try ConfigurationFile.parse("[model]\nhidden = 8\n", file: "f.toml", over: base).maxStreams == 7)
    }

    /// `--print-config` writes `render`'s text: it reads back to the same configuration, for the
    /// defaults, the full file, and awkward strings.
    @Test func printedConfigurationParsesBack() throws {
        var awkward = DaemonConfiguration()
        awkward.topics = ["", "quote\"back\\slash", "tab\tnewline\n", "ünï/😀", "\u{1}\u{7F}"]
        awkward.forecastTopicPrefix = "'single' \"double\""
        awkward.stateDirectory = "/srv/state dir/rnnd"
        awkward.model.learningRate = 1e-5
        awkward.model.loss = .huber(delta: 1)
        awkward.model.optimizer = .sgd
        awkward.model.clipMode = .none
        awkward.model.seed = UInt64(Int64.max)
        for c in [DaemonConfiguration(), Self.fullConfiguration, awkward] {
            let text = ConfigurationFile.render(c, environment: ["HOME": "/home/op"])
            #expect(try ConfigurationFile.parse(text, file: "printed.toml") == c, "\(text)")
        }
        let defaults = ConfigurationFile.render(DaemonConfiguration(), environment: ["HOME": "/home/op"])
        #expect(defaults.contains("# state_directory is not set; it resolves to \"/home/op/.local/state/rnnd\""))
        #expect(defaults.contains("normalization_forgetting = 0.9999"))
    }

    /// SIGHUP's report compares the two configurations setting by setting: every setting that
    /// changed is named once, with its values as the file writes them, among what a reload
    /// applies (the learning rate, clipping, topics, log level) or what needs a restart.
    @Test func reloadNamesEverySettingThatChanged() {
        #expect(Self.fullConfiguration.reloadChanges(to: Self.fullConfiguration) == ([], []))
        var changed = Self.fullConfiguration
        changed.shard = "0/2"
        changed.model.learningRate = 1e-5
        changed.model.clipMode = .value
        changed.model.formulation = .level
        changed.model.calendar = false
        changed.model.ensemble = false
        changed.model.linearLags = 0
        changed.model.coverage = 0.5
        changed.model.drift = false
        changed.metricsStreamLabels = 20
        changed.curveSecretKeyFile = "rnnd.secret"
        changed.curveAllowedClients = "/etc/rnnd/clients"
        let (applied, needRestart) = DaemonConfiguration().reloadChanges(to: changed)
        #expect(applied == [
            #"daemon.log_level: "info" → "debug""#, #"input.topics: [""] → ["plant-7/", "plant-9/"]"#,
            "model.clip: 1.0 → 5.0", "model.lr: 0.002 → 1e-05",
        ])
        let restartKeys = ConfigurationFile.Schema.keyedSettings.map(\.key).filter { !DaemonConfiguration.reloadableKeys.contains($0) }
        #expect(needRestart.map { String($0.prefix { $0 != ":" }) } == restartKeys.sorted())
        #expect(needRestart.contains(#"daemon.state_directory: unset → "/var/lib/rnnd""#))
        #expect(needRestart.contains(#"model.optimizer: "adafactor" → "momentum""#))
        #expect(needRestart.contains("model.huber_delta: 1.0 → 0.5") && needRestart.contains(#"model.loss: "squared" → "huber""#))
        #expect(needRestart.contains("model.normalization_forgetting: 0.9999 → 0.999"))

        // A setting removed from the file is a change too (the text diff this replaced missed it).
        let (_, unset) = changed.reloadChanges(to: DaemonConfiguration())
        #expect(unset.contains(#"daemon.state_directory: "/var/lib/rnnd" → unset"#), "\(unset)")
    }

    @Test func unknownKeyIsNamed() throws {
        let typo = try refusal("[model]\nhiden = 32\n")
        #expect(typo.exitCode == 78)
        #expect(typo.issues.map(\.kind) == [.unknownKey])
        #expect(typo.issues.first?.key == "model.hiden")
        #expect(typo.description == "rnnd.toml: model.hiden: unknown key in [model]; did you mean hidden?")

        let misplaced = try refusal("[input]\nworkers = 2\n")
        #expect(misplaced.issues.first?.key == "input.workers")
        #expect(misplaced.description.contains("it belongs in [daemon]"))

        let topLevel = try refusal("workers = 2\n")
        #expect(topLevel.issues.map(\.kind) == [.unknownKey])
        #expect(topLevel.description.contains("workers: unknown key at the top level"))
        #expect(topLevel.description.contains("[daemon]"))

        let nested = try refusal("[model.extra]\nx = 1\n")
        #expect(nested.issues.first?.key == "model.extra")
    }

    @Test func unknownSectionIsNamed() throws {
        let error = try refusal("[modle]\nhidden = 32\n")
        #expect(error.exitCode == 78)
        #expect(error.issues.map(\.kind) == [.unknownSection])
        #expect(error.issues.first?.key == "modle")
        #expect(error.description.hasPrefix("rnnd.toml: modle: unknown section [modle]; did you mean [model]?"))
    }

    @Test(arguments: [
        ("[model]\nhidden = \"64\"\n", "model.hidden", "expected an integer, found a string (\"64\")"),
        ("[model]\nhidden = 64.0\n", "model.hidden", "expected an integer, found a float (64.0)"),
        ("[model]\nlr = \"fast\"\n", "model.lr", "expected a number"),
        ("[input]\nsubscribe = \"@tcp://127.0.0.1:5556\"\n", "input.subscribe", "expected an array of strings"),
        ("[input]\ntopics = [\"a\", 3]\n", "input.topics", "found an integer (3) at index 1"),
        ("[daemon]\nworkers = true\n", "daemon.workers", "found a boolean (true)"),
        ("model = \"lstm\"\n", "model", "expected a section [model], found a string"),
    ])
    func wrongTypeIsNamed(text: String, key: String, expected: String) throws {
        let error = try refusal(text)
        #expect(error.exitCode == 78)
        #expect(error.issues.map(\.kind) == [.wrongType])
        #expect(error.issues.first?.key == key)
        #expect(error.description.hasPrefix("rnnd.toml: \(key): "))
        #expect(error.description.contains(expected))
    }

    @Test func invalidChoicesAreNamed() throws {
        let cell = try refusal("[model]\ncell = \"cnn\"\n")
        #expect(cell.issues.map(\.kind) == [.invalidValue])
        #expect(cell.description == #"rnnd.toml: model.cell: expected one of "elman", "lstm", "gru", found "cnn""#)
        let identity = try refusal("[model]\nelman_activation = \"identity\"\n")
        #expect(identity.issues.first?.key == "model.elman_activation")
        let seed = try refusal("[model]\nseed = -1\n")
        #expect(seed.description.contains("model.seed: expected an integer of 0 or more"))
        // Every problem is reported at once, not only the first.
        let several = try refusal("[model]\ncell = \"cnn\"\nhiden = 3\n[daemon]\nworkers = \"2\"\n")
        #expect(several.issues.count == 3)
        #expect(several.description.hasPrefix("rnnd.toml: 3 problems:\n  "))
    }

    @Test func invalidValuesInTheFileExit78() throws {
        let workers = try #require(try resolveError(file: "[daemon]\nworkers = 0\n"))
        #expect(workers.exitCode == 78)
        #expect(workers.issues.map(\.key) == ["daemon.workers"])
        #expect(workers.description.hasSuffix(": daemon.workers (--workers): must be from 1 to 256, got 0"))

        let level = try #require(try resolveError(file: "[daemon]\nlog_level = \"verbose\"\n"))
        #expect(level.exitCode == 78)
        #expect(level.description.contains("daemon.log_level (--log-level): must be one of trace, debug"))

        let model = try #require(try resolveError(file: "[model]\nwindow = 4\nupdate_every = 8\n"))
        #expect(model.exitCode == 78)
        #expect(model.description.contains("model: update-every (k1 = 8) must not exceed the window (k2 = 4)"))

        let forgetting = try #require(try resolveError(file: "[model]\nnormalization_forgetting = 1.5\n"))
        #expect(forgetting.description.hasSuffix(
            ": model.normalization_forgetting (--normalization-forgetting): must be in (0, 1], 1 for no forgetting; got 1.5"))
    }

    @Test func badEndpointsAreRefused() throws {
        let file = try #require(try resolveError(file: "[input]\nsubscribe = [\"tcp://127.0.0.1:5556\"]\n"))
        #expect(file.exitCode == 78)
        #expect(file.issues.first?.key == "input.subscribe")
        #expect(file.description.contains("input.subscribe (--sub): \"tcp://127.0.0.1:5556\": an endpoint starts with '@' (bind) or '>' (connect)"))

        let flag = try #require(try resolveError(file: nil) { $0.publish = "@udp://127.0.0.1:5557" })
        #expect(flag.exitCode == 64)
        #expect(flag.origin == .flags)
        #expect(flag.description.hasPrefix("output.publish (--pub): \"@udp://127.0.0.1:5557\": the transport must be tcp or ipc"))
    }

    @Test(arguments: [
        "@tcp://127.0.0.1:5556", ">tcp://sensors.example:5556", "@tcp://*:5556", "@tcp://127.0.0.1:*",
        "@tcp://[::1]:5556", ">tcp://eth0;192.168.1.1:5556", "@ipc:///run/rnnd/in.sock", ">ipc://@abstract",
    ])
    func goodEndpointsPass(endpoint: String) {
        var c = DaemonConfiguration()
        c.subscribe = [endpoint]
        #expect(c.problems() == [])
    }

    @Test(arguments: [
        ("", "the endpoint is empty"),
        ("tcp://127.0.0.1:5556", "starts with '@' (bind) or '>' (connect)"),
        ("@127.0.0.1:5556", "expected tcp://host:port or ipc://path"),
        ("@inproc://x", "the transport must be tcp or ipc, not 'inproc'"),
        ("@tcp://127.0.0.1", "a tcp address is host:port"),
        ("@tcp://127.0.0.1:", "is not a number"),
        ("@tcp://:5556", "a tcp address is host:port"),
        ("@tcp://127.0.0.1:65536", "is not a number from 1 to 65535"),
        ("@tcp://127.0.0.1:0", "is not a number from 1 to 65535"),
        (">tcp://127.0.0.1:*", "connecting needs a port number"),
        ("@tcp://127.0.0.1: 5556", "white space"),
        ("@ipc://", "the socket path after ipc:// is missing"),
        ("@ipc:///" + String(repeating: "x", count: 120), "at most 107"),
    ])
    func badEndpointsAreExplained(endpoint: String, reason: String) {
        var c = DaemonConfiguration()
        c.subscribe = [endpoint]
        let problems = c.problems()
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("input.subscribe (--sub): ") == true)
        #expect(problems.first?.contains(reason) == true, "\(problems)")
    }

    /// A window left at its default grows to what the horizon needs (docs/configuration.md);
    /// one that was set stays, and is refused when too short.
    @Test func theDefaultWindowFollowsTheHorizon() throws {
        let plain = try DaemonConfiguration.resolve(file: nil) { _ in }
        #expect(plain.model.window == 20 && plain.model.updateEvery == 2)
        let far = try DaemonConfiguration.resolve(file: nil) { $0.model.horizon = 48 }
        #expect(far.model.window == 49)
        let set = try DaemonConfiguration.resolve(file: nil) { $0.model.horizon = 48; $0.model.window = 64 }
        #expect(set.model.window == 64)
        #expect(throws: ConfigurationError.self) {
            try DaemonConfiguration.resolve(file: nil) { $0.model.horizon = 48; $0.model.window = 30 }
        }
    }

    @Test func otherProblemsAreFound() {
        var c = DaemonConfiguration()
        c.subscribe = []
        c.topics = []
        c.maxMessageBytes = 0
        c.maxInputs = 70_000
        c.maxClockSkew = 0.5
        c.clockResetAfter = -1
        c.subscriberHighWaterMark = 0
        c.stateDirectory = ""
        c.maxStreams = 0
        c.queueCapacity = -1
        c.workers = 257
        c.checkpointInterval = 0.5
        c.checkpointMaxAge = 0
        c.stopTimeout = 4
        let keys = c.issues().compactMap(\.key)
        #expect(keys == [
            "input.subscribe", "input.topics", "input.max_message_bytes", "input.max_inputs",
            "input.max_clock_skew", "input.clock_reset_after", "output.subscriber_hwm", "daemon.state_directory", "daemon.workers", "daemon.max_streams", "daemon.queue_capacity",
            "daemon.checkpoint_interval", "daemon.checkpoint_max_age", "daemon.stop_timeout",
        ])
        c = DaemonConfiguration()
        c.maxClockSkew = .nan
        #expect(c.problems() == ["input.max_clock_skew (--max-clock-skew): must be 0 (no limit) or from 1 to 31536000 seconds, got nan"])
        c.maxClockSkew = 0
        c.clockResetAfter = 0
        #expect(c.problems() == [], "0 turns either off")
        c = DaemonConfiguration()
        c.checkpointInterval = .nan
        #expect(c.problems() == ["daemon.checkpoint_interval (--checkpoint-interval): must be from 1 to 86400 seconds, got nan"])
        c = DaemonConfiguration()
        c.checkpointMaxAge = 59
        #expect(c.problems() == ["daemon.checkpoint_max_age (--checkpoint-max-age): must be from checkpoint_interval (60.0) to 864000 seconds, got 59.0"])
        c.checkpointMaxAge = 60
        c.stopTimeout = .infinity
        #expect(c.problems() == ["daemon.stop_timeout (--stop-timeout): must be from 5 to 86400 seconds (the systemd unit's TimeoutStopSec=), got inf"])

        // The model's shape has upper bounds in a daemon, where every stream gets one.
        var big = DaemonConfiguration()
        big.model.hidden = 4097
        big.model.window = 10_001
        big.model.horizon = 1001
        #expect(big.problems() == [
            "model.hidden (--hidden): must be at most 4096, got 4097",
            "model.window (--window): must be at most 10000, got 10001",
            "model.horizon (--horizon): must be at most 1000, got 1001",
        ])
        big = DaemonConfiguration()
        big.model.horizon = 1000
        big.model.window = 1001
        big.maxInputs = 1049
        #expect(big.problems() == [
            "model.horizon (--horizon): times input.max_inputs (--max-inputs) must be at most 1048576 values a forecast, got 1000 × 1049 = 1049000",
        ])
        big.maxInputs = 1048
        #expect(big.problems() == [])

        var clash = DaemonConfiguration()
        clash.subscribe = ["@tcp://127.0.0.1:5556", "@tcp://127.0.0.1:5556"]
        clash.publish = "@tcp://127.0.0.1:5556"
        #expect(clash.problems().contains("input.subscribe (--sub): lists @tcp://127.0.0.1:5556 twice"))
        #expect(clash.problems().contains { $0.hasPrefix("output.publish (--pub): binds tcp://127.0.0.1:5556") })
    }

    @Test(arguments: [
        ("127.0.0.1:9557", "127.0.0.1", false, 9557), ("0.0.0.0:0", "0.0.0.0", false, 0),
        ("[::1]:9557", "::1", true, 9557), ("[::]:65535", "::", true, 65535),
    ])
    func goodMetricsAddressesPass(text: String, host: String, v6: Bool, port: Int) throws {
        var c = DaemonConfiguration()
        c.metricsListen = text
        #expect(c.problems() == [])
        let address = try #require(c.metricsAddress)
        #expect(address.host == host && address.isIPv6 == v6 && Int(address.port) == port)
        #expect(address.description == text)
    }

    @Test(arguments: [
        ("", "is empty"),
        ("127.0.0.1", "expected HOST:PORT"),
        (":9557", "expected HOST:PORT"),
        ("127.0.0.1:", "the port '' is not a number from 0 to 65535"),
        ("127.0.0.1:65536", "is not a number from 0 to 65535"),
        ("127.0.0.1:+80", "is not a number"),
        ("localhost:9557", "'localhost' is not a numeric IPv4 address (host names are not resolved)"),
        ("256.1.1.1:9557", "is not a numeric IPv4 address"),
        (" 127.0.0.1:9557", "is not a numeric IPv4 address"),
        ("::1:9557", "an IPv6 address goes in brackets"),
        ("[::1:9557", "is not an IPv6 address in brackets"),
        ("[127.0.0.1]:9557", "is not an IPv6 address in brackets"),
        ("http://127.0.0.1:9557", "without a scheme or a path"),
        ("127.0.0.1:9557/metrics", "without a scheme or a path"),
    ])
    func badMetricsAddressesAreExplained(text: String, reason: String) {
        var c = DaemonConfiguration()
        c.metricsListen = text
        #expect(c.metricsAddress == nil)
        let problems = c.problems()
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("metrics.listen (--metrics-listen): ") == true, "\(problems)")
        #expect(problems.first?.contains(reason) == true, "\(problems)")
    }

    @Test func metricsListenIsTheFilesOrTheFlags() throws {
        let file = try #require(try resolveError(file: "[metrics]\nlisten = \"localhost:9557\"\n"))
        #expect(file.exitCode == 78)
        #expect(file.issues.first?.key == "metrics.listen")
        let flag = try #require(try resolveError(file: nil) { $0.metricsListen = "127.0.0.1:99999" })
        #expect(flag.exitCode == 64)
        #expect(flag.description.hasPrefix("metrics.listen (--metrics-listen): \"127.0.0.1:99999\": the port"))
        let wrongType = try refusal("[metrics]\nlisten = 9557\n")
        #expect(wrongType.issues.first?.description == "metrics.listen: expected a string, found an integer (9557)")
        let misplaced = try refusal("[daemon]\nlisten = \"127.0.0.1:9557\"\n")
        #expect(misplaced.description.contains("it belongs in [metrics]"))
        // Not set: said so in --print-config; a reload that changes it asks for a restart.
        #expect(ConfigurationFile.render(DaemonConfiguration(), environment: [:]).contains("# listen is not set: no metrics are served"))
        var served = DaemonConfiguration()
        served.metricsListen = "127.0.0.1:9557"
        #expect(DaemonConfiguration().reloadChanges(to: served).needRestart == [#"metrics.listen: unset → "127.0.0.1:9557""#])
    }

    @Test func flagsOverrideTheFileAndOwnTheirProblems() throws {
        let path = try temporaryFile("[model]\nwindow = 4\nloss = \"huber\"\nhuber_delta = 2.0\n[daemon]\nworkers = 0\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        // A flag can repair the file.
        let repaired = try DaemonConfiguration.resolve(file: path) { $0.workers = 2 }
        #expect(repaired.workers == 2)
        #expect(repaired.model.window == 4)
        #expect(repaired.model.loss == .huber(delta: 2))
        // A problem only the flags bring is theirs: exit 64.
        let flagsOnly = try #require(try resolveError(file: "[model]\nwindow = 4\n") { $0.model.updateEvery = 8 })
        #expect(flagsOnly.exitCode == 64)
        #expect(flagsOnly.origin == .flags)
        // An unreadable file is the file's, whatever the flags.
        do throws(ConfigurationError) {
            _ = try DaemonConfiguration.resolve(file: "/nonexistent/rnnd.toml") { $0.workers = 2 }
            Issue.record("accepted a missing file")
        } catch {
            #expect(error.exitCode == 78)
            #expect(error.issues.map(\.kind) == [.unreadable])
            #expect(error.description == "/nonexistent/rnnd.toml: cannot read the configuration file: No such file or directory")
        }
    }

    @Test func malformedAndUnreadableFilesExit78() throws {
        let malformed = try refusal("[model]\nhidden = = 3\n")
        #expect(malformed.exitCode == 78)
        #expect(malformed.issues.map(\.kind) == [.malformed])
        #expect(malformed.description.hasPrefix("rnnd.toml: line 2, column "))

        let duplicate = try refusal("[model]\nhidden = 3\nhidden = 4\n")
        #expect(duplicate.issues.map(\.kind) == [.malformed])

        var directoryError: ConfigurationError?
        do throws(ConfigurationError) {
            _ = try ConfigurationFile.load(path: FileManager.default.temporaryDirectory.path)
        } catch {
            directoryError = error
        }
        let directory = try #require(directoryError)
        #expect(directory.exitCode == 78)
        #expect(directory.description.hasSuffix("cannot read the configuration file: it is a directory"))

        let binary = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-\(UUID().uuidString).toml")
        try Data([0x5B, 0xFF, 0xFE, 0x5D]).write(to: binary)
        defer { try? FileManager.default.removeItem(at: binary) }
        #expect(throws: ConfigurationError.self) { try ConfigurationFile.load(path: binary.path) }
    }

    @Test func lossAndNormalisationKeys() throws {
        // The Huber threshold is read only with the Huber loss.
        let squared = try ConfigurationFile.parse("[model]\nloss = \"squared\"\nhuber_delta = 3\n", file: "f.toml")
        #expect(squared.model.loss == .squared)
        let defaultDelta = try ConfigurationFile.parse("[model]\nloss = \"huber\"\n", file: "f.toml")
        #expect(defaultDelta.model.loss == .huber(delta: 1))
        // A forgetting factor of 1 is no forgetting.
        let none = try ConfigurationFile.parse("[model]\nnormalization_forgetting = 1\n", file: "f.toml")
        #expect(none.normalizationForgetting == nil)
        #expect(none.model.normalization == .running(forgetting: nil))
    }

    /// The direct expert's look-back and the experts combined: read from the file, refused with
    /// their key when wrong (a name that is no expert when the file is read, a value out of range
    /// once the flags are applied), and written back by `--print-config`.
    @Test func directLookbackAndExpertsKeys() throws {
        let set = try ConfigurationFile.parse(
            "[model]\nhorizon = 4\ndirect_lookback = 96\nexperts = [\"persistence\", \"linear\", \"direct\"]\n", file: "f.toml")
        #expect(set.model.directLookback == 96 && set.model.effectiveDirectLookback == 96)
        #expect(set.model.experts == [.persistence, .linear, .direct])
        #expect(set.problems() == [])
        let unset = try ConfigurationFile.parse("[model]\nhorizon = 4\n", file: "f.toml")
        #expect(unset.model.directLookback == nil && unset.model.experts == nil && unset.model.effectiveDirectLookback == 672)
        #expect(try ConfigurationFile.parse("[model]\ndirect_lookback = 0\n", file: "f.toml").model.directLookback == 0)

        let bogus = try refusal("[model]\nexperts = [\"persistence\", \"bogus\"]\n")
        #expect(bogus.exitCode == 78 && bogus.issues.map(\.kind) == [.invalidValue])
        #expect(bogus.description == #"rnnd.toml: model.experts: expected names among "persistence", "smoothing", "linear", "network", "direct", "seasonal", found "bogus" at index 1"#)
        let notAnArray = try refusal("[model]\nexperts = \"linear\"\n")
        #expect(notAnArray.issues.map(\.kind) == [.wrongType] && notAnArray.issues.first?.key == "model.experts")
        let notAnInteger = try refusal("[model]\ndirect_lookback = \"672\"\n")
        #expect(notAnInteger.issues.map(\.kind) == [.wrongType] && notAnInteger.issues.first?.key == "model.direct_lookback")

        // Out of range: the file's fault (78) when the file set it, the flags' (64) when they did.
        let far = try #require(try resolveError(file: "[model]\ndirect_lookback = 5000\n"))
        #expect(far.exitCode == 78)
        #expect(far.issues.map(\.description) == [
            "model.direct_lookback (--direct-lookback): the direct expert's look-back must be in 0 ... 4096 (got 5000)",
        ])
        let farFlag = try #require(try resolveError(file: nil) { $0.model.directLookback = -1 })
        #expect(farFlag.exitCode == 64 && farFlag.issues.map(\.key) == ["model.direct_lookback"], "\(farFlag)")
        let none = try #require(try resolveError(file: "[model]\nexperts = []\n"))
        #expect(none.exitCode == 78 && none.issues.map(\.key) == ["model.experts"], "\(none)")
        let alone = try #require(try resolveError(file: "[model]\nensemble = false\nexperts = [\"linear\"]\n"))
        #expect(alone.issues.map(\.key) == ["model.experts"], "\(alone)")
        // Experts that are all off (the direct one at horizon 1, the linear one without lags)
        // would leave the combination nothing to weigh: refused, not a forecast of 0.
        let off = try #require(try resolveError(file: "[model]\nlinear_lags = 0\nexperts = [\"linear\", \"direct\"]\n"))
        #expect(off.exitCode == 78 && off.issues.map(\.key) == ["model.experts"], "\(off)")
        #expect(off.issues.first?.description.contains("none of linear,direct is on") == true, "\(off)")
        #expect(try resolveError(file: "[model]\nhorizon = 2\nexperts = [\"direct\"]\n") == nil)
        let seasonal = try #require(try resolveError(file: "[model]\nexperts = [\"seasonal\"]\n"))
        #expect(seasonal.issues.first?.description.contains("seasonal needs a horizon above 1") == true, "\(seasonal)")
        #expect(try resolveError(file: "[model]\nhorizon = 2\nexperts = [\"seasonal\"]\n") == nil)

        let rendered = ConfigurationFile.render(unset, environment: [:])
        #expect(rendered.contains("# direct_lookback is not set: at horizon 4, a look-back of 672 samples"), "\(rendered)")
        #expect(rendered.contains("# experts is not set: the forecast combines every expert that is on"))
        #expect(ConfigurationFile.render(DaemonConfiguration(), environment: [:]).contains("# direct_lookback is not set: at horizon 1, no direct expert"))
        #expect(ConfigurationFile.render(set, environment: [:]).contains(#"experts = ["persistence", "linear", "direct"]"#))
    }

    /// Beyond horizon 1 the settings left at their defaults follow the horizon
    /// (docs/configuration.md): the window, the optimizer and its learning rate (Adam at 0.001),
    /// and the direct expert's look-back (672). A setting equal to its default counts as not set.
    @Test func theDefaultsBeyondHorizonOne() throws {
        let near = try DaemonConfiguration.resolve(file: nil) { _ in }
        #expect(near.model.optimizer == .defaultAdafactor && near.model.learningRate == 0.002 && near.model.effectiveDirectLookback == 0)
        let far = try DaemonConfiguration.resolve(file: nil) { $0.model.horizon = 4 }
        #expect(far.model.window == 20 && far.model.optimizer == .defaultAdam && far.model.learningRate == 0.001)
        #expect(far.model.effectiveDirectLookback == 672)
        let chosen = try DaemonConfiguration.resolve(file: nil) { $0.model.horizon = 4; $0.model.learningRate = 0.003 }
        #expect(chosen.model.optimizer == .defaultAdafactor && chosen.model.learningRate == 0.003)
        let sentinel = try DaemonConfiguration.resolve(file: nil) { $0.model.horizon = 4; $0.model.learningRate = 0.002 }
        #expect(sentinel.model.optimizer == .defaultAdam && sentinel.model.learningRate == 0.001, "0.002 is the default: not set")
        let adam = try DaemonConfiguration.resolve(file: nil) { $0.model.horizon = 24; $0.model.optimizer = .defaultAdam; $0.model.window = 20 }
        #expect(adam.model.optimizer == .defaultAdam && adam.model.learningRate == 0.002 && adam.model.window == 25)
    }

    @Test func stateDirectoryResolution() {
        var c = DaemonConfiguration()
        let home = ["HOME": "/home/op"]
        #expect(c.resolvedStateDirectory(environment: home) == "/home/op/.local/state/rnnd")
        #expect(c.resolvedStateDirectory(environment: ["HOME": "/home/op/"]) == "/home/op/.local/state/rnnd")
        #expect(c.resolvedStateDirectory(environment: ["HOME": "/home/op", "XDG_STATE_HOME": "/xdg/state"]) == "/xdg/state/rnnd")
        // A relative XDG_STATE_HOME is ignored, as the XDG spec says.
        #expect(c.resolvedStateDirectory(environment: ["HOME": "/home/op", "XDG_STATE_HOME": "state"]) == "/home/op/.local/state/rnnd")
        // systemd's StateDirectory= wins over the home directory; of several, the first is ours.
        let systemd = ["HOME": "/home/op", "XDG_STATE_HOME": "/xdg", "STATE_DIRECTORY": "/var/lib/rnnd"]
        #expect(c.resolvedStateDirectory(environment: systemd) == "/var/lib/rnnd")
        #expect(c.resolvedStateDirectory(environment: ["STATE_DIRECTORY": "/var/lib/rnnd:/var/lib/other"]) == "/var/lib/rnnd")
        #expect(c.resolvedStateDirectory(environment: ["STATE_DIRECTORY": "", "HOME": "/home/op"]) == "/home/op/.local/state/rnnd")
        // Without HOME, the user database's home directory.
        #expect(c.resolvedStateDirectory(environment: [:]).hasSuffix("/.local/state/rnnd"))
        // A configured directory wins over everything.
        c.stateDirectory = "/srv/rnnd"
        #expect(c.resolvedStateDirectory(environment: systemd) == "/srv/rnnd")
    }
}

extension ConfigurationTests {
    /// The example of docs/configuration.md loads and is valid, so the page stays true to the code.
    @Test func documentedExampleLoads() throws {
        let docs = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/configuration.md")
        let page = try String(contentsOf: docs, encoding: .utf8)
        let start = try #require(page.range(of: "```toml\n"))
        let end = try #require(page.range(of: "```", range: start.upperBound..<page.endIndex))
        let example = try ConfigurationFile.parse(String(page[start.upperBound..<end.lowerBound]), file: "configuration.md")
        #expect(example.problems() == [])
        #expect(example.model.cell == .gru)
        #expect(example.model.loss == .huber(delta: 1))
        #expect(example.topics == ["plant-7/"])
        #expect(example.stateDirectory == "/var/lib/rnnd")
        #expect(example.metricsAddress == MetricsAddress(parsing: "127.0.0.1:9557"))
    }
}

extension ConfigurationTests {
    /// The daemon plans its stop within `stop_timeout`; systemd kills it `TimeoutStopSec=` after
    /// SIGTERM. The units and the default must agree, or the final checkpoint's retries are cut
    /// short by a SIGKILL.
    @Test(arguments: ["rnnd.service", "rnnd@.service"])
    func theUnitsStopTimeoutIsTheDefaultStopBudget(unit: String) throws {
        let path = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("systemd/\(unit)")
        let lines = try String(contentsOf: path, encoding: .utf8).split(separator: "\n")
        let timeouts = lines.filter { $0.hasPrefix("TimeoutStopSec=") }.map { $0.dropFirst("TimeoutStopSec=".count) }
        #expect(timeouts.map { Double($0) } == [DaemonConfiguration().stopTimeout], "\(unit): \(timeouts)")
    }
}

extension ConfigurationTests {
    /// docs/configuration.md's table, the defaults the code has (`rnnd run --print-config` with
    /// nothing given) and the flags' help (`rnnd run --help`, whose model flags `rnnd replay`
    /// shares) agree: every default the table gives as one literal is the one printed, and the
    /// one the flag's "(default: ...)" names where it names one. (The help once said 1 for
    /// --normalization-forgetting long after the default became 0.9999.)
    @Test func theTablesDefaultsAreTheCodesAndTheHelps() throws {
        let page = try String(contentsOf: ReplayCommandTests.root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        // `| `key` | `--flag ...` ... | `literal` | ...`: the rows whose default is one literal.
        var documented: [(key: String, flag: String, literal: String)] = []
        for line in page.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4, let flag = cells[2].firstMatch(of: /--[a-z-]+/) else { continue }
            let key = cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            let value = cells[3]
            guard value.count >= 2, value.hasPrefix("`"), value.hasSuffix("`"), value.dropFirst().firstIndex(of: "`") == value.index(before: value.endIndex)
            else { continue }
            documented.append((key, String(flag.output), String(value.dropFirst().dropLast())))
        }

        let printed = try ReplayCommandTests.run(["run", "--print-config"], seconds: 30)
        try #require(printed.status == 0, "\(printed.stderr)")
        // The settings printed with their values, and the keys of every setting printed, set or not.
        var code: [String: String] = [:]
        var printedKeys: [String] = []
        for line in printed.stdout.split(separator: "\n") {
            if let m = line.firstMatch(of: /^# ([a-z_]+) is not set/) {
                printedKeys.append(String(m.output.1))
            } else if !line.hasPrefix("#"), line.contains(" = ") {
                let parts = line.split(separator: " = ", maxSplits: 1)
                code[String(parts[0])] = String(parts[1])
                printedKeys.append(String(parts[0]))
            }
        }

        let help = try ReplayCommandTests.run(["run", "--help"], seconds: 30)
        try #require(help.status == 0, "\(help.stderr)")
        var helpText: [String: String] = [:]
        var current: String?
        for line in help.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
            if let m = line.firstMatch(of: /^  (--[a-z-]+)(?: <[^>]*>)?\s*(.*)$/) {
                current = String(m.output.1)
                helpText[current!] = String(m.output.2)
            } else if let flag = current, line.hasPrefix("      ") {
                helpText[flag, default: ""] += " " + line.trimmingCharacters(in: .whitespaces)
            } else {
                current = nil
            }
        }
        /// A value as the help writes it: no quotes or brackets, on/off for true/false.
        func plain(_ text: String) -> String {
            let bare = text.trimmingCharacters(in: CharacterSet(charactersIn: "[]\""))
            return ["true": "on", "false": "off", "": "none"][bare] ?? bare
        }

        // And the other way: every setting the code prints (set, or "# KEY is not set") has a row.
        #expect(printedKeys.count >= 40)
        for key in printedKeys {
            let hasRow = page.contains("| `\(key)` |")
            #expect(hasRow, "rnnd run --print-config prints \(key), which docs/configuration.md's table has no row for")
        }

        var againstCode = 0, againstHelp = 0
        for (key, flag, literal) in documented {
            let printedValue = try #require(code[key], "\(key) is in docs/configuration.md's table but not in --print-config")
            #expect(printedValue == literal, "\(key): the table says \(literal), the code has \(printedValue)")
            againstCode += 1
            let text = try #require(helpText[flag], "\(flag) is in docs/configuration.md's table but not in rnnd run --help")
            guard let named = text.firstMatch(of: /\(default: ("[^"]*"|[^,;) ]+)/) else { continue }
            let said = plain(String(named.output.1))
            if let a = Double(said), let b = Double(plain(literal)) {
                #expect(a == b, "\(flag): the help says \(said), the table and the code \(literal)")
            } else {
                #expect(said == plain(literal), "\(flag): the help says \(said), the table and the code \(literal)")
            }
            againstHelp += 1
        }
        // 37 of the table's settings have a one-literal default, 36 of their flags name it (2026-12-07).
        #expect(againstCode >= 35 && againstHelp >= 30, "compared \(againstCode) with the code, \(againstHelp) with the help")
    }
}
