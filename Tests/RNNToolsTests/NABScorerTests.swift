import Foundation
@testable import RNNTools
import Testing

/// NAB's scorer (Sources/RNNTools/NAB): each rule of the sweep on a constructed file with its
/// value worked out by hand, the threshold sweep against a brute force, the reading of the
/// corpus's files, `rnnd-nab detect`'s conversion of a predictions file, and, where the corpus is
/// on this machine, NAB's published scores of two detectors.
///
/// Values by hand use `scaledSigmoid(x) = 2 / (1 + e^(5x)) − 1 = −tanh(5x / 2)`, so a detection
/// `k` rows before the end of a window of `w` rows earns `tanh(5 (k + 1) / 2w) / tanh(5 / 2)`.
@Suite(.timeLimit(.minutes(1)))
struct NABScorerTests {
    /// A file of `rows` hourly rows, anomaly score 0 but at `detections`.
    static func series(_ name: String = "cat/file.csv", rows: Int, windows: [ClosedRange<Int>] = [], detections: [Int: Double] = [:])
        -> NABSeries
    {
        var scores = [Double](repeating: 0, count: rows)
        for (row, score) in detections { scores[row] = score }
        return NABSeries(name: name, times: (0..<rows).map { 1_400_000_400 + 3600 * Double($0) }, scores: scores, windows: windows)
    }

    /// The raw score of `files` at threshold 0.5.
    static func score(_ files: [NABSeries], _ profile: NABProfile = .standard) -> Double {
        NABScorer(series: files).evaluate(profile, threshold: 0.5).total.score
    }

    // MARK: - The sweep score, rule by rule (20 rows: rows 0–2 are probationary)

    @Test func aDetectionAtAWindowsFirstRowIsWorthATPExactly() {
        let file = Self.series(rows: 20, windows: [10...14], detections: [10: 0.9])
        #expect(abs(Self.score([file]) - 1) < 1e-12)
        let doubled = NABProfile(name: "tp2", truePositive: 2, falsePositive: 0.11, falseNegative: 1)
        #expect(abs(Self.score([file], doubled) - 2) < 1e-12)
    }

    @Test func aDetectionAtAWindowsLastRowIsWorthLess() {
        // Position −1/5: tanh(0.5) / tanh(2.5).
        let file = Self.series(rows: 20, windows: [10...14], detections: [14: 0.9])
        #expect(abs(Self.score([file]) - 0.468_386_843_902_278) < 1e-12)
    }

    @Test func aMissedWindowCostsAFN() {
        let file = Self.series(rows: 20, windows: [10...14])
        #expect(Self.score([file]) == -1)
        #expect(Self.score([file], .rewardLowFNRate) == -2)
        let evaluation = NABScorer(series: [file]).evaluate(.standard, threshold: 0.5)
        #expect(evaluation.total.windowsDetected == 0 && evaluation.total.windows == 1)
    }

    @Test func aFalsePositiveBeforeAnyWindowCostsAFP() {
        let noWindows = Self.series(rows: 20, detections: [5: 0.9, 7: 0.6])
        #expect(abs(Self.score([noWindows]) - -0.22) < 1e-12)
        #expect(abs(Self.score([noWindows], .rewardLowFPRate) - -0.44) < 1e-12)
        let before = Self.series(rows: 20, windows: [10...14], detections: [5: 0.9, 10: 0.9])
        #expect(abs(Self.score([before]) - 0.89) < 1e-12)
        #expect(NABScorer(series: [before]).evaluate(.standard, threshold: 0.5).total.falsePositives == 1)
    }

    /// 40 rows (6 probationary), a window of 5 rows ending at row 14, missed (−1): a detection `r`
    /// rows after it is `d = r / 4` widths behind and costs `A_FP · tanh(5d / 2)`.
    static let decay: [(row: Int, expected: Double)] = [
        (15, -1 - 0.11 * 0.554_599_722_349_382),  // d = 0.25: tanh(0.625)
        (16, -1 - 0.11 * 0.848_283_639_957_513),  // d = 0.5: tanh(1.25)
        (18, -1 - 0.11 * 0.986_614_298_151_430),  // d = 1: tanh(2.5)
        (26, -1 - 0.11 * 0.999_999_388_195_546),  // d = 3: tanh(7.5), not yet capped
        (27, -1.11),  // d = 3.25 > 3: −A_FP exactly
        (39, -1.11),
    ]

    @Test(arguments: decay)
    func aFalsePositiveAfterAWindowDecaysWithTheSigmoid(row: Int, expected: Double) {
        let file = Self.series(rows: 40, windows: [10...14], detections: [row: 0.9])
        #expect(abs(Self.score([file]) - expected) < 1e-12)
    }

    @Test func onlyTheEarliestDetectionInAWindowCounts() {
        // Rows 11 and 13 of the window 10...14: only row 11's tanh(2) / tanh(2.5).
        let file = Self.series(rows: 20, windows: [10...14], detections: [11: 0.9, 13: 0.95])
        let evaluation = NABScorer(series: [file]).evaluate(.standard, threshold: 0.5)
        #expect(abs(evaluation.total.score - 0.977_106_840_922_605) < 1e-12)
        #expect(evaluation.total.windowsDetected == 1 && evaluation.total.falsePositives == 0)
        // Above 0.9 only row 13 is a detection, and it counts alone.
        let later = NABScorer(series: [file]).evaluate(.standard, threshold: 0.92).total.score
        #expect(abs(later - 0.771_926_939_821_089) < 1e-12)  // tanh(1) / tanh(2.5)
    }

    @Test func probationaryRowsAreNotScored() {
        #expect([20, 100, 1000, 4999, 5000, 10_000].map(NABSeries.probationaryRows) == [3, 15, 150, 749, 750, 750])
        // Detections in rows 0–2 count for nothing; row 3 is the first scored.
        let early = Self.series(rows: 20, detections: [0: 0.9, 1: 0.9, 2: 0.9])
        let evaluation = NABScorer(series: [early]).evaluate(.standard, threshold: 0.5)
        #expect(evaluation.total.score == 0 && evaluation.total.falsePositives == 0 && evaluation.total.scoredRows == 17)
        #expect(abs(Self.score([Self.series(rows: 20, detections: [3: 0.9])]) - -0.11) < 1e-12)
        // A window that starts in the probationary period keeps its width: rows 1...5 are 5
        // rows, a detection at row 1 is not seen, one at row 3 earns tanh(1.5) / tanh(2.5).
        #expect(Self.score([Self.series(rows: 20, windows: [1...5], detections: [1: 0.9])]) == -1)
        #expect(abs(Self.score([Self.series(rows: 20, windows: [1...5], detections: [3: 0.9])]) - 0.917_428_680_428_408) < 1e-12)
    }

    @Test func falsePositivesPerDayCountTheScoredSpan() throws {
        // Rows 3 to 19 of an hourly file span 16 hours: 2 false positives are 3 a day.
        let file = Self.series(rows: 20, detections: [5: 0.9, 9: 0.9])
        let total = NABScorer(series: [file]).evaluate(.standard, threshold: 0.5).total
        #expect(total.falsePositives == 2)
        #expect(abs(total.scoredDays - 16.0 / 24) < 1e-12)
        let perDay = try #require(total.falsePositivesPerDay)
        #expect(abs(perDay - 3) < 1e-9)
    }

    // MARK: - The threshold sweep and normalisation

    /// File A: windows 20...24 (found at 0.9) and 40...44 (found at 0.5), a false positive at
    /// row 30 (0.3, 1.5 widths behind the first window); file B has no window and false
    /// positives at 0.7 and 0.3. S by threshold: never −2, 0.9 → 0, 0.7 → −0.11, 0.5 → 1.89,
    /// 0.3 → 1.89 − 0.11 tanh(3.75) − 0.11 = 1.670, 0 → every row fires, far below.
    static let toyCorpus = [
        series("catA/a.csv", rows: 60, windows: [20...24, 40...44], detections: [20: 0.9, 40: 0.5, 30: 0.3]),
        series("catB/b.csv", rows: 60, detections: [30: 0.7, 50: 0.3]),
    ]

    @Test func theSweepPicksTheBestThresholdOfATwoFileCorpus() {
        let scorer = NABScorer(series: Self.toyCorpus)
        let best = scorer.optimise(.standard)
        #expect(best.threshold == 0.5)
        #expect(abs(best.score - 1.89) < 1e-12)
        let expected: [Double: Double] = [0.9: 0, 0.7: -0.11, 0.5: 1.89, 0.3: 1.670_121_611_300_123]
        for (threshold, score) in expected {
            #expect(abs(scorer.evaluate(.standard, threshold: threshold).total.score - score) < 1e-12, "θ \(threshold)")
        }
        // The sweep's maximum is the brute force's: every distinct score evaluated on its own.
        let candidates = Set(Self.toyCorpus.flatMap(\.scores))
        let brute = candidates.map { scorer.evaluate(.standard, threshold: $0).total.score }.max()!
        #expect(abs(brute - best.score) < 1e-12)
        #expect(scorer.evaluate(.standard, threshold: 0).total.score < -2)
    }

    @Test func ofEqualScoresTheHighestThresholdWins() {
        // False positives free: 0.5, 0.3 and 0 all score 2; NAB keeps the highest.
        let free = NABProfile(name: "free", truePositive: 1, falsePositive: 0, falseNegative: 1)
        let best = NABScorer(series: Self.toyCorpus).optimise(free)
        #expect(best.threshold == 0.5 && best.score == 2)
    }

    @Test(arguments: [NABProfile.standard, .rewardLowFPRate, .rewardLowFNRate])
    func aNullDetectorNormalisesTo0AndAPerfectOneTo100(profile: NABProfile) throws {
        let shapes = [("catA/a.csv", [20...24, 40...44]), ("catB/b.csv", [30...39]), ("catC/c.csv", [])]
        let null = NABScorer(series: shapes.map { Self.series($0.0, rows: 60, windows: $0.1) })
        let never = null.optimise(profile)
        #expect(never.threshold == .infinity)
        let nullEvaluation = null.evaluate(profile, threshold: never.threshold)
        #expect(try #require(nullEvaluation.normalised) == 0)
        #expect(nullEvaluation.total.score == -3 * profile.falseNegative)
        let perfect = NABScorer(series: shapes.map { name, windows in
            Self.series(name, rows: 60, windows: windows, detections: Dictionary(uniqueKeysWithValues: windows.map { ($0.lowerBound, 1.0) }))
        })
        let best = perfect.optimise(profile)
        #expect(best.threshold == 1)
        let evaluation = perfect.evaluate(profile, threshold: best.threshold)
        #expect(abs(try #require(evaluation.normalised) - 100) < 1e-9)
        // Per category, against its own windows; none for a category without windows.
        #expect(evaluation.categories.map(\.name) == ["catA", "catB", "catC"])
        #expect(abs(try #require(evaluation.normalised(evaluation.categories[0].tally)) - 100) < 1e-9)
        #expect(try #require(nullEvaluation.normalised(nullEvaluation.categories[1].tally)) == 0)
        #expect(evaluation.normalised(evaluation.categories[2].tally) == nil)
    }

    // MARK: - The parts of a score (rnnd-nab score --detail)

    @Test func theDetailListsEachWindowAndFalsePositiveAndAddsUpToTheScore() throws {
        // 40 rows (6 probationary): a window wholly in the probationary period (1...3), which has
        // no part; a false positive 4 rows behind it (row 7, d = 4/2); a window of 5 rows at
        // 10...14 found at row 11; one at 20...24 missed (its highest score 0.3, first at row 21);
        // a false positive 2 rows behind it (row 26, d = 2/4).
        let file = Self.series(rows: 40, windows: [1...3, 10...14, 20...24], detections: [2: 0.9, 7: 0.8, 11: 0.9, 13: 0.95, 21: 0.3, 23: 0.3, 26: 0.6])
        let scorer = NABScorer(series: [file, Self.series("cat/quiet.csv", rows: 40)])
        let details = scorer.details(.rewardLowFNRate, threshold: 0.5)
        #expect(details.map(\.kind) == [.falsePositive, .detected, .missed, .falsePositive])
        #expect(details.map(\.row) == [7, 11, 21, 26])
        #expect(details.map(\.window) == [nil, 10...14, 20...24, nil])
        #expect(details.map(\.anomalyScore) == [0.8, 0.9, 0.3, 0.6])
        let expected = [-0.11 * 0.999_909_204_262_595, 0.977_106_840_922_605, -2, -0.11 * 0.848_283_639_957_513]  // tanh(5); tanh(2) / tanh(2.5); tanh(1.25)
        for (detail, value) in zip(details, expected) { #expect(abs(detail.contribution - value) < 1e-12, "\(detail)") }
        let total = scorer.evaluate(.rewardLowFNRate, threshold: 0.5).total.score
        #expect(abs(details.map(\.contribution).reduce(0, +) - total) < 1e-12)

        let csv = scorer.detailCSV([(.standard, 0.5)]).split(separator: "\n")
        #expect(csv.first == "profile,threshold,file,kind,window_start,window_end,row,time,anomaly_score,contribution")
        #expect(csv.count == 5)
        #expect(csv[3] == "standard,0.5,cat/file.csv,missed,20,24,21,2014-05-14T14:00:00Z,0.3,-1.0")
    }

    // MARK: - Reading the corpus

    @Test func windowsResolveToTheFirstRowOfARepeatedTimeAndBadWindowsAreRefused() throws {
        // An hour repeated (a clock set back): rows 3 and 4 both have time 3.
        let times: [Double] = [0, 1, 2, 3, 3, 4, 5, 6, 7, 8]
        let scores = [Double](repeating: 0, count: times.count)
        let file = try NABSeries(name: "c/f.csv", times: times, scores: scores, windowTimes: [(3, 5), (7, 8)])
        #expect(file.windows == [3...6, 8...9])
        #expect(throws: NABError.self) { try NABSeries(name: "c/f.csv", times: times, scores: scores, windowTimes: [(2.5, 5)]) }
        #expect(throws: NABError.self) { try NABSeries(name: "c/f.csv", times: times, scores: scores, windowTimes: [(5, 4)]) }
        #expect(throws: NABError.self) { try NABSeries(name: "c/f.csv", times: times, scores: scores, windowTimes: [(5, 5)]) }
    }

    /// A directory of NAB's layout under the temporary directory, removed by the caller.
    static func makeDirectory(_ files: [String: String]) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-nab-test-\(UUID().uuidString)")
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        return root.path
    }

    /// `rows` hourly timestamps from 2014-02-19 00:00:00.
    static func hours(_ rows: Int) -> [String] {
        (0..<rows).map { "2014-02-19 " + ($0 < 10 ? "0" : "") + "\($0):00:00" }
    }

    @Test func aCorpusAndResultsInNABsLayoutAreRead() throws {
        let times = Self.hours(20)
        // f: a window from row 10 to 14 found at its first row; g (results named without the
        // detector's prefix, columns in another order): a false positive at row 5.
        var f = "timestamp,value,anomaly_score,label\n", g = "anomaly_score,extra,timestamp\n"
        for (r, t) in times.enumerated() {
            f += "\(t),\(r),\(r == 10 ? "0.8" : "0.1"),0\n"
            g += "\(r == 5 ? "0.8" : "0"),x,\(t)\n"
        }
        let directory = try Self.makeDirectory([
            "labels/combined_windows.json": #"{"cat/f.csv": [["2014-02-19 10:00:00.000000", "2014-02-19 14:00:00.000000"]], "cat/g.csv": []}"#,
            "config/profiles.json": #"{"zeta": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.5, "tnWeight": 1.0}}, "# + #""reward_low_FN_rate": {"CostMatrix": {"tpWeight": 1, "fnWeight": 2, "fpWeight": 0.11, "tnWeight": 1}}, "# + #""standard": {"CostMatrix": {"tpWeight": 1, "fnWeight": 1, "fpWeight": 0.11, "tnWeight": 1}}}"#,
            "config/thresholds.json": #"{"mine": {"standard": {"score": 0.89, "threshold": 0.75}}}"#,
            "results/mine/cat/mine_f.csv": f,
            "results/mine/cat/g.csv": g,
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let corpus = try NABCorpus(directory: directory)
        #expect(corpus.files.map(\.name) == ["cat/f.csv", "cat/g.csv"])
        #expect(try corpus.profiles().map(\.name) == ["standard", "reward_low_FN_rate", "zeta"])
        let scorer = try corpus.scorer(results: directory + "/results/mine")
        #expect(scorer.series[0].windows == [10...14] && scorer.series[1].windows.isEmpty)
        let best = scorer.optimise(.standard)
        #expect(best.threshold == 0.8 && abs(best.score - 0.89) < 1e-12)
        #expect(try NABCorpus.thresholds(path: directory + "/config/thresholds.json", detector: "mine")["standard"]
            == NABThreshold(threshold: 0.75, score: 0.89))
        // The report's JSON has the figures.
        let report = NABReport(detector: "mine", scorer: scorer, profiles: [.standard])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        let profile = try #require((json["profiles"] as? [[String: Any]])?.first)
        #expect(profile["threshold"] as? Double == 0.8 && profile["windows_detected"] as? Int == 1 && profile["false_positives"] as? Int == 1)
        #expect(report.table().contains("1/1"))
        // A results file missing, and a score that is not a number, are named.
        #expect(throws: NABError.self) { try corpus.scorer(results: directory + "/results/other") }
        try Data("timestamp,anomaly_score\n2014-02-19 00:00:00,high\n".utf8).write(to: URL(fileURLWithPath: directory + "/results/mine/cat/g.csv"))
        #expect(throws: NABError.malformed(directory + "/results/mine/cat/g.csv", "line 2: the anomaly score 'high' is not a finite number")) {
            try corpus.scorer(results: directory + "/results/mine")
        }
    }

    @Test func detectTurnsAPredictionsFileIntoNABResults() throws {
        let times = Self.hours(6)
        let data = "timestamp,value\n" + times.enumerated().map { "\($1),\($0 * 10)" }.joined(separator: "\n") + "\n"
        // Rows 0 and 1 without a score (warm-up: empty; no line at all), row 4 refused (no line);
        // horizon 2 lines are not the row's own score.
        let predictions = """
            row,horizon,value,value_lower,value_upper,anomaly
            1,1,0.0,,,
            2,1,10.0,5.0,15.0,0.25
            2,2,5.0,,,
            3,1,20.0,15.0,25.0,0.0
            3,2,15.0,,,0.9
            5,1,30.0,25.0,35.0,1.0

            """
        let (text, rows) = try NABDetect.resultsCSV(
            name: "cat/f.csv", data: ("data.csv", Array(data.utf8)), predictions: ("p.csv", Array(predictions.utf8)),
            windows: [(Timestamp.parse(times[2])!, Timestamp.parse(times[3])!)])
        #expect(rows == 6)
        #expect(text == """
            timestamp,value,anomaly_score,label
            \(times[0]),0,0,0
            \(times[1]),10,0,0
            \(times[2]),20,0.25,1
            \(times[3]),30,0.0,1
            \(times[4]),40,0,0
            \(times[5]),50,1.0,0

            """)
        #expect(throws: NABError.self) {
            try NABDetect.resultsCSV(name: "cat/f.csv", data: ("data.csv", Array(data.utf8)),
                predictions: ("p.csv", Array("row,horizon,anomaly\n9,1,0.5\n".utf8)), windows: [])
        }
    }

    // MARK: - NAB's published results

    /// The package's root: Tests/RNNToolsTests/ is two levels down.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// The corpus, beside the package (it is not part of the repository: see bench/README.md).
    static let corpus = root.deletingLastPathComponent().appendingPathComponent("shared/nab-corpus").path
    static let corpusPresent = FileManager.default.fileExists(atPath: corpus + "/labels/combined_windows.json")

    /// NAB's per-file scores at its published threshold (`results/<d>/<d>_<profile>_scores.csv`:
    /// Detector,Profile,File,Threshold,Score,...; the last line is the Totals).
    static func publishedFileScores(_ detector: String, _ profile: String) throws -> (files: [String: Double], total: Double) {
        let text = try String(contentsOfFile: "\(corpus)/results/\(detector)/\(detector)_\(profile)_scores.csv", encoding: .utf8)
        var files: [String: Double] = [:], total: Double?
        for line in text.split(separator: "\n").dropFirst() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if cells[0] == "Totals" { total = Double(cells[4]) } else { files[cells[2]] = Double(cells[4]) }
        }
        return (files, try #require(total))
    }

    /// Scores NAB's published results of `numenta` and `windowedGaussian` (results/) for every
    /// profile and compares with the published figures: the normalised scores of
    /// `results/final_results.json` and the raw scores of `config/thresholds.json` within 0.1,
    /// and, at the published threshold, each file's score as NAB's own score files have it.
    ///
    /// Two published raw scores are not what NAB's current code gives, and are expected to
    /// differ (bench/results/nab-scorer.md): NAB's thresholds come from an older hill-climbing
    /// optimiser that stopped at a local optimum for numenta's reward_low_FP_rate (0.5752, S
    /// 30.431; the global one is 0.5431, S 30.645); and windowedGaussian's raw scores in
    /// thresholds.json predate its re-scored results (−44.75, where its own score file and
    /// final_results.json's 39.65 both give −24.01).
    @Test(.enabled(if: corpusPresent, "the NAB corpus is not at <package>/../shared/nab-corpus (it is not part of the repository)"),
          arguments: ["numenta", "windowedGaussian"])
    func reproducesNABsPublishedScores(detector: String) throws {
        let nab = try NABCorpus(directory: Self.corpus)
        let scorer = try nab.scorer(results: "\(Self.corpus)/results/\(detector)")
        #expect(scorer.series.count == 58 && scorer.windowCount == 116)
        let finals = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.corpus + "/results/final_results.json")))
            as? [String: [String: Double]])
        let published = try NABCorpus.thresholds(path: Self.corpus + "/config/thresholds.json", detector: detector)
        let profiles = try nab.profiles()
        #expect(profiles.map(\.name) == NABProfile.publishedOrder)
        for profile in profiles {
            let final = try #require(finals[detector]?[profile.name])
            let thresholds = try #require(published[profile.name])
            // The optimised threshold.
            let best = scorer.optimise(profile)
            let evaluation = scorer.evaluate(profile, threshold: best.threshold)
            #expect(abs(evaluation.total.score - best.score) < 1e-9)
            #expect(abs(try #require(evaluation.normalised) - final) < 0.1, "\(detector) \(profile.name) normalised")
            withKnownIssue("NAB's published raw score is not its current optimiser's (see this test's comment)") {
                #expect(abs(best.score - thresholds.score) < 0.1, "\(detector) \(profile.name) raw S")
            } when: {
                detector == "windowedGaussian" || profile.name == "reward_low_FP_rate"
            }
            // At NAB's published threshold: NAB's scores file by file.
            let atPublished = scorer.evaluate(profile, threshold: thresholds.threshold)
            let nabScores = try Self.publishedFileScores(detector, profile.name)
            #expect(nabScores.files.count == 58)
            for (file, tally) in zip(scorer.series, atPublished.files) {
                #expect(abs(tally.score - (nabScores.files[file.name] ?? .nan)) < 1e-6, "\(detector) \(profile.name) \(file.name)")
            }
            #expect(abs(atPublished.total.score - nabScores.total) < 1e-6)
            #expect(abs(try #require(atPublished.normalised) - final) < 0.1)
            #expect(best.score >= atPublished.total.score - 1e-9, "the sweep's optimum is at least the published threshold's score")
        }
    }
}
