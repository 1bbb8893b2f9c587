import Logging
import RNNCore
import RNNMetrics
import Synchronization

// What the main thread does while the daemon runs (docs/operations.md, "Running under
// systemd"): watch that every thread makes progress and keep systemd's watchdog fed only while
// they do, report a status line, and apply a reloaded configuration on SIGHUP.

/// The settings SIGHUP can change while the daemon runs; the threads pick them up between
/// batches, when `generation` has moved.
struct RuntimeSettings: Sendable, Equatable {
    var learningRate: Double
    var clipThreshold: Double
    var topics: [String]

    init(_ c: DaemonConfiguration) {
        learningRate = c.model.learningRate
        clipThreshold = c.model.clipThreshold
        topics = c.topics
    }
}

final class RuntimeBox: Sendable {
    private let settings: Mutex<RuntimeSettings>
    /// Bumped at every change: a thread compares it with the one it applied.
    let generation = Atomic<Int>(0)

    init(_ settings: RuntimeSettings) { self.settings = Mutex(settings) }

    var current: RuntimeSettings { settings.withLock { $0 } }

    func update(_ new: RuntimeSettings) {
        settings.withLock { $0 = new }
        generation.add(1, ordering: .releasing)
    }
}

extension DaemonConfiguration {
    /// Keys whose new value a running daemon applies on SIGHUP.
    static let reloadableKeys: Set<String> = ["model.lr", "model.clip", "input.topics", "daemon.log_level"]

    /// The settings that differ from `new`, as `section.key: old → new` (values as TOML writes
    /// them, `unset` for a setting that was not set), split into what a reload applies and what
    /// needs a restart; each sorted by key.
    func reloadChanges(to new: DaemonConfiguration) -> (applied: [String], needRestart: [String]) {
        var applied: [String] = [], needRestart: [String] = []
        for (key, setting) in ConfigurationFile.Schema.keyedSettings.sorted(by: { $0.key < $1.key }) {
            let before = setting.value(self)
            let after = setting.value(new)
            guard after != before else { continue }
            let line = "\(key): \(before?.toml ?? "unset") → \(after?.toml ?? "unset")"
            if Self.reloadableKeys.contains(key) { applied.append(line) } else { needRestart.append(line) }
        }
        return (applied, needRestart)
    }
}

/// Which threads made progress lately: each beats its counter every turn of its loop (every
/// batch, and at least every half second when idle), and the main thread notices one that stops.
struct ProgressWatch {
    private var last: [Int]
    private var changed: [ContinuousClock.Instant]

    init(threads: Int) {
        last = Array(repeating: -1, count: threads)
        changed = Array(repeating: .now, count: threads)
    }

    /// The threads whose counter has not moved for longer than `limit`.
    mutating func stalled(_ beats: AtomicCounters, limit: Duration) -> [Int] {
        let now = ContinuousClock.now
        var found: [Int] = []
        for i in 0..<last.count {
            let v = beats[i]
            if v != last[i] {
                last[i] = v
                changed[i] = now
            } else if now - changed[i] > limit {
                found.append(i)
            }
        }
        return found
    }
}

/// A log handler whose level lives in a box shared by every logger made from it, so that a
/// reload changes the level of every thread's logger at once.
public struct SharedLevelLogHandler: LogHandler {
    final class LevelBox: Sendable {
        let raw: Atomic<Int>
        init(_ level: Logger.Level) { raw = Atomic(Logger.Level.allCases.firstIndex(of: level)!) }
    }

    private var inner: any LogHandler
    private let box: LevelBox

    /// Wraps `inner`, all of them sharing one level (what `logLevel` sets).
    public static func bootstrap(_ make: @escaping @Sendable (String) -> any LogHandler) {
        let box = LevelBox(.info)
        LoggingSystem.bootstrap { label in SharedLevelLogHandler(inner: make(label), box: box) }
    }

    init(inner: any LogHandler, box: LevelBox) {
        self.inner = inner
        self.box = box
        self.inner.logLevel = .trace  // the box decides
    }

    public var logLevel: Logger.Level {
        get { Logger.Level.allCases[box.raw.load(ordering: .relaxed)] }
        nonmutating set { box.raw.store(Logger.Level.allCases.firstIndex(of: newValue)!, ordering: .relaxed) }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        inner.log(event: event)
    }
}
