// `rnnd fit` (docs/checkpoints.md, "Training offline"): a stream's model trained on a CSV file's
// history, written as a stream record that `rnnd run` and `rnnd replay --from` start from. The
// command line is Sources/rnnd/Fit.swift.

import Foundation
import RNNBasics
import RNNCore
import RNNState

/// What `rnnd fit` trained and the record it made.
public struct FitResult: Sendable {
    /// The stream record: the forecaster after the last pass, `seq` the samples of one pass and the
    /// last time of the file's time axis, so a daemon continues the stream after it.
    public var record: StreamRecord
    /// The last pass, scored as a replay scores (forecasts made within that pass).
    public var lastPass: ReplayReport
    public var epochs: Int
    /// Predict-and-learn steps over every pass, and their wall time.
    public var steps: Int
    public var seconds: Double
    /// The network trainer's counters at the end.
    public var counters: TrainerCounters
    public var timeSpan: (first: Double, last: Double)?

    /// What was trained and how well the last pass forecast, for the terminal.
    public func text(output: String, bytes: Int) -> String {
        let r = lastPass
        var lines: [String] = ["rnnd fit: \(r.file)"]
        var shape = "  \(r.fileRows) rows"
        if let timeColumn = r.timeColumn {
            shape += ", time '\(timeColumn)'"
            if let span = timeSpan { shape += " \(Timestamp.iso8601(span.first)) … \(Timestamp.iso8601(span.last))" }
        }
        lines.append(shape)
        lines.append("  inputs: \(r.inputs.joined(separator: ", "))")
        lines.append("  targets: \(r.targets.joined(separator: ", "))")
        lines.append("  model: \(ReplayReport.describe(r.model))")
        var streamed = "  \(r.samples) samples a pass"
        let carried = zip(r.inputs, r.carried).filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }
        if !carried.isEmpty { streamed += "; missing cells carried forward: " + carried.joined(separator: ", ") }
        lines.append(streamed)
        if !r.refused.isEmpty {
            let reasons = r.refused.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.append("  refused as the daemon would: \(reasons)")
        }
        if r.clockResets > 0 { lines.append("  clock set back and accepted as the daemon would: \(r.clockResets) time\(r.clockResets == 1 ? "" : "s")") }
        let rate = seconds > 0 ? Int((Double(steps) / seconds).rounded()) : 0
        var pace = "  \(epochs) pass\(epochs == 1 ? "" : "es"): \(steps) steps in \(format(seconds, 3)) s = \(rate) samples/s"
        pace += "; \(counters.updates) updates"
        if counters.skippedUpdates > 0 { pace += ", \(counters.skippedUpdates) skipped (non-finite)" }
        lines.append(pace)
        lines.append("")
        lines.append("  the last pass:")
        lines += r.figuresTable()
        lines.append("")
        var wrote = "  wrote \(output): stream '\(record.printableID)', seq \(record.seq)"
        if let t = record.lastTimestamp { wrote += ", last t \(Timestamp.iso8601(t))" }
        wrote += ", \(bytes) bytes"
        lines.append(wrote)
        if !record.model.targets.isEmpty {
            lines.append("  note: the targets are not every input; the daemon forecasts every input of a stream, so")
            lines.append("  rnnd run refuses this record (a changed shape). Use it with rnnd replay --from.")
        } else {
            lines.append("  the daemon takes it with these model flags (or the same [model] in its file):")
            lines.append("    " + modelFlags(record.model))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Replayer {
    /// Trains a new model on every sample `epochs` times (predict, then learn, as a replay's
    /// warm-up does: everything carries from pass to pass), scores the last pass, and makes the
    /// record of stream `id`. `progress(done, total)` is called every 256 steps.
    public func fit(id: [UInt8], epochs: Int, savedAt: Double, progress: ((Int, Int) -> Void)? = nil) -> FitResult {
        precondition(epochs >= 1 && settings.warmupRows == 0, "fit: at least one pass, and no warm-up")
        let n = samples.count, total = epochs * n
        let forecaster = Forecaster(configuration: model)
        let clock = ContinuousClock()
        let started = clock.now
        train(forecaster, passes: epochs - 1) { progress?($0, total) }
        let done = (epochs - 1) * n
        let last = run(from: forecaster, progress: { step, _ in progress?(done + step, total) })
        let seconds = Self.seconds(clock.now - started)
        let record = StreamRecord(id: id, forecaster: forecaster, seq: n, lastTimestamp: samples.time.last, savedAt: savedAt)
        return FitResult(
            record: record, lastPass: last, epochs: epochs, steps: total, seconds: seconds,
            counters: forecaster.trainer.counters, timeSpan: timeSpan)
    }
}
