import Synchronization

/// Why a checkpoint attempt failed: the `reason` of `rnnd_checkpoints_failed_total`, a bounded set
/// (every value exists from the start, at 0).
package enum CheckpointFailureReason: String, CaseIterable, Sendable {
    /// The file system of the state directory is full.
    case diskFull = "disk_full"
    /// The operating system reported an I/O error (a file-size limit among them).
    case ioError = "io_error"
    /// The store's files cannot be written.
    case readOnly = "read_only"
    /// Another process holds the database.
    case busy
    /// The database file is damaged.
    case corrupt
    /// A worker sent nothing for 10 s in the middle of its walk.
    case workersSilent = "workers_silent"
    /// Anything else; the log and `/healthz` say what.
    case other
}

/// The checkpoints that failed: the checkpoint thread reports every failed attempt and every
/// commit; the main thread reads the run of failures for `/healthz` and the status line, the
/// metrics server the counts. Written once per attempt, so a mutex costs nothing.
package final class CheckpointFailures: Sendable {
    /// The failed attempts since the last commit.
    package struct Run: Equatable, Sendable {
        /// Unix time of the first of them.
        package var since: Double
        package var attempts: Int
        /// The latest attempt's reason and error, as SQLite or the daemon said it.
        package var reason: CheckpointFailureReason
        package var error: String
    }

    private struct State {
        var run: Run?
        var counts: [CheckpointFailureReason: Int] = [:]
    }

    private let state = Mutex(State())

    package init() {}

    /// An attempt failed at `time` (Unix seconds).
    package func failed(_ reason: CheckpointFailureReason, error: String, at time: Double) {
        state.withLock {
            $0.counts[reason, default: 0] += 1
            if $0.run == nil {
                $0.run = Run(since: time, attempts: 1, reason: reason, error: error)
            } else {
                $0.run!.attempts += 1
                $0.run!.reason = reason
                $0.run!.error = error
            }
        }
    }

    /// An attempt committed: the run of failures, if any, is over. Returns it.
    @discardableResult
    package func committed() -> Run? {
        state.withLock { state in
            defer { state.run = nil }
            return state.run
        }
    }

    /// The failures since the last commit; nil when the latest attempt committed (or none failed).
    package var run: Run? { state.withLock { $0.run } }

    /// Failed attempts since the start, by reason.
    package var counts: [CheckpointFailureReason: Int] { state.withLock { $0.counts } }
}
