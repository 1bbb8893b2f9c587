// Where a detector's NAB score comes from, window by window and false alarm by false alarm:
// `rnnd-nab score --detail FILE`, and the parts NABScorer.evaluate sums into its totals, so that a
// miss can be looked at (how high the window scored, and where) without a scratch
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
    /// That row's time, Unix seconds.
    public var time: Double
    /// The anomaly score at `row`.
    public var anomalyScore: Double
    /// What it adds to the raw score S: the detection's sweep score, −A_FN for a miss, the false
    /// positive's (negative) sweep score.
    public var contribution: Double
}

extension NABScorer {
    /// The parts of the raw score at `threshold` for `profile`, file by file in the scorer's order
    /// and by row within a file (a window at its first row). Windows wholly inside the
    /// probationary period have no part, as in ``evaluate(_:threshold:)``, which sums these.
    public func details(_ profile: NABProfile, threshold: Double) -> [NABDetail] {
        series.indices.flatMap { parts(ofFile: $0, profile, threshold: threshold) }
    }

    /// File `f`'s parts of the raw score (``details(_:threshold:)``).
    func parts(ofFile f: Int, _ profile: NABProfile, threshold: Double) -> [NABDetail] {
        let file = series[f], first = firstWindow[f], offset = file.probationaryRows
        func detail(_ kind: NABDetail.Kind, _ window: ClosedRange<Int>?, row: Int, contribution: Double) -> NABDetail {
            NABDetail(
                file: file.name, kind: kind, window: window, row: row, time: file.times[row], anomalyScore: file.scores[row],
                contribution: contribution)
        }
        // Per window: its earliest detection's row and credit (its best: the credit falls
        // through a window), and its highest score's row.
        var detection = [(row: Int, credit: Double)?](repeating: nil, count: file.windows.count)
        var highest = [Int?](repeating: nil, count: file.windows.count)
        var parts: [(key: Int, detail: NABDetail)] = []
        for (p, row) in rowsOfSeries[f].enumerated() {
            let i = offset + p
            if row.window < 0 {
                if row.score >= threshold {
                    parts.append((i, detail(.falsePositive, nil, row: i, contribution: row.credit * profile.falsePositive)))
                }
                continue
            }
            let k = Int(row.window) - first
            if row.score >= threshold, detection[k] == nil { detection[k] = (i, row.credit * profile.truePositive) }
            if highest[k].map({ row.score > file.scores[$0] }) ?? true { highest[k] = i }
        }
        for (k, window) in file.windows.enumerated() where windowScored[first + k] {
            if let d = detection[k] {
                parts.append((window.lowerBound, detail(.detected, window, row: d.row, contribution: d.credit)))
            } else {
                // A scored window has a scored row.
                parts.append((window.lowerBound, detail(.missed, window, row: highest[k]!, contribution: -profile.falseNegative)))
            }
        }
        return parts.sorted { $0.key < $1.key }.map(\.detail)
    }

    /// `details` of each profile at its threshold as CSV, one line a part: `profile, threshold,
    /// file, kind (detected, missed, false_positive), window_start, window_end (rows, empty for a
    /// false positive), row, time (UTC, ISO 8601), anomaly_score, contribution`.
    public func detailCSV(_ evaluations: [(profile: NABProfile, threshold: Double)]) -> String {
        var lines = ["profile,threshold,file,kind,window_start,window_end,row,time,anomaly_score,contribution"]
        for (profile, threshold) in evaluations {
            for d in details(profile, threshold: threshold) {
                let window = d.window.map { "\($0.lowerBound),\($0.upperBound)" } ?? ","
                lines.append(
                    "\(profile.name),\(threshold),\(d.file),\(d.kind.rawValue),\(window),\(d.row),\(Timestamp.iso8601(d.time)),"
                        + "\(d.anomalyScore),\(d.contribution)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
