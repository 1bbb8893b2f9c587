// The TOML configuration file of `rnnd run` (docs/configuration.md): its schema, the loader that
// refuses what it does not know, the writer behind `--print-config`, and the layering
// defaults < file < flags.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

import RNNBasics
import RNNCore
import TOMLKit

/// A configuration that `rnnd run` refuses to start with. Its text names the file, the key
/// (`section.key`) and what was expected; `exitCode` is what the process exits with.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Where the refused values came from.
    public enum Origin: Sendable, Equatable {
        /// The TOML file at this path.
        case file(String)
        /// The command line.
        case flags
    }

    public enum Kind: String, Sendable {
        /// The file could not be read (missing, a directory, no permission, not UTF-8, too large).
        case unreadable
        /// The file is not TOML.
        case malformed
        /// A table that is not one of the sections.
        case unknownSection
        /// A key that is not in the schema (typos are never ignored).
        case unknownKey
        /// A value of the wrong TOML type, e.g. a string where an integer belongs.
        case wrongType
        /// A value of the right type that is out of range or not one of the choices.
        case invalidValue
    }

    /// One thing that is wrong.
    public struct Issue: Error, Sendable, Equatable, CustomStringConvertible {
        public var kind: Kind
        /// The TOML key, `section.key` (`model` for the core's checks of the model as a whole);
        /// nil for what concerns the whole file.
        public var key: String?
        /// The flag that sets the same value, if there is one.
        public var flag: String?
        /// What is wrong and what was expected.
        public var message: String

        public init(kind: Kind, key: String?, flag: String? = nil, message: String) {
            self.kind = kind
            self.key = key
            self.flag = flag
            self.message = message
        }

        public var description: String {
            switch (key, flag) {
            case (let key?, let flag?): "\(key) (\(flag)): \(message)"
            case (let key?, nil): "\(key): \(message)"
            case (nil, let flag?): "\(flag): \(message)"
            case (nil, nil): message
            }
        }
    }

    public var origin: Origin
    /// At least one.
    public var issues: [Issue]

    public init(origin: Origin, issues: [Issue]) {
        self.origin = origin
        self.issues = issues
    }

    /// 78 (`EX_CONFIG`) when the file is at fault, 64 (`EX_USAGE`) when the flags are.
    public var exitCode: Int32 {
        switch origin {
        case .file: 78
        case .flags: 64
        }
    }

    public var description: String {
        let lead: String
        switch origin {
        case .file(let path): lead = path + ": "
        case .flags: lead = ""
        }
        if issues.count == 1 { return lead + issues[0].description }
        return lead + "\(issues.count) problems:" + issues.map { "\n  " + $0.description }.joined()
    }
}

/// The TOML file of `rnnd run`. Five sections, every key optional (a missing key keeps the value
/// from below: the defaults, or the configuration passed in):
///
/// ```toml
/// [input]
/// subscribe = ["@tcp://127.0.0.1:5556"]   # SUB endpoints
/// topics = [""]                           # stream id prefixes; "" is every stream
/// max_message_bytes = 65536
/// max_inputs = 64
/// shard = "0/2"                           # take only shard 0 of 2; unset takes every stream
/// max_clock_skew = 3600.0   # seconds a sample's t may be ahead of the host's clock; 0: no limit
/// clock_reset_after = 3     # out-of-order samples that set a stream's clock back; 0: never
///
/// [output]
/// publish = "@tcp://127.0.0.1:5557"
/// topic_prefix = ""
/// subscriber_hwm = 10000   # forecasts queued per subscriber; past it, that subscriber misses some
///
/// [model]
/// cell = "lstm"            # lstm, gru, elman
/// hidden = 64
/// window = 20              # k2; at least horizon + update_every - 1 when not set
/// update_every = 2         # k1
/// horizon = 1
/// optimizer = "adafactor"  # adafactor, adam, sgd, momentum; adam beyond horizon 1 when neither is set
/// lr = 0.002               # 0.001 beyond horizon 1 when neither is set
/// clip = 1.0
/// clip_mode = "norm"       # norm, value, step, none
/// seed = 0
/// loss = "squared"         # squared, huber
/// huber_delta = 1.0        # read when loss = "huber"
/// elman_activation = "tanh"
/// normalization_forgetting = 0.9999   # (0, 1]; 1 is no forgetting
/// formulation = "change"   # change, level
/// calendar = true          # time of day and of week as inputs (samples with a time)
/// ensemble = true          # combine the experts; false: the network alone
/// linear_lags = 4          # 0: no linear model
/// direct_lookback = 672    # the direct expert's look-back; unset: 672 beyond horizon 1, none at 1; 0: none
/// experts = ["persistence", "smoothing", "linear", "network", "direct", "seasonal"]   # unset: every one that is on
/// coverage = 0.9           # prediction bands; 0: none (and no anomaly score)
/// drift = true             # detect error regime changes and re-adapt
///
/// [daemon]
/// state_directory = "/var/lib/rnnd"
/// workers = 2
/// max_streams = 10000
/// queue_capacity = 10000
/// checkpoint_interval = 60.0
/// checkpoint_max_age = 180.0     # /healthz fails when checkpoints fail this long; unset: 3 intervals
/// stop_timeout = 30.0            # the units' TimeoutStopSec=
/// on_model_change = "refuse"   # stored streams of another model shape: refuse, keep, fresh
/// set_aside_days = 30.0        # records set aside are deleted at start-up after this; 0: never
/// set_aside_per_stream = 3     # and beyond the newest 3 of a stream; 0: no limit
/// quiet_after = 300.0      # seconds without a sample: the stream counts as quiet
/// idle_unload = 3600.0     # seconds without a sample: saved and unloaded; 0: never
/// log_level = "info"
///
/// [metrics]
/// listen = "127.0.0.1:9557"   # HTTP: /metrics and /healthz; unset serves nothing
/// stream_labels = 100          # streams with series of their own (rolling errors, coverage)
///
/// [security]
/// curve_secret_key_file = "rnnd.secret"    # CURVE on both sockets; relative: in $CREDENTIALS_DIRECTORY
/// curve_allowed_clients = "/etc/rnnd/clients"   # the clients' NAME.public files
/// ```
///
/// Unknown sections and keys, and values of the wrong type, are errors. Numbers where a float
/// belongs may be written as integers (`clip = 1`).
public enum ConfigurationFile {
    /// A file larger than this is refused unread (it is not a configuration file).
    public static let maxBytes = 1 << 20

    /// Reads the file at `path` over `base` (the defaults unless given). Checks types and names,
    /// not ranges: ``DaemonConfiguration/problems()`` does that once the flags are applied.
    public static func load(
        path: String, over base: DaemonConfiguration = DaemonConfiguration()
    ) throws(ConfigurationError) -> DaemonConfiguration {
        let text: String
        do { text = try readFile(path) } catch { throw ConfigurationError(origin: .file(path), issues: [error]) }
        return try parse(text, file: path, over: base)
    }

    /// Parses TOML text over `base`; `file` names it in errors.
    public static func parse(
        _ text: String, file: String, over base: DaemonConfiguration = DaemonConfiguration()
    ) throws(ConfigurationError) -> DaemonConfiguration {
        func fail(_ issues: [ConfigurationError.Issue]) -> ConfigurationError {
            ConfigurationError(origin: .file(file), issues: issues)
        }
        if text.utf8.contains(0) {
            throw fail([.init(kind: .malformed, key: nil, message: "the file contains a NUL byte; it is not TOML")])
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let at = error.source.begin
            throw fail([.init(kind: .malformed, key: nil,
                              message: "line \(at.line), column \(at.column): not valid TOML: \(error.description)")])
        } catch {
            throw fail([.init(kind: .malformed, key: nil, message: "not valid TOML: \(error)")])
        }

        var configuration = base
        var issues: [ConfigurationError.Issue] = []
        let sectionNames = Schema.sections.map(\.name)

        // Names first, so that a typo is reported even next to a bad value.
        for (name, node) in root {
            if let section = Schema.sections.first(where: { $0.name == name }) {
                guard let table = node.table else {
                    issues.append(.init(kind: .wrongType, key: name,
                                        message: "expected a section [\(name)], found \(describe(node))"))
                    continue
                }
                for (key, _) in table where !section.settings.contains(where: { $0.key == key }) {
                    issues.append(unknownKey(key, in: name))
                }
            } else if node.table != nil {
                var message = "unknown section [\(name)]"
                if let close = closest(to: name, among: sectionNames) { message += "; did you mean [\(close)]?" }
                message += " The sections are " + sectionNames.map { "[\($0)]" }.joined(separator: ", ") + "."
                issues.append(.init(kind: .unknownSection, key: name, message: message))
            } else {
                var message = "unknown key at the top level: settings belong in a section"
                if let home = Schema.sections.first(where: { $0.settings.contains { $0.key == name } }) {
                    message += ", this one in [\(home.name)] (write it under a [\(home.name)] line)"
                } else {
                    message += " (" + sectionNames.map { "[\($0)]" }.joined(separator: ", ") + ")"
                }
                issues.append(.init(kind: .unknownKey, key: name, message: message))
            }
        }

        // Then values, in schema order (so `huber_delta` sees `loss`, whatever the file's order).
        for section in Schema.sections {
            guard let table = root[section.name]?.table else { continue }
            for setting in section.settings {
                guard let node = table[setting.key] else { continue }
                let value = Value(node: node, key: section.name + "." + setting.key)
                do { try setting.apply(value, &configuration) } catch { issues.append(error) }
            }
        }
        if !issues.isEmpty { throw fail(issues) }
        return configuration
    }

    /// The configuration as a TOML file that ``parse(_:file:over:)`` reads back to the same value:
    /// every setting of the schema, in its order. A setting that is not set is a comment saying
    /// so; for the state directory, the one it resolves to (from `environment`). Optimizers are
    /// written by name (`adam`, `sgd`, `momentum`), with the defaults that name stands for.
    ///
    /// Written by hand rather than by TOMLKit: TOMLKit (toml++ underneath) writes no comments,
    /// so the lines that say what an unset setting means would go; it orders every table's keys
    /// alphabetically, not as the schema and docs/configuration.md group them; and it writes
    /// floats with 17 significant digits (`lr = 1e-5` comes out as `1.0000000000000001e-05`).
    /// Values are TOML's simple forms (``SettingValue/toml``); a test parses the text back.
    public static func render(_ configuration: DaemonConfiguration, environment: [String: String]) -> String {
        var lines = ["# rnnd run configuration (docs/configuration.md): defaults < this file < flags."]
        for section in Schema.sections {
            lines += ["", "[\(section.name)]"]
            for setting in section.settings {
                if let value = setting.value(configuration) {
                    lines.append("\(setting.key) = \(value.toml)")
                } else {
                    lines.append(setting.unset?(configuration, environment) ?? "# \(setting.key) is not set")
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - Schema

    /// A setting's value as the file holds it.
    enum SettingValue: Sendable, Equatable {
        case string(String)
        case strings([String])
        case int(Int)
        case double(Double)
        case bool(Bool)

        /// The value as TOML text.
        var toml: String {
            switch self {
            case .string(let text): tomlString(text)
            case .strings(let texts): tomlArray(texts)
            case .int(let n): "\(n)"
            case .double(let x): tomlFloat(x)
            case .bool(let b): "\(b)"
            }
        }
    }

    /// A key of a section: how its value is read from a configuration, and how the file's value
    /// lands in one.
    struct Setting: Sendable {
        var key: String
        /// The setting's value in a configuration; nil when it is not set (only the optional
        /// settings are ever unset).
        var value: @Sendable (DaemonConfiguration) -> SettingValue?
        var apply: @Sendable (Value, inout DaemonConfiguration) throws(ConfigurationError.Issue) -> Void
        /// The comment `render` writes in the setting's place when it is not set (`# KEY is not
        /// set` when nil).
        var unset: (@Sendable (DaemonConfiguration, _ environment: [String: String]) -> String)?

        init(
            key: String,
            value: @escaping @Sendable (DaemonConfiguration) -> SettingValue?,
            unset: (@Sendable (DaemonConfiguration, _ environment: [String: String]) -> String)? = nil,
            apply: @escaping @Sendable (Value, inout DaemonConfiguration) throws(ConfigurationError.Issue) -> Void
        ) {
            self.key = key
            self.value = value
            self.unset = unset
            self.apply = apply
        }

        // The settings that are one property of the configuration, read and written through its
        // key path.

        typealias Property<T> = any WritableKeyPath<DaemonConfiguration, T> & Sendable

        init(_ key: String, _ path: Property<Int>) {
            self.init(key: key, value: { .int($0[keyPath: path]) }) { v, c throws(ConfigurationError.Issue) in c[keyPath: path] = try v.int() }
        }

        init(_ key: String, _ path: Property<Double>) {
            self.init(key: key, value: { .double($0[keyPath: path]) }) { v, c throws(ConfigurationError.Issue) in c[keyPath: path] = try v.double() }
        }

        init(_ key: String, _ path: Property<Bool>) {
            self.init(key: key, value: { .bool($0[keyPath: path]) }) { v, c throws(ConfigurationError.Issue) in c[keyPath: path] = try v.bool() }
        }

        init(_ key: String, _ path: Property<String>) {
            self.init(key: key, value: { .string($0[keyPath: path]) }) { v, c throws(ConfigurationError.Issue) in c[keyPath: path] = try v.string() }
        }

        init(_ key: String, _ path: Property<[String]>) {
            self.init(key: key, value: { .strings($0[keyPath: path]) }) { v, c throws(ConfigurationError.Issue) in c[keyPath: path] = try v.strings() }
        }

        /// An optional string: not set when nil. `render` then writes `# KEY is not set` followed
        /// by `meaning`.
        init(_ key: String, _ path: Property<String?>, unset meaning: String = "") {
            self.init(key: key, value: { $0[keyPath: path].map(SettingValue.string) }, unset: { _, _ in "# \(key) is not set" + meaning }) {
                v, c throws(ConfigurationError.Issue) in c[keyPath: path] = try v.string()
            }
        }

        /// One of the cases of `T`, by name.
        init<T: RawRepresentable<String> & CaseIterable & Sendable>(_ key: String, _ path: Property<T>) {
            self.init(key: key, value: { .string($0[keyPath: path].rawValue) }) { v, c throws(ConfigurationError.Issue) in
                c[keyPath: path] = try v.choice(T.allCases.map { ($0.rawValue, $0) })
            }
        }
    }

    enum Schema {
        static let sections: [(name: String, settings: [Setting])] = [
            ("input", [
                Setting("subscribe", \.subscribe),
                Setting("topics", \.topics),
                Setting("max_message_bytes", \.maxMessageBytes),
                Setting("max_inputs", \.maxInputs),
                Setting("shard", \.shard, unset: ": every stream is taken"),
                Setting("max_clock_skew", \.maxClockSkew),
                Setting("clock_reset_after", \.clockResetAfter),
            ]),
            ("output", [
                Setting("publish", \.publish),
                Setting("topic_prefix", \.forecastTopicPrefix),
                Setting("subscriber_hwm", \.subscriberHighWaterMark),
            ]),
            ("model", [
                Setting("cell", \.model.cell),
                Setting("hidden", \.model.hidden),
                Setting("window", \.model.window),
                Setting("update_every", \.model.updateEvery),
                Setting("horizon", \.model.horizon),
                Setting(key: "optimizer", value: { .string(OptimizerName($0.model.optimizer).rawValue) }) {
                    v, c throws(ConfigurationError.Issue) in
                    c.model.optimizer = try v.choice(OptimizerName.allCases.map { ($0.rawValue, $0.kind) })
                },
                Setting("lr", \.model.learningRate),
                Setting("clip", \.model.clipThreshold),
                Setting("clip_mode", \.model.clipMode),
                // ``DaemonConfiguration/problems()`` refuses a seed above Int64.max (the largest TOML
                // integer) before anything is printed or reloaded.
                Setting(key: "seed", value: { .int(Int(clamping: $0.model.seed)) }) {
                    v, c throws(ConfigurationError.Issue) in
                    let seed = try v.int()
                    guard seed >= 0 else { throw v.invalid("expected an integer of 0 or more, found \(seed)") }
                    c.model.seed = UInt64(seed)
                },
                Setting(key: "loss", value: { .string($0.model.loss == .squared ? "squared" : "huber") }) {
                    v, c throws(ConfigurationError.Issue) in
                    let huber = try v.choice([("squared", false), ("huber", true)])
                    switch (huber, c.model.loss) {
                    case (false, _): c.model.loss = .squared
                    case (true, .huber): break
                    case (true, .squared): c.model.loss = .huber(delta: 1)
                    }
                },
                // After `loss`: the threshold of the Huber loss, read only when the loss is Huber
                // (and 1, its default, with the squared loss).
                Setting(key: "huber_delta", value: { if case .huber(let delta) = $0.model.loss { .double(delta) } else { .double(1) } }) {
                    v, c throws(ConfigurationError.Issue) in
                    let delta = try v.double()
                    if case .huber = c.model.loss { c.model.loss = .huber(delta: delta) }
                },
                Setting(key: "elman_activation", value: { .string($0.model.elmanActivation.rawValue) }) {
                    v, c throws(ConfigurationError.Issue) in
                    c.model.elmanActivation = try v.choice(Activation.elmanChoices.map { ($0.rawValue, $0) })
                },
                // 1 is no forgetting, which the configuration holds as nil.
                Setting(key: "normalization_forgetting", value: { .double($0.normalizationForgetting ?? 1) }) {
                    v, c throws(ConfigurationError.Issue) in
                    let forgetting = try v.double()
                    c.normalizationForgetting = forgetting == 1 ? nil : forgetting
                },
                Setting("formulation", \.model.formulation),
                Setting("calendar", \.model.calendar),
                Setting("ensemble", \.model.ensemble),
                Setting("linear_lags", \.model.linearLags),
                // Not set, the look-back follows the horizon (`ModelConfiguration.effectiveDirectLookback`).
                Setting(
                    key: "direct_lookback", value: { $0.model.directLookback.map(SettingValue.int) },
                    unset: { c, _ in
                        let lookback = c.model.effectiveDirectLookback
                        return "# direct_lookback is not set: at horizon \(c.model.horizon), "
                            + (lookback > 0 ? "a look-back of \(lookback) samples" : "no direct expert")
                    }
                ) { v, c throws(ConfigurationError.Issue) in c.model.directLookback = try v.int() },
                Setting(
                    key: "experts", value: { $0.model.experts.map { .strings($0.map(\.name)) } },
                    unset: { _, _ in "# experts is not set: the forecast combines every expert that is on" }
                ) { v, c throws(ConfigurationError.Issue) in
                    c.model.experts = try v.choices(Expert.allCases.map { ($0.name, $0) })
                },
                Setting("coverage", \.model.coverage),
                Setting("drift", \.model.drift),
            ]),
            ("daemon", [
                Setting(
                    key: "state_directory", value: { $0.stateDirectory.map(SettingValue.string) },
                    unset: { c, environment in
                        "# state_directory is not set; it resolves to \(tomlString(c.resolvedStateDirectory(environment: environment)))"
                    }
                ) { v, c throws(ConfigurationError.Issue) in c.stateDirectory = try v.string() },
                Setting("workers", \.workers),
                Setting("max_streams", \.maxStreams),
                Setting("queue_capacity", \.queueCapacity),
                Setting("checkpoint_interval", \.checkpointInterval),
                Setting(
                    key: "checkpoint_max_age", value: { $0.checkpointMaxAge.map(SettingValue.double) },
                    unset: { c, _ in
                        "# checkpoint_max_age is not set: three checkpoint intervals, \(tomlFloat(c.resolvedCheckpointMaxAge))"
                    }
                ) { v, c throws(ConfigurationError.Issue) in c.checkpointMaxAge = try v.double() },
                Setting("stop_timeout", \.stopTimeout),
                Setting(key: "on_model_change", value: { .string($0.onModelChange.rawValue) }) { v, c throws(ConfigurationError.Issue) in
                    c.onModelChange = try v.choice(ModelChangePolicy.allCases.map { ($0.rawValue, $0) })
                },
                Setting("set_aside_days", \.setAsideDays),
                Setting("set_aside_per_stream", \.setAsidePerStream),
                Setting("quiet_after", \.quietAfter),
                Setting("idle_unload", \.idleUnload),
                Setting("log_level", \.logLevel),
            ]),
            ("metrics", [
                Setting("listen", \.metricsListen, unset: ": no metrics are served"),
                Setting("stream_labels", \.metricsStreamLabels),
            ]),
            ("security", [
                Setting("curve_secret_key_file", \.curveSecretKeyFile, unset: ": no CURVE, every peer may connect (docs/security.md)"),
                Setting("curve_allowed_clients", \.curveAllowedClients),
            ]),
        ]

        /// Every setting with its full key, `section.key`.
        static var keyedSettings: [(key: String, setting: Setting)] {
            sections.flatMap { section in section.settings.map { (section.name + "." + $0.key, $0) } }
        }
    }

    /// A value of the file with its full key, read as the type its setting needs.
    struct Value {
        var node: any TOMLValueConvertible
        var key: String

        func wrongType(_ expected: String) -> ConfigurationError.Issue {
            .init(kind: .wrongType, key: key, message: "expected \(expected), found \(describe(node))")
        }

        func invalid(_ message: String) -> ConfigurationError.Issue {
            .init(kind: .invalidValue, key: key, message: message)
        }

        func int() throws(ConfigurationError.Issue) -> Int {
            guard let int = node.int else { throw wrongType("an integer") }
            return int
        }

        /// A float; an integer is taken as the same number.
        func double() throws(ConfigurationError.Issue) -> Double {
            if let double = node.double { return double }
            if let int = node.int { return Double(int) }
            throw wrongType("a number")
        }

        func bool() throws(ConfigurationError.Issue) -> Bool {
            guard let bool = node.bool else { throw wrongType("true or false") }
            return bool
        }

        func string() throws(ConfigurationError.Issue) -> String {
            guard let string = node.string else { throw wrongType("a string") }
            return string
        }

        func strings() throws(ConfigurationError.Issue) -> [String] {
            guard let array = node.array else { throw wrongType("an array of strings") }
            var strings: [String] = []
            for (index, element) in array.enumerated() {
                guard let string = element.string else {
                    throw ConfigurationError.Issue(
                        kind: .wrongType, key: key,
                        message: "expected an array of strings, found \(describe(element)) at index \(index)")
                }
                strings.append(string)
            }
            return strings
        }

        /// One of the named choices.
        func choice<T>(_ choices: [(String, T)]) throws(ConfigurationError.Issue) -> T {
            let names = choices.map { "\"\($0.0)\"" }.joined(separator: ", ")
            let name = try string()
            guard let match = choices.first(where: { $0.0 == name }) else {
                throw invalid("expected one of \(names), found \"\(name)\"")
            }
            return match.1
        }

        /// An array of the named choices.
        func choices<T>(_ choices: [(String, T)]) throws(ConfigurationError.Issue) -> [T] {
            var found: [T] = []
            for (index, name) in try strings().enumerated() {
                guard let match = choices.first(where: { $0.0 == name }) else {
                    let names = choices.map { "\"\($0.0)\"" }.joined(separator: ", ")
                    throw invalid("expected names among \(names), found \"\(name)\" at index \(index)")
                }
                found.append(match.1)
            }
            return found
        }
    }

    // MARK: - Helpers

    static func unknownKey(_ key: String, in section: String) -> ConfigurationError.Issue {
        var message = "unknown key in [\(section)]"
        let keys = Schema.sections.first { $0.name == section }?.settings.map(\.key) ?? []
        if let home = Schema.sections.first(where: { $0.name != section && $0.settings.contains { $0.key == key } }) {
            message += "; it belongs in [\(home.name)]"
        } else if let close = closest(to: key, among: keys) {
            message += "; did you mean \(close)?"
        } else {
            message += "; the keys of [\(section)] are " + keys.joined(separator: ", ")
        }
        return .init(kind: .unknownKey, key: section + "." + key, message: message)
    }

    /// "a string (\"64\")", "an integer (64)", "a table", ... for error messages.
    static func describe(_ node: any TOMLValueConvertible) -> String {
        switch node.type {
        case .string: "a string (\(tomlString(node.string ?? "")))"
        case .int: "an integer (\(node.int.map(String.init) ?? ""))"
        case .double: "a float (\(node.double.map(tomlFloat) ?? ""))"
        case .bool: "a boolean (\(node.bool.map(String.init) ?? ""))"
        case .array: "an array"
        case .table: "a table"
        case .date: "a date"
        case .time: "a time"
        case .dateTime: "a date-time"
        }
    }

    /// A TOML basic string.
    static func tomlString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func tomlArray(_ strings: [String]) -> String {
        "[" + strings.map(tomlString).joined(separator: ", ") + "]"
    }

    /// A TOML float that reads back to the same Double (Swift's shortest round-trip form, which
    /// TOML's grammar accepts: `0.001`, `1.0`, `1e-05`, `inf`, `nan`).
    static func tomlFloat(_ x: Double) -> String { "\(x)" }

    /// The file's text; refuses what is not a readable regular file of UTF-8 under ``maxBytes``.
    static func readFile(_ path: String) throws(ConfigurationError.Issue) -> String {
        func unreadable(_ reason: String) -> ConfigurationError.Issue {
            .init(kind: .unreadable, key: nil, message: "cannot read the configuration file: " + reason)
        }
        let bytes: [UInt8]
        do { bytes = try FileContents.read(path, limit: maxBytes) } catch { throw unreadable(error.reason) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw unreadable("it is not UTF-8 text")
        }
        return text
    }
}

extension DaemonConfiguration {
    /// The configuration of `rnnd run`: `defaults`, then the file at `file` when given, then
    /// `flags` (which sets only the values given on the command line).
    ///
    /// Throws when anything is wrong, before anything starts: a file that cannot be used, or a
    /// result with ``problems()``. A problem the file had on its own is the file's (exit 78);
    /// one that only the flags brought is theirs (exit 64).
    public static func resolve(
        file: String?,
        defaults: DaemonConfiguration = DaemonConfiguration(),
        flags: (inout DaemonConfiguration) -> Void
    ) throws(ConfigurationError) -> DaemonConfiguration {
        var configuration = defaults
        var fileIssues: [ConfigurationError.Issue] = []
        if let file {
            configuration = try ConfigurationFile.load(path: file, over: defaults)
            fileIssues = configuration.issues()
        }
        flags(&configuration)
        configuration.model.fitToHorizon()
        let issues = configuration.issues()
        if issues.isEmpty { return configuration }
        if let file, issues.contains(where: fileIssues.contains) {
            throw ConfigurationError(origin: .file(file), issues: issues)
        }
        throw ConfigurationError(origin: .flags, issues: issues)
    }
}

