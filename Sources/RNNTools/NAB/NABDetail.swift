// Where a detector's NAB score comes from, window by window and false alarm by false alarm:
// `rnnd-nab score --detail FILE`. The totals are NABScorer.evaluate's; this lists their parts,
// so that a miss can be looked at (how high the window scored, and where) without a scratch
// re-implementation of the scorer.

/// One part of a file's raw score at a threshold: a window's earliest detection, a window missed,
/// or a detection outside every window.
public struct NABDetail: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case detected
        case missed
        case falsePositive = "false_positive"
    }

    /// The corpus's name of the file (`realKnownCause/nyc_taxi.csv`).
    public var file: String
    public var kind: Kind
    /// The window's rows; nil for a false positive.
    public var window: ClosedRange<Int>?
    /// The detection's row; for a missed window the row of its highest anomaly score among its
    /// scored rows (the earliest of equal ones).
    public var row: Int
    /// The anomaly score at `row`.
    public var anomalyScore: Double
    /// What it adds to the raw score S: the detection's sweep score, −A_FN for a miss, the false
    /// positive's (negative) sweep score.
    public var contribution: Double
}

extension NABScorer {
    /// The parts of the raw score at `threshold` for `profile`, file by file in the scorer's order
    /// and by row within a file (a window at its first row). Windows wholly inside the
    /// probationary period have no part, as in ``evaluate(_:threshold:)``; the contributions add
    /// up to its total score.
    public func details(_ profile: NABProfile, threshold: Double) -> [NABDetail] {
        var details: [NABDetail] = []
        for (f, file) in series.enumerated() {
            let first = firstWindow[f], offset = file.probationaryRows
            // Per window: its earliest detection's row and credit, and its highest score's row.
            var detection = [(row: Int, credit: Double)?](repeating: nil, count: file.windows.count)
            var highest = [Int?](repeating: nil, count: file.windows.count)
            var parts: [(key: Int, detail: NABDetail)] = []
            for (p, row) in rowsOfSeries[f].enumerated() {
                let i = offset + p
                if row.window < 0 {
                    if row.score >= threshold {
                        let detail = NABDetail(
                            file: file.name, kind: .falsePositive, window: nil, row: i, anomalyScore: row.score,
                            contribution: row.credit * profile.falsePositive)
                        parts.append((i, detail))
                    }
                    continue
                }
                let k = Int(row.window) - first
                if row.score >= threshold, detection[k] == nil { detection[k] = (i, row.credit * profile.truePositive) }
                if highest[k].map({ row.score > file.scores[$0] }) ?? true { highest[k] = i }
            }
            for (k, window) in file.windows.enumerated() where windowScored[first + k] {
                let detail: NABDetail
                if let d = detection[k] {
                    detail = NABDetail(
                        file: file.name, kind: .detected, window: window, row: d.row, anomalyScore: file.scores[d.row],
                        contribution: d.credit)
                } else {
                    let row = highest[k]!  // a scored window has a scored row
                    detail = NABDetail(
                        file: file.name, kind: .missed, window: window, row: row, anomalyScore: file.scores[row],
                        contribution: -profile.falseNegative)
                }
                parts.append((window.lowerBound, detail))
            }
            details += parts.sorted { $0.key < $1.key }.map(\.detail)
        }
        return details
    }

    /// `details` of each profile at its threshold as CSV, one line a part: `profile, threshold,
    /// file, kind (detected, missed, false_positive), window_start, window_end (rows, empty for a
    /// false positive), row, time (UTC, ISO 8601), anomaly_score, contribution`.
    public func detailCSV(_ evaluations: [(profile: NABProfile, threshold: Double)]) -> String {
        var lines = ["profile,threshold,file,kind,window_start,window_end,row,time,anomaly_score,contribution"]
        let files = Dictionary(series.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (profile, threshold) in evaluations {
            for d in details(profile, threshold: threshold) {
                let time = files[d.file].map { Timestamp.iso8601($0.times[d.row]) } ?? ""
                let window = d.window.map { "\($0.lowerBound),\($0.upperBound)" } ?? ","
                lines.append(
                    "\(profile.name),\(threshold),\(d.file),\(d.kind.rawValue),\(window),\(d.row),\(time),\(d.anomalyScore),\(d.contribution)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
