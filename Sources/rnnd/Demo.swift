import ArgumentParser
import Foundation
import RNNCore
import RNNDaemon
import RNNTools
import Synchronization

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch rnnd learn two bundled real sensor series, live, and score it against persistence.",
        discussion: """
            Starts this rnnd binary as a daemon (rnnd run, on free loopback ports, with a \
            temporary state directory removed at the end), sends it data/nab/nyc_taxi.csv and \
            data/nab/machine_temperature_system_failure.csv as two streams at --rate rows a \
            second each, receives every forecast, and scores each against the value it forecasts \
            and against persistence (the latest value). On a terminal the view is redrawn in \
            place; otherwise a progress line is printed every 5 s. Then a summary, and the \
            daemon is stopped with SIGTERM. Exit status 0 when the daemon ran and stopped well \
            and every forecast came back, 1 when not, 130 after Ctrl-C (the daemon is stopped \
            then too), 66 when the data files are not found.
            """
    )

    @Option(help: ArgumentHelp("Rows sent per stream (each file has at most its rows).", valueName: "n"))
    var samples = 10_320

    @Option(help: ArgumentHelp("Rows per second per stream.", valueName: "n"))
    var rate = 180.0

    @Option(help: ArgumentHelp("The live scores cover this many latest forecasts of each stream.", valueName: "n"))
    var recent = 500

    @Option(help: "The daemon's recurrent cell: lstm, gru or elman.")
    var model: CellKind = .lstm

    @Option(help: "The daemon's hidden units.")
    var hidden = 64

    @Option(help: ArgumentHelp("The directory that holds nab/ (default: ./data, else the package's data/ next to this binary).", valueName: "directory"))
    var data: String?

    @Flag(help: "Print progress lines even on a terminal.")
    var plain = false

    mutating func validate() throws {
        guard samples >= 2 else { throw ValidationError("--samples must be at least 2") }
        guard rate > 0, rate.isFinite else { throw ValidationError("--rate must be a positive number") }
        guard recent >= 1 else { throw ValidationError("--recent must be at least 1") }
        guard (1...4096).contains(hidden) else { throw ValidationError("--hidden must be from 1 to 4096") }
    }

    func run() throws {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let tried: [String]
        if let data {
            tried = [data]
        } else {
            tried = DemoSeries.candidateDirectories(
                currentDirectory: FileManager.default.currentDirectoryPath,
                executables: [CommandLine.arguments[0], executable])
        }
        guard let directory = DemoSeries.locate(in: tried) else {
            let files = DemoSeries.bundled.map(\.file).joined(separator: " and ")
            let text = "rnnd demo: the bundled data (\(files)) is not in any of these directories:\n"
                + tried.map { "  \($0)\n" }.joined()
                + "Run the demo from the repository (swift run -c release rnnd demo, or scripts/demo), or pass --data DIR.\n"
            FileHandle.standardError.write(Data(text.utf8))
            throw ExitCode(66)  // EX_NOINPUT
        }

        var settings = DemoSettings(executable: executable, dataDirectory: directory)
        settings.samples = samples
        settings.rate = rate
        settings.recent = recent
        settings.cell = model.rawValue
        settings.hidden = hidden
        settings.live = !plain && isatty(STDOUT_FILENO) == 1
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { settings.columns = Int(size.ws_col) }

        let demo: DemoRunner
        do throws(DemoError) {
            demo = try DemoRunner(settings: settings)
        } catch {
            FileHandle.standardError.write(Data("rnnd demo: \(error)\n".utf8))
            throw ExitCode(error.exitCode)
        }
        installStopHandlers()
        // A closed terminal or pipe stops the demo (and so the daemon) instead of killing it.
        signal(SIGPIPE, SIG_IGN)
        var hangup = sigaction()
        hangup.__sigaction_handler.sa_handler = { _ in stopRequested.store(true, ordering: .relaxed) }
        sigaction(SIGHUP, &hangup, nil)

        let code = demo.run(shouldStop: { stopRequested.load(ordering: .relaxed) }) { text in
            // Unbuffered, so that a pipe sees each line as it is made.
            text.utf8CString.withUnsafeBufferPointer { buffer in
                var offset = 0
                let count = buffer.count - 1
                while offset < count {
                    let n = Glibc.write(STDOUT_FILENO, buffer.baseAddress! + offset, count - offset)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return }
                    offset += n
                }
            }
        }
        if code != 0 { throw ExitCode(code) }
    }
}
