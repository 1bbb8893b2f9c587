#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

import ArgumentParser
import Foundation
import RNNTools
import Synchronization

/// `rnnd-nab`: the Numenta Anomaly Benchmark for rnnd. `score` scores a detector's results files
/// as NAB does; `detect` makes such files from rnnd's anomaly scores, one `rnnd replay` per data
/// file. The scorer is `Sources/RNNTools/NAB/`; bench/README.md says how to run both.
@main
struct NAB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rnnd-nab",
        abstract: "Score anomaly detectors on the Numenta Anomaly Benchmark, and run rnnd as one.",
        subcommands: [Score.self, Detect.self]
    )
}

/// Writes `text` and a line break to stderr, prefixed with the command.
func complain(_ command: String, _ text: String) {
    FileHandle.standardError.write(Data("rnnd-nab \(command): \(text)\n".utf8))
}

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a detector's NAB results: threshold, raw and normalised score, windows detected, false alarms.",
        discussion: """
            For each profile of the corpus's config/profiles.json, finds the one threshold that \
            maximises the raw score over all files (every distinct anomaly score is tried), as \
            NAB's optimiser does, or takes the detector's from --thresholds; then prints the raw \
            and normalised scores at it, the windows detected, the false positives and false \
            positives per day, and the normalised score per category. Exit status 66 when a file \
            cannot be read, 65 when one is malformed.
            """
    )

    @Option(help: ArgumentHelp("The NAB corpus (labels/combined_windows.json, config/profiles.json).", valueName: "dir"))
    var corpus: String

    @Option(help: ArgumentHelp(
        "The detector's results: <dir>/<category>/<detector>_<file>.csv, or <dir>/<category>/<file>.csv.", valueName: "dir"))
    var results: String

    @Option(help: ArgumentHelp("The detector's name, the results files' prefix (default: the results directory's name).", valueName: "name"))
    var detector: String?

    @Option(help: ArgumentHelp(
        "Score at the detector's thresholds in this file (laid out as NAB's config/thresholds.json) instead of optimising them.",
        valueName: "thresholds.json"))
    var thresholds: String?

    @Option(help: ArgumentHelp("Also write the figures as JSON.", valueName: "out.json"))
    var json: String?

    @Option(help: ArgumentHelp(
        "Also write, per profile at its threshold, each window's earliest detection (or, when missed, its highest score) and each false positive, with what each adds to the raw score, as CSV.",
        valueName: "out.csv"))
    var detail: String?

    func run() throws {
        do throws(NABError) {
            let nab = try NABCorpus(directory: corpus)
            let profiles = try nab.profiles()
            let name = detector ?? NABCorpus.detector(ofResults: results)
            let scorer = try nab.scorer(results: results, detector: name)
            var given: [String: Double] = [:]
            if let thresholds {
                let published = try NABCorpus.thresholds(path: thresholds, detector: name)
                for profile in profiles {
                    guard let entry = published[profile.name] else {
                        throw NABError.malformed(thresholds, "\(name) has no threshold for the profile \(profile.name)")
                    }
                    given[profile.name] = entry.threshold
                }
            }
            let report = NABReport(detector: name, scorer: scorer, profiles: profiles, thresholds: given)
            print(report.table(), terminator: "")
            if let json { try NABCorpus.write(report.json(), to: json) }
            if let detail { try NABCorpus.write(scorer.detailCSV(report.entries.map { ($0.evaluation.profile, $0.evaluation.threshold) }), to: detail) }
        } catch {
            complain("score", error.description)
            throw ExitCode(error.exitCode)
        }
    }
}

/// Set by SIGINT or SIGTERM; `detect` stops its replays when it turns true.
let stopRequested = Atomic<Bool>(false)

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run rnnd replay over every NAB data file and write its anomaly scores as NAB results files.",
        discussion: """
            For each file of the corpus (labels/combined_windows.json names them), runs \
            `<rnnd> replay data/<category>/<file>.csv --predictions <tmp> [flags after --]` and \
            writes <out>/<category>/<detector>_<file>.csv (NAB's layout, so that NAB's own scorer \
            reads them from results/<detector>/): timestamp,value,anomaly_score,label, the score \
            being the anomaly column of the row's horizon-1 prediction line (0 while there is none, \
            the first 100 samples) and the label 1 inside an anomaly window. Exit status 1 when a \
            replay fails (its last lines are shown), 130 after Ctrl-C (the replays are stopped), \
            66 when the corpus or rnnd is missing.
            """
    )

    @Option(help: ArgumentHelp("The NAB corpus (labels/combined_windows.json, data/).", valueName: "dir"))
    var corpus: String

    @Option(help: ArgumentHelp("Where the results go, as <dir>/<category>/<detector>_<file>.csv.", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("The detector's name, the results files' prefix (default: the --out directory's name).", valueName: "name"))
    var detector: String?

    @Option(help: ArgumentHelp("The rnnd binary.", valueName: "path"))
    var rnnd = ".build/release/rnnd"

    @Option(help: ArgumentHelp("Replays run at once.", valueName: "n"))
    var jobs = 2

    @Argument(parsing: .postTerminator, help: ArgumentHelp("Flags for every rnnd replay (after --), e.g. -- --hidden 32.", valueName: "flags"))
    var replayFlags: [String] = []

    mutating func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        if let detector, detector.isEmpty || detector.contains("/") {
            throw ValidationError("--detector must be a name: not empty, no '/' (got '\(detector)')")
        }
    }

    func run() throws {
        _ = stopRequested.load(ordering: .relaxed)  // initialised before any handler can run
        signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
        var settings = NABDetectSettings(corpus: corpus, output: out, rnnd: rnnd)
        if let detector { settings.detector = detector }
        settings.jobs = jobs
        settings.replayArguments = replayFlags
        let started = Date()
        do throws(NABError) {
            try NABDetect.run(settings, shouldStop: { stopRequested.load(ordering: .relaxed) }) { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        } catch {
            complain("detect", error.description)
            throw ExitCode(error.exitCode)
        }
        let seconds = Int(Date().timeIntervalSince(started).rounded())
        print("rnnd-nab detect: results in \(out) (\(seconds) s); score them with: rnnd-nab score --corpus \(corpus) --results \(out)\(detector.map { " --detector \($0)" } ?? "")")
    }
}
