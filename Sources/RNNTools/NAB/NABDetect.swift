// `rnnd-nab detect`: rnnd as a NAB detector. Each data file of the corpus goes through the real
// `rnnd replay` binary (docs/replay.md), and its per-row anomaly scores are written as a results
// file in NAB's layout (`results/<detector>/<category>/<detector>_<file>.csv`, the name NAB's
// own scorer derives the data file from), which `rnnd-nab score` or NAB itself scores.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

import Foundation
import RNNBasics
import Synchronization

/// What `rnnd-nab detect` runs.
public struct NABDetectSettings: Sendable {
    /// The NAB corpus directory (``NABCorpus``).
    public var corpus: String
    /// Where the results go: `<output>/<category>/<detector>_<file>.csv`.
    public var output: String
    /// The detector's name, the results files' prefix: by default the output directory's name,
    /// as NAB lays out `results/<detector>/`.
    public var detector: String
    /// The `rnnd` binary.
    public var rnnd: String
    /// Replays run at once.
    public var jobs = 2
    /// Flags added to every `rnnd replay` (the model's, `--config`, ...).
    public var replayArguments: [String] = []

    public init(corpus: String, output: String, rnnd: String) {
        self.corpus = corpus
        self.output = output
        self.rnnd = rnnd
        detector = NABCorpus.detector(ofResults: output)
    }

    /// Where the results of corpus file `name` (`<category>/<file>.csv`) go.
    public func resultsPath(_ name: String) -> String {
        NABCorpus.resultsCandidates(results: output, detector: detector, name: name)[0]
    }
}

/// Runs `rnnd replay` over every data file of the NAB corpus and writes NAB results files.
public enum NABDetect {
    /// Replays every file of the corpus, `settings.jobs` at a time, in the order of their names,
    /// and writes `<output>/<category>/<detector>_<file>.csv` for each (``resultsCSV(name:data:predictions:windows:)``).
    /// `progress` receives a line per file done. When a replay fails no other one starts, those
    /// running finish, and the first failure (in file order) is thrown; when `shouldStop()` turns
    /// true (SIGINT), the running replays are stopped and ``NABError/interrupted`` thrown.
    public static func run(
        _ settings: NABDetectSettings, shouldStop: @escaping @Sendable () -> Bool, progress: @escaping @Sendable (String) -> Void
    ) throws(NABError) {
        guard FileManager.default.isExecutableFile(atPath: settings.rnnd) else {
            throw .unreadable(settings.rnnd, "not an executable rnnd; build it (swift build -c release) or pass --rnnd PATH")
        }
        let corpus = try NABCorpus(directory: settings.corpus)
        for file in corpus.files where !FileManager.default.fileExists(atPath: corpus.dataPath(file.name)) {
            throw .unreadable(corpus.dataPath(file.name), "the data file of \(file.name) (labels/combined_windows.json names it) is missing")
        }
        let work = Work()
        let group = DispatchGroup()
        for j in 0..<max(1, min(settings.jobs, corpus.files.count)) {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                while !shouldStop() && !work.failed {
                    let i = work.next.withLock { next in
                        defer { next += 1 }
                        return next
                    }
                    guard i < corpus.files.count else { return }
                    let started = Date()
                    do throws(NABError) {
                        let rows = try detect(corpus: corpus, file: corpus.files[i], settings: settings, shouldStop: shouldStop)
                        let done = work.done.withLock { done in
                            done += 1
                            return done
                        }
                        let seconds = format(Date().timeIntervalSince(started), 1)
                        progress("[\(done)/\(corpus.files.count)] \(corpus.files[i].name): \(rows) rows in \(seconds) s")
                    } catch {
                        work.failures.withLock { $0.append((i, error)) }
                        return
                    }
                }
            }
            thread.name = "rnnd-nab-\(j)"
            thread.start()
        }
        group.wait()
        if shouldStop() { throw .interrupted }
        if let failure = work.failures.withLock({ $0.min { $0.0 < $1.0 } }) { throw failure.1 }
    }

    /// What the replaying threads share: the next file to take, the files done, the failures.
    final class Work: Sendable {
        let next = Mutex(0)
        let done = Mutex(0)
        let failures = Mutex<[(Int, NABError)]>([])

        var failed: Bool { failures.withLock { !$0.isEmpty } }
    }

    /// Replays one data file into a predictions file beside its results file, converts it, and
    /// removes it; returns the rows written.
    static func detect(corpus: NABCorpus, file: NABCorpus.File, settings: NABDetectSettings, shouldStop: () -> Bool) throws(NABError) -> Int {
        let dataPath = corpus.dataPath(file.name)
        let outputPath = settings.resultsPath(file.name)
        let folder = URL(fileURLWithPath: outputPath).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw .system("cannot create \(folder.path): \(error.localizedDescription)")
        }
        let predictionsPath = folder.appendingPathComponent("." + URL(fileURLWithPath: outputPath).lastPathComponent + ".predictions").path
        defer { try? FileManager.default.removeItem(atPath: predictionsPath) }
        let child: ChildProcess
        do throws(DemoError) {
            child = try ChildProcess(executable: settings.rnnd, arguments: ["replay", dataPath, "--predictions", predictionsPath] + settings.replayArguments)
        } catch {
            throw .system(error.description)
        }
        let status = child.wait(stoppingWhen: shouldStop)
        if shouldStop() { throw .interrupted }
        guard ChildProcess.succeeded(status) else {
            let tail = child.log.split(separator: "\n", omittingEmptySubsequences: false).suffix(12).joined(separator: "\n")
            throw .replay(file.name, "rnnd replay \(dataPath) ended with \(ChildProcess.describe(status)); it said:\n\(tail)")
        }
        func read(_ path: String) throws(NABError) -> [UInt8] {
            do { return try FileContents.read(path) } catch { throw .unreadable(path, error.reason) }
        }
        let (text, rows) = try resultsCSV(name: file.name, data: (dataPath, try read(dataPath)),
            predictions: (predictionsPath, try read(predictionsPath)), windows: file.windows)
        try NABCorpus.write(text, to: outputPath)
        return rows
    }

    /// The NAB results file of one data file, and its rows: `timestamp,value,anomaly_score,label`,
    /// one line per data row, the timestamp and value as the data file has them; the anomaly score
    /// is the `anomaly` column of the predictions' `horizon` 1 line for that `row` (the 0-based
    /// data row; docs/replay.md), 0 where it is empty (the first 100 samples, no band yet) or
    /// absent (a row the stream refused); the label is 1 inside one of `windows`, else 0.
    static func resultsCSV(
        name: String, data: (path: String, bytes: [UInt8]), predictions: (path: String, bytes: [UInt8]),
        windows: [(start: Double, end: Double)]
    ) throws(NABError) -> (text: String, rows: Int) {
        let dataTable = try records(data.path, data.bytes, columns: ["timestamp", "value"])
        var times: [Double] = []
        for (line, fields) in dataTable {
            guard let time = Timestamp.parse(fields[0]) else { throw .malformed(data.path, "line \(line): '\(fields[0])' is not a timestamp") }
            times.append(time)
        }
        let series = try NABSeries(name: name, times: times, scores: [Double](repeating: 0, count: times.count), windowTimes: windows)
        var anomaly = [String?](repeating: nil, count: times.count)
        for (line, fields) in try records(predictions.path, predictions.bytes, columns: ["row", "horizon", "anomaly"]) {
            guard let row = Int(fields[0]), row >= 0, row < times.count, let horizon = Int(fields[1]) else {
                throw .malformed(predictions.path, "line \(line): row '\(fields[0])' of a file of \(times.count) rows, horizon '\(fields[1])'")
            }
            let score = CSVTable.trimmed(fields[2])
            guard horizon == 1, !score.isEmpty else { continue }
            guard let value = Double(score), value.isFinite else {
                throw .malformed(predictions.path, "line \(line): the anomaly score '\(score)' is not a finite number")
            }
            anomaly[row] = String(score)
        }
        var text = "timestamp,value,anomaly_score,label\n"
        for (r, (_, fields)) in dataTable.enumerated() {
            let label = series.isInWindow(r) ? "1" : "0"
            text += "\(csvField(fields[0])),\(csvField(fields[1])),\(anomaly[r] ?? "0"),\(label)\n"
        }
        return (text, times.count)
    }

    /// The named columns of every record of a CSV file with a header: (line, fields in the order of `columns`).
    static func records(_ path: String, _ bytes: [UInt8], columns: [String]) throws(NABError) -> [(Int, [String])] {
        var reader = CSVRecordReader(bytes: bytes, file: path)
        func next() throws(NABError) -> (line: Int, fields: [String])? {
            do { return try reader.next() } catch { throw .malformed(path, (error.line.map { "line \($0): " } ?? "") + error.message) }
        }
        guard let header = try next() else { throw .malformed(path, "the file is empty") }
        let names = header.fields.map { CSVTable.trimmed($0).lowercased() }
        var indices: [Int] = []
        for column in columns {
            guard let k = names.firstIndex(of: column) else {
                throw .malformed(path, "no column '\(column)'; the header is \(header.fields.joined(separator: ","))")
            }
            indices.append(k)
        }
        var result: [(Int, [String])] = []
        while let record = try next() {
            guard record.fields.count == header.fields.count else {
                throw .malformed(path, "line \(record.line): \(record.fields.count) fields, the header has \(header.fields.count)")
            }
            result.append((record.line, indices.map { record.fields[$0] }))
        }
        return result
    }
}
