import Synchronization

/// What `/healthz` answers and `rnnd_thread_stalled` shows: the main thread sets it from the same
/// `ProgressWatch` that feeds systemd's watchdog, every turn of its loop (5 times a second); the
/// metrics server reads it.
package final class DaemonHealth: Sendable {
    package enum State: Equatable, Sendable {
        /// Restoring the state, binding the sockets, starting the threads.
        case starting
        /// Every thread makes progress.
        case ready
        /// These threads (their names) made no progress for `limit`.
        case stalled([String], limit: Duration)
        /// SIGINT or SIGTERM arrived: finishing the samples in flight, then the last checkpoint.
        case stopping
    }

    private let state = Mutex(State.starting)

    package init() {}

    package var current: State { state.withLock { $0 } }

    package func set(_ new: State) {
        state.withLock { if $0 != new { $0 = new } }
    }

    /// Healthy only when ready; the text says why not (which thread is stuck), for `/healthz`.
    package var check: (healthy: Bool, text: String) {
        switch current {
        case .ready: (true, "ok: every thread is making progress")
        case .starting: (false, "starting: restoring the state and binding the sockets")
        case .stopping: (false, "stopping: finishing the samples in flight and the last checkpoint")
        case .stalled(let threads, let limit): (false, "stalled: \(threads.joined(separator: ", ")) made no progress for \(limit)")
        }
    }
}
