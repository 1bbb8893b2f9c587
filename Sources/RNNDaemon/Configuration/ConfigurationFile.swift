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
///
/// [output]
/// publish = "@tcp://127.0.0.1:5557"
/// topic_prefix = ""
///
/// [model]
/// cell = "lstm"            # lstm, gru, elman
/// hidden = 64
/// window = 32              # k2
/// update_every = 1         # k1
/// horizon = 1
/// optimizer = "adam"       # adam, sgd, momentum
/// lr = 0.001
/// clip = 1.0
/// clip_mode = "norm"       # norm, value, step, none
/// seed = 0
/// loss = "squared"         # squared, huber
/// huber_delta = 1.0        # read when loss = "huber"
/// elman_activation = "tanh"
/// normalization_forgetting = 1.0   # (0, 1]; 1 is no forgetting
/// formulation = "change"   # change, level
/// calendar = true          # time of day and of week as inputs (samples with a time)
/// ensemble = true          # combine with persistence and the linear model
/// linear_lags = 4          # 0: no linear model
/// coverage = 0.9           # prediction bands; 0: none (and no anomaly score)
/// drift = true             # detect error regime changes and re-adapt
///
/// [daemon]
/// state_directory = "/var/lib/rnnd"
/// workers = 2
/// max_streams = 10000
/// queue_capacity = 10000
/// checkpoint_interval = 60.0
/// on_model_change = "refuse"   # stored streams of another model shape: refuse, keep, fresh
/// set_aside_days = 30.0        # records set aside are deleted at start-up after this; 0: never
/// set_aside_per_stream = 3     # and beyond the newest 3 of a stream; 0: no limit
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

    /// The configuration as a TOML file that ``parse(_:file:over:)`` reads back to the same value.
    /// An unset state directory is left out, with the one it resolves to (from `environment`) in
    /// a comment. Optimizers are written by name (`adam`, `sgd`, `momentum`), with the defaults
    /// that name stands for.
    public static func render(_ configuration: DaemonConfiguration, environment: [String: String]) -> String {
        let c = configuration
        let model = c.model
        var lines = [
            "# rnnd run configuration (docs/configuration.md): defaults < this file < flags.",
            "",
            "[input]",
            "subscribe = \(tomlArray(c.subscribe))",
            "topics = \(tomlArray(c.topics))",
            "max_message_bytes = \(c.maxMessageBytes)",
            "max_inputs = \(c.maxInputs)",
            c.shard.map { "shard = \(tomlString($0))" } ?? "# shard is not set: every stream is taken",
            "",
            "[output]",
            "publish = \(tomlString(c.publish))",
            "topic_prefix = \(tomlString(c.forecastTopicPrefix))",
            "",
            "[model]",
            "cell = \(tomlString(model.cell.rawValue))",
            "hidden = \(model.hidden)",
            "window = \(model.window)",
            "update_every = \(model.updateEvery)",
            "horizon = \(model.horizon)",
            "optimizer = \(tomlString(OptimizerName(model.optimizer).rawValue))",
            "lr = \(tomlFloat(model.learningRate))",
            "clip = \(tomlFloat(model.clipThreshold))",
            "clip_mode = \(tomlString(model.clipMode.rawValue))",
            "seed = \(model.seed)",
        ]
        switch model.loss {
        case .squared:
            lines += ["loss = \"squared\"", "huber_delta = 1.0"]
        case .huber(let delta):
            lines += ["loss = \"huber\"", "huber_delta = \(tomlFloat(delta))"]
        }
        lines.append("elman_activation = \(tomlString(model.elmanActivation.rawValue))")
        if let forgetting = c.normalizationForgetting {
            lines.append("normalization_forgetting = \(tomlFloat(forgetting))")
        } else {
            lines.append("normalization_forgetting = 1.0  # no forgetting")
        }
        lines += [
            "formulation = \(tomlString(model.formulation.rawValue))",
            "calendar = \(model.calendar)",
            "ensemble = \(model.ensemble)",
            "linear_lags = \(model.linearLags)",
            "coverage = \(tomlFloat(model.coverage))",
            "drift = \(model.drift)",
        ]
        lines += ["", "[daemon]"]
        if let directory = c.stateDirectory {
            lines.append("state_directory = \(tomlString(directory))")
        } else {
            let resolved = c.resolvedStateDirectory(environment: environment)
            lines.append("# state_directory is not set; it resolves to \(tomlString(resolved))")
        }
        lines += [
            "workers = \(c.workers)",
            "max_streams = \(c.maxStreams)",
            "queue_capacity = \(c.queueCapacity)",
            "checkpoint_interval = \(tomlFloat(c.checkpointInterval))",
            "on_model_change = \(tomlString(c.onModelChange.rawValue))",
            "set_aside_days = \(tomlFloat(c.setAsideDays))",
            "set_aside_per_stream = \(c.setAsidePerStream)",
            "log_level = \(tomlString(c.logLevel))",
            "",
            "[metrics]",
            c.metricsListen.map { "listen = \(tomlString($0))" } ?? "# listen is not set: no metrics are served",
            "stream_labels = \(c.metricsStreamLabels)",
            "",
            "[security]",
            c.curveSecretKeyFile.map { "curve_secret_key_file = \(tomlString($0))" }
                ?? "# curve_secret_key_file is not set: no CURVE, every peer may connect (docs/security.md)",
            c.curveAllowedClients.map { "curve_allowed_clients = \(tomlString($0))" } ?? "# curve_allowed_clients is not set",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - Schema

    /// A key of a section and how its value lands in the configuration.
    struct Setting: Sendable {
        var key: String
        var apply: @Sendable (Value, inout DaemonConfiguration) throws(ConfigurationError.Issue) -> Void
    }

    enum Schema {
        static let sections: [(name: String, settings: [Setting])] = [
            ("input", [
                Setting(key: "subscribe") { v, c throws(ConfigurationError.Issue) in c.subscribe = try v.strings() },
                Setting(key: "topics") { v, c throws(ConfigurationError.Issue) in c.topics = try v.strings() },
                Setting(key: "max_message_bytes") { v, c throws(ConfigurationError.Issue) in c.maxMessageBytes = try v.int() },
                Setting(key: "max_inputs") { v, c throws(ConfigurationError.Issue) in c.maxInputs = try v.int() },
                Setting(key: "shard") { v, c throws(ConfigurationError.Issue) in c.shard = try v.string() },
            ]),
            ("output", [
                Setting(key: "publish") { v, c throws(ConfigurationError.Issue) in c.publish = try v.string() },
                Setting(key: "topic_prefix") { v, c throws(ConfigurationError.Issue) in c.forecastTopicPrefix = try v.string() },
            ]),
            ("model", [
                Setting(key: "cell") { v, c throws(ConfigurationError.Issue) in
                    c.model.cell = try v.choice(CellKind.allCases.map { ($0.rawValue, $0) })
                },
                Setting(key: "hidden") { v, c throws(ConfigurationError.Issue) in c.model.hidden = try v.int() },
                Setting(key: "window") { v, c throws(ConfigurationError.Issue) in c.model.window = try v.int() },
                Setting(key: "update_every") { v, c throws(ConfigurationError.Issue) in c.model.updateEvery = try v.int() },
                Setting(key: "horizon") { v, c throws(ConfigurationError.Issue) in c.model.horizon = try v.int() },
                Setting(key: "optimizer") { v, c throws(ConfigurationError.Issue) in
                    c.model.optimizer = try v.choice(OptimizerName.allCases.map { ($0.rawValue, $0.kind) })
                },
                Setting(key: "lr") { v, c throws(ConfigurationError.Issue) in c.model.learningRate = try v.double() },
                Setting(key: "clip") { v, c throws(ConfigurationError.Issue) in c.model.clipThreshold = try v.double() },
                Setting(key: "clip_mode") { v, c throws(ConfigurationError.Issue) in
                    c.model.clipMode = try v.choice(ClipMode.allCases.map { ($0.rawValue, $0) })
                },
                Setting(key: "seed") { v, c throws(ConfigurationError.Issue) in
                    let seed = try v.int()
                    guard seed >= 0 else { throw v.invalid("expected an integer of 0 or more, found \(seed)") }
                    c.model.seed = UInt64(seed)
                },
                Setting(key: "loss") { v, c throws(ConfigurationError.Issue) in
                    let huber = try v.choice([("squared", false), ("huber", true)])
                    switch (huber, c.model.loss) {
                    case (false, _): c.model.loss = .squared
                    case (true, .huber): break
                    case (true, .squared): c.model.loss = .huber(delta: 1)
                    }
                },
                // After `loss`: the threshold of the Huber loss, read only when the loss is Huber.
                Setting(key: "huber_delta") { v, c throws(ConfigurationError.Issue) in
                    let delta = try v.double()
                    if case .huber = c.model.loss { c.model.loss = .huber(delta: delta) }
                },
                Setting(key: "elman_activation") { v, c throws(ConfigurationError.Issue) in
                    c.model.elmanActivation = try v.choice([Activation.tanh, .relu, .sigmoid].map { ($0.rawValue, $0) })
                },
                Setting(key: "normalization_forgetting") { v, c throws(ConfigurationError.Issue) in
                    let forgetting = try v.double()
                    c.normalizationForgetting = forgetting == 1 ? nil : forgetting
                },
                Setting(key: "formulation") { v, c throws(ConfigurationError.Issue) in
                    c.model.formulation = try v.choice(Formulation.allCases.map { ($0.rawValue, $0) })
                },
                Setting(key: "calendar") { v, c throws(ConfigurationError.Issue) in c.model.calendar = try v.bool() },
                Setting(key: "ensemble") { v, c throws(ConfigurationError.Issue) in c.model.ensemble = try v.bool() },
                Setting(key: "linear_lags") { v, c throws(ConfigurationError.Issue) in c.model.linearLags = try v.int() },
                Setting(key: "coverage") { v, c throws(ConfigurationError.Issue) in c.model.coverage = try v.double() },
                Setting(key: "drift") { v, c throws(ConfigurationError.Issue) in c.model.drift = try v.bool() },
            ]),
            ("daemon", [
                Setting(key: "state_directory") { v, c throws(ConfigurationError.Issue) in c.stateDirectory = try v.string() },
                Setting(key: "workers") { v, c throws(ConfigurationError.Issue) in c.workers = try v.int() },
                Setting(key: "max_streams") { v, c throws(ConfigurationError.Issue) in c.maxStreams = try v.int() },
                Setting(key: "queue_capacity") { v, c throws(ConfigurationError.Issue) in c.queueCapacity = try v.int() },
                Setting(key: "checkpoint_interval") { v, c throws(ConfigurationError.Issue) in c.checkpointInterval = try v.double() },
                Setting(key: "on_model_change") { v, c throws(ConfigurationError.Issue) in
                    c.onModelChange = try v.choice(ModelChangePolicy.allCases.map { ($0.rawValue, $0) })
                },
                Setting(key: "set_aside_days") { v, c throws(ConfigurationError.Issue) in c.setAsideDays = try v.double() },
                Setting(key: "set_aside_per_stream") { v, c throws(ConfigurationError.Issue) in c.setAsidePerStream = try v.int() },
                Setting(key: "log_level") { v, c throws(ConfigurationError.Issue) in c.logLevel = try v.string() },
            ]),
            ("metrics", [
                Setting(key: "listen") { v, c throws(ConfigurationError.Issue) in c.metricsListen = try v.string() },
                Setting(key: "stream_labels") { v, c throws(ConfigurationError.Issue) in c.metricsStreamLabels = try v.int() },
            ]),
            ("security", [
                Setting(key: "curve_secret_key_file") { v, c throws(ConfigurationError.Issue) in c.curveSecretKeyFile = try v.string() },
                Setting(key: "curve_allowed_clients") { v, c throws(ConfigurationError.Issue) in c.curveAllowedClients = try v.string() },
            ]),
        ]
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
        let issues = configuration.issues()
        if issues.isEmpty { return configuration }
        if let file, issues.contains(where: fileIssues.contains) {
            throw ConfigurationError(origin: .file(file), issues: issues)
        }
        throw ConfigurationError(origin: .flags, issues: issues)
    }
}

