import Foundation
import Synchronization

/// What `/healthz` answers and `rnnd_thread_stalled` shows: the main thread sets it from the same
/// `ProgressWatch` that feeds systemd's watchdog, and from the checkpoints' failures, every turn
/// of its loop (5 times a second); the metrics server reads it.
package final class DaemonHealth: Sendable {
    package enum State: Equatable, Sendable {
        /// Restoring the state, binding the sockets, starting the threads.
        case starting
        /// Every thread makes progress.
        case ready
        /// These threads (their names) made no progress for `limit`.
        case stalled([String], limit: Duration)
        /// Checkpoints fail, and the last commit (Unix time; nil: none since the start) is older
        /// than `limit` (`checkpoint_max_age`). The threads make progress: the daemon forecasts.
        case checkpointsFailing(CheckpointFailures.Run, lastCommit: Double?, limit: Duration)
        /// SIGINT or SIGTERM arrived: finishing the samples in flight, then the last checkpoint.
        case stopping
    }

    private let state = Mutex(State.starting)

    package init() {}

    package var current: State { state.withLock { $0 } }

    package func set(_ new: State) {
        state.withLock { if $0 != new { $0 = new } }
    }

    /// Healthy only when ready; the text says why not (which thread is stuck, why checkpoints
    /// fail), for `/healthz`.
    package var check: (healthy: Bool, text: String) { Self.check(current) }

    /// What `/healthz` says in `state`.
    package static func text(of state: State) -> String { check(state).text }

    private static func check(_ state: State) -> (healthy: Bool, text: String) {
        switch state {
        case .ready: (true, "ok: every thread is making progress")
        case .starting: (false, "starting: restoring the state and binding the sockets")
        case .stopping: (false, "stopping: finishing the samples in flight and the last checkpoint")
        case .stalled(let threads, let limit): (false, "stalled: \(threads.joined(separator: ", ")) made no progress for \(limit)")
        case .checkpointsFailing(let run, let lastCommit, let limit):
            (false, "checkpoints failing since \(Date(timeIntervalSince1970: run.since).formatted(.iso8601)) "
                + "(\(run.attempts) attempt\(run.attempts == 1 ? "" : "s"); "
                + (lastCommit.map { "the last commit \(Int(max(0, Date().timeIntervalSince1970 - $0))) s ago" } ?? "none committed since the start")
                + ", the limit \(limit)): \(run.reason.rawValue): \(run.error)")
        }
    }
}
