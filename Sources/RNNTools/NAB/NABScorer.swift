// The Numenta Anomaly Benchmark's scoring (Lavin & Ahmad, "Evaluating Real-time Anomaly
// Detection Algorithms – the Numenta Anomaly Benchmark", IEEE ICMLA 2015; numenta/NAB's
// nab/sweeper.py at commit ea702d75), written from the description in the corpus's README and
// checked against NAB's published results (bench/results/nab-scorer.md). Reading the corpus is
// NABCorpus.swift; a file's parts of the score at a threshold (its windows and false positives),
// which `evaluate` sums, NABDetail.swift; the printed and JSON report is NABReport.swift.

import Foundation

/// A scoring profile of NAB (`config/profiles.json`): what a true positive earns and what a false
/// positive and a missed window cost. NAB's profiles: `standard` (A_TP 1, A_FP 0.11, A_FN 1),
/// `reward_low_FP_rate` (A_FP 0.22) and `reward_low_FN_rate` (A_FN 2).
public struct NABProfile: Sendable, Equatable {
    public var name: String
    /// A_TP: the worth of a detection at a window's first row.
    public var truePositive: Double
    /// A_FP: the cost of a detection far from any window.
    public var falsePositive: Double
    /// A_FN: the cost of a window without a detection.
    public var falseNegative: Double

    public init(name: String, truePositive: Double, falsePositive: Double, falseNegative: Double) {
        self.name = name
        self.truePositive = truePositive
        self.falsePositive = falsePositive
        self.falseNegative = falseNegative
    }

    /// NAB's three profiles, as `config/profiles.json` has them.
    public static let standard = NABProfile(name: "standard", truePositive: 1, falsePositive: 0.11, falseNegative: 1)
    public static let rewardLowFPRate = NABProfile(name: "reward_low_FP_rate", truePositive: 1, falsePositive: 0.22, falseNegative: 1)
    public static let rewardLowFNRate = NABProfile(name: "reward_low_FN_rate", truePositive: 1, falsePositive: 0.11, falseNegative: 2)

    /// The order of NAB's scoreboard (standard, low FP, low FN); other profiles follow by name.
    public static let publishedOrder = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]

    /// `100 · (S − S_null) / (S_perfect − S_null)`: 0 for a detector that never fires, 100 for
    /// one that fires exactly at the first row of every window. S_perfect is `windows · A_TP`;
    /// S_null, the score of a detector that never fires, is `−scoredWindows · A_FN`, where
    /// `scoredWindows` leaves out windows wholly inside the probationary period (NAB's sweeper
    /// gives those no part, and its normalisation takes the null detector's actual score; no
    /// window of NAB's corpus is one). Nil without a window: nothing to normalise by.
    public func normalised(_ score: Double, windows: Int, scoredWindows: Int) -> Double? {
        let perfect = Double(windows) * truePositive
        let null = -Double(scoredWindows) * falseNegative
        guard windows > 0, perfect > null else { return nil }
        return 100 * (score - null) / (perfect - null)
    }
}

/// One data file as the scorer sees it: each row's time and anomaly score, and the labelled
/// anomaly windows as ranges of rows.
public struct NABSeries: Sendable {
    /// The corpus's name of the file, `<category>/<file>.csv` (`realKnownCause/nyc_taxi.csv`).
    public var name: String
    /// Unix seconds of each row: only the false positives per day need them.
    public var times: [Double]
    /// The detector's anomaly score of each row; a row scoring at least the threshold is a detection.
    public var scores: [Double]
    /// The windows as ranges of rows, in order and disjoint, each at least two rows wide.
    public var windows: [ClosedRange<Int>]

    /// `windows` must be in order, disjoint, within the rows and at least two rows wide (the
    /// decay after a window divides by its width − 1; NAB's corpus has no narrower one).
    public init(name: String, times: [Double], scores: [Double], windows: [ClosedRange<Int>]) {
        precondition(times.count == scores.count, "\(name): one time per score")
        for (k, window) in windows.enumerated() {
            precondition(window.lowerBound >= 0 && window.upperBound < scores.count, "\(name): window \(window) outside the rows")
            precondition(window.count >= 2, "\(name): window \(window) narrower than two rows")
            precondition(k == 0 || windows[k - 1].upperBound < window.lowerBound, "\(name): windows out of order or overlapping")
        }
        self.name = name
        self.times = times
        self.scores = scores
        self.windows = windows
    }

    /// The first path component of ``name`` (NAB's categories: `realKnownCause`, `artificialNoAnomaly`, ...).
    public var category: String {
        guard let slash = name.firstIndex(of: "/") else { return "" }
        return String(name[..<slash])
    }

    /// Rows at the start that are not scored at all: neither false positives nor window rows.
    public var probationaryRows: Int { Self.probationaryRows(scores.count) }

    /// `min(floor(0.15 N), 750)` for a file of `rows` rows: the detector's time to learn the file.
    /// Computed in floating point as NAB's sweeper does (`0.15 * N`, then the floor), so that the
    /// boundary is NAB's to the row.
    public static func probationaryRows(_ rows: Int) -> Int {
        min(Int((0.15 * Double(rows)).rounded(.down)), 750)
    }

    /// Days from the first scored row's time to the last row's: the span over which false
    /// positives are counted. 0 when no row is scored.
    public var scoredDays: Double {
        let first = probationaryRows
        guard first < times.count else { return 0 }
        return max(0, times[times.count - 1] - times[first]) / 86_400
    }

    /// The windows given by their first and last rows' times, resolved to rows as NAB's sweeper
    /// does: a window opens at the first row (after the previous window) whose time is its start,
    /// and closes at the first row from there whose time is its end. A repeated timestamp (a
    /// clock set back by daylight saving time; NAB's corpus has a few) therefore resolves to its
    /// first row. Throws when a window's start or end is not a row's time.
    public init(name: String, times: [Double], scores: [Double], windowTimes: [(start: Double, end: Double)]) throws(NABError) {
        var windows: [ClosedRange<Int>] = []
        var next = 0
        for window in windowTimes {
            guard let start = times[next...].firstIndex(of: window.start) else {
                throw .malformed(name, "no row (after the previous window) has the window's start time \(Timestamp.iso8601(window.start))")
            }
            guard let end = times[start...].firstIndex(of: window.end) else {
                throw .malformed(name, "no row from the window's start on has its end time \(Timestamp.iso8601(window.end))")
            }
            guard end > start else {
                throw .malformed(name, "the window from \(Timestamp.iso8601(window.start)) is one row wide; NAB's decay after a window divides by its width − 1")
            }
            windows.append(start...end)
            next = end + 1
        }
        self.init(name: name, times: times, scores: scores, windows: windows)
    }

    /// Whether row `i` lies inside one of the windows.
    public func isInWindow(_ i: Int) -> Bool {
        windows.contains { $0.contains(i) }
    }
}

/// A threshold and the corpus score it gives.
public struct NABThreshold: Sendable, Equatable {
    /// Rows scoring at least this are detections; `infinity` when the best is never to fire.
    public var threshold: Double
    /// The raw score S, summed over the files.
    public var score: Double
}

/// The score of the corpus, or of a category, at one threshold for one profile.
public struct NABTally: Sendable, Equatable {
    /// Raw score S: each window's best detection or −A_FN, plus every detection outside windows.
    public var score = 0.0
    public var files = 0
    public var windows = 0
    /// Windows with at least one scored row (the others lie wholly in the probationary period).
    public var scoredWindows = 0
    /// Windows with a detection.
    public var windowsDetected = 0
    /// Detections outside every window, past the probationary period.
    public var falsePositives = 0
    /// Rows past the probationary period.
    public var scoredRows = 0
    /// The days they span (``NABSeries/scoredDays``, summed).
    public var scoredDays = 0.0

    /// False positives per day of scored data: the false alarms an operator would see.
    public var falsePositivesPerDay: Double? { scoredDays > 0 ? Double(falsePositives) / scoredDays : nil }

    mutating func add(_ other: NABTally) {
        score += other.score
        files += other.files
        windows += other.windows
        scoredWindows += other.scoredWindows
        windowsDetected += other.windowsDetected
        falsePositives += other.falsePositives
        scoredRows += other.scoredRows
        scoredDays += other.scoredDays
    }
}

/// The corpus scored at one threshold for one profile: in total, per category, per file.
public struct NABEvaluation: Sendable {
    public var profile: NABProfile
    public var threshold: Double
    public var total: NABTally
    /// Per category (the first path component of the files' names), by name.
    public var categories: [(name: String, tally: NABTally)]
    /// Per file, in the scorer's order of files.
    public var files: [NABTally]

    /// The normalised score of the corpus (``NABProfile/normalised(_:windows:scoredWindows:)``).
    public var normalised: Double? { profile.normalised(total.score, windows: total.windows, scoredWindows: total.scoredWindows) }

    /// The normalised score of a category's files, against that category's own windows; nil for
    /// a category without windows (NAB's `artificialNoAnomaly`).
    public func normalised(_ tally: NABTally) -> Double? {
        profile.normalised(tally.score, windows: tally.windows, scoredWindows: tally.scoredWindows)
    }
}

/// NAB's scorer over a corpus of files: each scored row's sweep score, the score of the corpus
/// at a threshold, and the one corpus-wide threshold that maximises it.
///
/// The sweep score of row `i` (`scaledSigmoid(x) = 2 / (1 + e^(5x)) − 1`, and −1 for `x > 3`):
/// - inside a window `[left, right]` of `w` rows: `scaledSigmoid(−(right − i + 1) / w) · A_TP /
///   scaledSigmoid(−1)`, so `A_TP` exactly at the window's first row, falling to about
///   `0.47 A_TP` at its last row for w = 5 (towards 0 for wide windows);
/// - outside, before the file's first window: `−A_FP`;
/// - outside, after a window: `scaledSigmoid(d) · A_FP` with `d = (i − right) / (w − 1)` for the
///   latest window: close behind it a late detection costs little, from three widths on `−A_FP`.
///
/// At threshold θ a row whose score is at least θ is a detection. A window earns its best
/// (earliest) detection's sweep score, or −A_FN without one; every detection outside the windows
/// adds its own (negative) sweep score. The first `min(floor(0.15 N), 750)` rows of each file are
/// not scored at all. NAB's sweeper caps at `x ≥ 3` where the README says `x > 3`; the two differ
/// by 6·10⁻⁷ A_FP for a false positive exactly three widths behind a window.
public struct NABScorer: Sendable {
    /// One scored row (past the probationary period): its anomaly score and its sweep score
    /// before the profile's weight.
    struct Row: Sendable {
        var score: Double
        /// `scaledSigmoid(...) / scaledSigmoid(−1)` inside a window (times A_TP), or
        /// `scaledSigmoid(d)` outside (times A_FP).
        var credit: Double
        /// The corpus-wide index of the row's window, or −1 outside every window.
        var window: Int32
    }

    public let series: [NABSeries]
    /// Every file's scored rows, sorted by descending anomaly score: the threshold sweep walks
    /// them once, adding one row at a time.
    let sweep: [Row]
    /// Per file, its scored rows in file order (for scoring at one threshold).
    let rowsOfSeries: [[Row]]
    /// The corpus-wide index of each file's first window.
    let firstWindow: [Int]
    /// Per window, whether it has a scored row.
    let windowScored: [Bool]

    public var windowCount: Int { windowScored.count }

    /// Computes every scored row's sweep score and sorts them by anomaly score. `series` must
    /// hold finite scores.
    public init(series: [NABSeries]) {
        var rowsOfSeries: [[Row]] = []
        var firstWindow: [Int] = []
        var windowScored: [Bool] = []
        for file in series {
            firstWindow.append(windowScored.count)
            let rows = Self.sweepRows(file, firstWindow: windowScored.count)
            var scored = [Bool](repeating: false, count: file.windows.count)
            for row in rows where row.window >= 0 { scored[Int(row.window) - windowScored.count] = true }
            windowScored += scored
            rowsOfSeries.append(rows)
        }
        self.series = series
        self.rowsOfSeries = rowsOfSeries
        self.firstWindow = firstWindow
        self.windowScored = windowScored
        self.sweep = rowsOfSeries.joined().sorted { $0.score > $1.score }
    }

    /// NAB's scaled sigmoid: `2 / (1 + e^(5x)) − 1`, which is 0.987 at `x = −1` (a window's
    /// first row), 0 at `x = 0` (just past its last row) and falls towards −1 right of it; −1
    /// exactly beyond three widths.
    public static func scaledSigmoid(_ x: Double) -> Double {
        x > 3 ? -1 : 2 / (1 + exp(5 * x)) - 1
    }

    /// The scored rows of `file`, in order, with their unweighted sweep scores.
    static func sweepRows(_ file: NABSeries, firstWindow: Int) -> [Row] {
        let maxCredit = scaledSigmoid(-1)
        var rows: [Row] = []
        rows.reserveCapacity(max(0, file.scores.count - file.probationaryRows))
        var k = 0  // the next window, or the current one while inside it
        var previous: ClosedRange<Int>?
        for i in 0..<file.scores.count {
            let credit: Double
            var window: Int32 = -1
            if k < file.windows.count, file.windows[k].contains(i) {
                let w = file.windows[k]
                credit = scaledSigmoid(-Double(w.upperBound - i + 1) / Double(w.count)) / maxCredit
                window = Int32(firstWindow + k)
                if i == w.upperBound {
                    previous = w
                    k += 1
                }
            } else if let p = previous {
                credit = scaledSigmoid(Double(i - p.upperBound) / Double(p.count - 1))
            } else {
                credit = -1
            }
            if i >= file.probationaryRows {
                rows.append(Row(score: file.scores[i], credit: credit, window: window))
            }
        }
        return rows
    }

    /// The threshold that maximises the corpus's raw score S for `profile`, as NAB's optimiser
    /// finds it: the scored rows of every file by descending anomaly score, added one at a time
    /// (a window keeps its best detection, a false positive adds its sweep score), S evaluated
    /// each time the score value changes: every distinct anomaly score is a candidate, in
    /// O(N log N) for the sort and O(N) for the walk. Of equal scores the highest threshold wins
    /// (NAB's stable sort); when never firing is best, the threshold is `infinity`.
    public func optimise(_ profile: NABProfile) -> NABThreshold {
        var best = [Double](repeating: -profile.falseNegative, count: windowCount)
        var score = -profile.falseNegative * Double(windowScored.count(where: { $0 }))
        var result = NABThreshold(threshold: .infinity, score: score)
        var i = 0
        while i < sweep.count {
            let value = sweep[i].score
            while i < sweep.count, sweep[i].score == value {
                let row = sweep[i]
                if row.window < 0 {
                    score += row.credit * profile.falsePositive
                } else {
                    let w = Int(row.window), credit = row.credit * profile.truePositive
                    if credit > best[w] {
                        score += credit - best[w]
                        best[w] = credit
                    }
                }
                i += 1
            }
            if score > result.score { result = NABThreshold(threshold: value, score: score) }
        }
        return result
    }

    /// The corpus scored at `threshold` for `profile`: per file, per category and in total, with
    /// the windows detected and the false positives.
    public func evaluate(_ profile: NABProfile, threshold: Double) -> NABEvaluation {
        var files: [NABTally] = []
        for (f, file) in series.enumerated() {
            var tally = NABTally(files: 1, windows: file.windows.count)
            // The windows' parts summed in order, then the false positives' (the sum's order as it
            // always was, to the last bit).
            var falsePositiveScore = 0.0
            for part in parts(ofFile: f, profile, threshold: threshold) {  // NABDetail.swift
                switch part.kind {
                case .detected:
                    tally.scoredWindows += 1
                    tally.windowsDetected += 1
                    tally.score += part.contribution
                case .missed:
                    tally.scoredWindows += 1
                    tally.score += part.contribution
                case .falsePositive:
                    tally.falsePositives += 1
                    falsePositiveScore += part.contribution
                }
            }
            tally.score += falsePositiveScore
            tally.scoredRows = rowsOfSeries[f].count
            tally.scoredDays = file.scoredDays
            files.append(tally)
        }
        var total = NABTally()
        var byCategory: [String: NABTally] = [:]
        for (file, tally) in zip(series, files) {
            total.add(tally)
            byCategory[file.category, default: NABTally()].add(tally)
        }
        let categories = byCategory.sorted { $0.key < $1.key }.map { (name: $0.key, tally: $0.value) }
        return NABEvaluation(profile: profile, threshold: threshold, total: total, categories: categories, files: files)
    }
}
