// Reading the NAB corpus (numenta/NAB's layout): the labelled windows, the scoring profiles, the
// published thresholds, and a detector's results files.

import Foundation
import RNNBasics

/// Why the NAB corpus, a detector's results or a replay could not be used, with the file at
/// fault. `exitCode` is what `rnnd-nab` exits with.
public enum NABError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A file or directory cannot be read (missing, no permission): the path and errno's reason.
    case unreadable(String, String)
    /// A file is there but does not hold what NAB's format says: the file and what is wrong.
    case malformed(String, String)
    /// `rnnd replay` failed on a data file: the file and what the replay said.
    case replay(String, String)
    /// The system refused (a directory, a file written, a process started).
    case system(String)
    /// SIGINT or SIGTERM arrived; the replays running were stopped.
    case interrupted

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "\(path): cannot read it: \(reason)"
        case .malformed(let path, let message): "\(path): \(message)"
        case .replay(let file, let message): "rnnd replay failed on \(file): \(message)"
        case .system(let message): message
        case .interrupted: "interrupted; the replays running were stopped"
        }
    }

    /// 66 (EX_NOINPUT) unreadable, 65 (EX_DATAERR) malformed, 1 a failed replay, 71 (EX_OSERR)
    /// the system, 130 interrupted (as a shell reports SIGINT).
    public var exitCode: Int32 {
        switch self {
        case .unreadable: 66
        case .malformed: 65
        case .replay: 1
        case .system: 71
        case .interrupted: 130
        }
    }
}

/// The NAB corpus directory: `labels/combined_windows.json` (the ground truth: every file of the
/// corpus, with its anomaly windows, empty for a file without anomalies), `config/profiles.json`,
/// `data/<category>/<file>.csv`, and `results/<detector>/` for published detectors.
public struct NABCorpus: Sendable {
    /// One file of the corpus and its windows' first and last rows' times (Unix seconds).
    public struct File: Sendable {
        /// `<category>/<file>.csv`, as NAB names it.
        public var name: String
        public var windows: [(start: Double, end: Double)]
    }

    public let directory: String
    /// The files of the corpus, by name.
    public let files: [File]

    /// Reads `labels/combined_windows.json` of the corpus at `directory`: an object whose keys
    /// name the files (`realKnownCause/nyc_taxi.csv`) and whose values are lists of
    /// `[start, end]` timestamps (`"2014-02-19 10:50:00.000000"`, the time of a data row).
    public init(directory: String) throws(NABError) {
        self.directory = directory
        let path = directory + "/labels/combined_windows.json"
        guard let object = try Self.readJSON(path) as? [String: Any] else {
            throw .malformed(path, "expected an object of file names and their windows")
        }
        var files: [File] = []
        for (name, value) in object {
            guard let list = value as? [Any] else { throw .malformed(path, "\(name): expected a list of windows") }
            var windows: [(start: Double, end: Double)] = []
            for item in list {
                guard let pair = item as? [Any], pair.count == 2, let start = (pair[0] as? String).flatMap(Timestamp.parse),
                    let end = (pair[1] as? String).flatMap(Timestamp.parse), start <= end
                else { throw .malformed(path, "\(name): a window is not a pair of timestamps [start, end]") }
                windows.append((start, end))
            }
            windows.sort { $0.start < $1.start }
            files.append(File(name: name, windows: windows))
        }
        self.files = files.sorted { $0.name < $1.name }
    }

    /// The scoring profiles of `config/profiles.json` (each `{"CostMatrix": {"tpWeight": ...,
    /// "fpWeight": ..., "fnWeight": ...}}`), in the order of NAB's scoreboard.
    public func profiles() throws(NABError) -> [NABProfile] {
        let path = directory + "/config/profiles.json"
        guard let object = try Self.readJSON(path) as? [String: Any] else { throw .malformed(path, "expected an object of profiles") }
        var profiles: [NABProfile] = []
        for (name, value) in object {
            guard let costs = (value as? [String: Any])?["CostMatrix"] as? [String: Any],
                let tp = costs["tpWeight"] as? Double, let fp = costs["fpWeight"] as? Double, let fn = costs["fnWeight"] as? Double
            else { throw .malformed(path, "\(name): expected CostMatrix with tpWeight, fpWeight and fnWeight") }
            profiles.append(NABProfile(name: name, truePositive: tp, falsePositive: fp, falseNegative: fn))
        }
        return Self.scoreboardOrder(profiles)
    }

    /// NAB's profiles first in their scoreboard's order, then the others by name.
    static func scoreboardOrder(_ profiles: [NABProfile]) -> [NABProfile] {
        func rank(_ p: NABProfile) -> Int { NABProfile.publishedOrder.firstIndex(of: p.name) ?? NABProfile.publishedOrder.count }
        return profiles.sorted { (rank($0), $0.name) < (rank($1), $1.name) }
    }

    /// The data file `name` of the corpus.
    public func dataPath(_ name: String) -> String { directory + "/data/" + name }

    /// Writes `text` to the file at `path`, replacing it whole (a results file, a report).
    public static func write(_ text: String, to path: String) throws(NABError) {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw .system("cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// A detector's published thresholds and raw scores per profile, from a file laid out as
    /// NAB's `config/thresholds.json`: `{detector: {profile: {"threshold": θ, "score": S}}}`.
    public static func thresholds(path: String, detector: String) throws(NABError) -> [String: NABThreshold] {
        guard let object = try readJSON(path) as? [String: Any] else { throw .malformed(path, "expected an object of detectors") }
        guard let entry = object[detector] as? [String: Any] else {
            let hint = closest(to: detector, among: Array(object.keys)).map { " (did you mean \($0)?)" } ?? ""
            throw .malformed(path, "no detector '\(detector)'\(hint)")
        }
        var result: [String: NABThreshold] = [:]
        for (profile, value) in entry {
            guard let pair = value as? [String: Any], let threshold = pair["threshold"] as? Double, let score = pair["score"] as? Double else {
                throw .malformed(path, "\(detector).\(profile): expected threshold and score")
            }
            result[profile] = NABThreshold(threshold: threshold, score: score)
        }
        return result
    }

    /// The name of the detector whose results are in directory `results` when none is given:
    /// the directory's own name, as NAB lays out `results/<detector>/`.
    public static func detector(ofResults results: String) -> String { URL(fileURLWithPath: results).lastPathComponent }

    /// Where the detector's results for corpus file `name` are, among the candidates NAB's
    /// layout allows: `<results>/<category>/<detector>_<file>.csv` (NAB's, which its published
    /// detectors and `rnnd-nab detect` write), then `<results>/<category>/<file>.csv` (results
    /// files without the prefix).
    public static func resultsCandidates(results: String, detector: String, name: String) -> [String] {
        let slash = name.lastIndex(of: "/")
        let folder = slash.map { String(name[...$0]) } ?? ""
        let file = slash.map { String(name[name.index(after: $0)...]) } ?? name
        return ["\(results)/\(folder)\(detector)_\(file)", "\(results)/\(name)"]
    }

    /// The detector's results for every file of the corpus, ready to score. `detector` names the
    /// files' prefix (default: the results directory's last component, as in NAB's
    /// `results/numenta/`).
    public func scorer(results: String, detector: String? = nil) throws(NABError) -> NABScorer {
        let detector = detector ?? Self.detector(ofResults: results)
        var series: [NABSeries] = []
        for file in files {
            let candidates = Self.resultsCandidates(results: results, detector: detector, name: file.name)
            guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw .unreadable(candidates[0], "no such file; the results for \(file.name) go there or in \(candidates[1])")
            }
            let (times, scores) = try Self.readResults(path: path)
            do throws(NABError) {
                series.append(try NABSeries(name: file.name, times: times, scores: scores, windowTimes: file.windows))
            } catch {
                if case .malformed(_, let message) = error { throw .malformed(path, message) }
                throw error
            }
        }
        return NABScorer(series: series)
    }

    /// The `timestamp` and `anomaly_score` columns of a detector's results file (a CSV file with a
    /// header; the columns are found by name, the others ignored). Every timestamp must parse and
    /// every score be a finite number.
    public static func readResults(path: String) throws(NABError) -> (times: [Double], scores: [Double]) {
        let bytes: [UInt8]
        do { bytes = try FileContents.read(path) } catch { throw .unreadable(path, error.reason) }
        var reader = CSVRecordReader(bytes: bytes, file: path)
        func next() throws(NABError) -> (line: Int, fields: [String])? {
            do { return try reader.next() } catch {
                throw .malformed(path, (error.line.map { "line \($0): " } ?? "") + error.message)
            }
        }
        guard let header = try next() else { throw .malformed(path, "the file is empty") }
        let names = header.fields.map { CSVTable.trimmed($0).lowercased() }
        guard let t = names.firstIndex(of: "timestamp"), let a = names.firstIndex(of: "anomaly_score") else {
            throw .malformed(path, "expected the columns timestamp and anomaly_score; the header is \(header.fields.joined(separator: ","))")
        }
        var times: [Double] = [], scores: [Double] = []
        while let record = try next() {
            guard record.fields.count == header.fields.count else {
                throw .malformed(path, "line \(record.line): \(record.fields.count) fields, the header has \(header.fields.count)")
            }
            guard let time = Timestamp.parse(record.fields[t]) else {
                throw .malformed(path, "line \(record.line): '\(record.fields[t])' is not a timestamp")
            }
            guard let score = CSVTable.number(record.fields[a]), score.isFinite else {
                throw .malformed(path, "line \(record.line): the anomaly score '\(record.fields[a])' is not a finite number")
            }
            times.append(time)
            scores.append(score)
        }
        return (times, scores)
    }

    /// The JSON value of the file at `path`.
    static func readJSON(_ path: String) throws(NABError) -> Any {
        let bytes: [UInt8]
        do { bytes = try FileContents.read(path) } catch { throw .unreadable(path, error.reason) }
        do { return try JSONSerialization.jsonObject(with: Data(bytes)) } catch {
            throw .malformed(path, "not JSON: \(error.localizedDescription)")
        }
    }
}
