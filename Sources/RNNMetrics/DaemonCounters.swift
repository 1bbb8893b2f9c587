import RNNWire
import Synchronization

/// The daemon's counters, written by its threads and read for logs, status and metrics.
/// Hot counters are atomics; refusals, rare by nature, sit behind a mutex keyed by reason.
public final class DaemonCounters: Sendable {
    /// Messages read from the SUB socket.
    public let received = Atomic<Int>(0)
    /// Samples a model learned from (and forecast for).
    public let accepted = Atomic<Int>(0)
    /// Forecasts published.
    public let forecasts = Atomic<Int>(0)
    /// Weight updates, and updates skipped for a non-finite loss or gradient.
    public let updates = Atomic<Int>(0)
    public let skippedUpdates = Atomic<Int>(0)
    /// Error regime changes detected (the drift policy applied), over every stream.
    public let drifts = Atomic<Int>(0)
    /// Samples with an input the outlier gate held back, level shifts it adopted, and new segments
    /// (gaps, clocks set back) started, over every stream (docs/numerics.md).
    public let outliers = Atomic<Int>(0)
    public let levelShifts = Atomic<Int>(0)
    public let segments = Atomic<Int>(0)
    /// Missing values of accepted samples, carried forward from their channel's previous value
    /// (RNNWire's `ChannelWatch`), over every stream and channel.
    public let missingValues = Atomic<Int>(0)
    /// Channels stuck now (in the streams in memory), and stuck episodes begun, over every stream.
    public let stuckChannels = Atomic<Int>(0)
    public let stuckEpisodes = Atomic<Int>(0)
    /// Clocks set back that streams accepted (`clock_reset_after` consecutive out-of-order
    /// samples in increasing time order), over every stream.
    public let clockResets = Atomic<Int>(0)
    /// Streams with a model in memory.
    public let streams = Atomic<Int>(0)
    /// Of those, the ones without a sample for `quiet_after` seconds, as the workers last counted.
    public let quietStreams = Atomic<Int>(0)
    /// The bytes of the parked records (streams unloaded with changes that no checkpoint holds
    /// yet), over every worker, as the workers last counted.
    public let parkedBytes = Atomic<Int>(0)
    /// Streams unloaded from memory (their state saved), after `idle_unload` seconds without a
    /// sample or to make room past `max_streams`; and streams loaded again on a new sample.
    public let unloadedIdle = Atomic<Int>(0)
    public let unloadedForRoom = Atomic<Int>(0)
    public let reloaded = Atomic<Int>(0)
    /// Checkpoints committed, and the Unix time (seconds) of the latest. The failed ones are
    /// counted by reason in ``CheckpointFailures``.
    public let checkpoints = Atomic<Int>(0)
    public let lastCheckpoint = Atomic<Int>(0)
    /// Samples of streams another shard owns (`other_shard`): with N shards, most of what a
    /// sharded instance receives, so an atomic rather than the mutex of the rarer reasons.
    public let otherShard = Atomic<Int>(0)
    /// CURVE (docs/security.md): connection attempts the ZAP handler refused, their client's
    /// key not being allowed (`curve_rejected`), and handshakes that failed before ZAP was
    /// asked: no CURVE, another server key, a malformed handshake (`curve_handshake_failed`).
    /// Connections, not messages: a refused client's messages are never received, so they are
    /// not among the refusals by reason, which count messages.
    public let curveRejected = Atomic<Int>(0)
    public let curveHandshakeFailed = Atomic<Int>(0)
    private let refusals = Mutex<[String: Int]>([:])

    /// The names of the CURVE counters in the log.
    public static let curveRejectedReason = "curve_rejected"
    public static let curveHandshakeFailedReason = "curve_handshake_failed"

    public init() {}

    /// Counts `count` refused or dropped messages under `reason`.
    public func refuse(_ reason: String, count: Int = 1) {
        refusals.withLock { $0[reason, default: 0] += count }
    }

    /// Refusals and drops so far, by reason (`other_shard` included once there is one).
    public var refusalsByReason: [String: Int] {
        var all = refusals.withLock { $0 }
        let other = otherShard.load(ordering: .relaxed)
        if other > 0 { all[StreamShard.otherShardReason] = other }
        return all
    }

    /// Samples refused or dropped, leaving out those of other shards: the ones to worry about.
    public var refusedOrDropped: Int {
        refusals.withLock { $0.values.reduce(0, +) }
    }
}

/// Reasons a message was dropped after it was decoded, for lack of room.
public enum DropReason: String, CaseIterable, Sendable {
    /// The worker's queue was full: learning could not keep up.
    case workerQueueFull = "worker_queue_full"
    /// The publisher's queue was full: the forecast was not published (the model learned).
    /// (A subscriber that reads too slowly misses forecasts too, past its queue in the forecasts
    /// socket, but libzmq drops those without a word, so they are not counted here.)
    case forecastQueueFull = "forecast_queue_full"
}
