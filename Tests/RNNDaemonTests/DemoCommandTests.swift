import Foundation
import Testing

/// `rnnd demo` as a newcomer runs it: the real binary, which starts the real daemon as its child,
/// on the bundled data; small and fast enough for a debug build.
@Suite(.timeLimit(.minutes(2)))
struct DemoCommandTests {
    typealias Command = ReplayCommandTests.Command

    /// The first line of `text` that contains `marker`, from the marker on.
    static func line(_ text: String, _ marker: String) throws -> Substring {
        let line = try #require(text.split(separator: "\n").first { $0.contains(marker) }, "no '\(marker)' in:\n\(text)")
        return line[line.range(of: marker)!.lowerBound...]
    }

    /// The daemon's pid and state directory, from the summary's last lines.
    static func daemon(_ stdout: String) throws -> (pid: pid_t, stateDirectory: String) {
        let pid = try #require(pid_t(try Self.line(stdout, "daemon: pid ").split(separator: " ")[2]))
        let line = try Self.line(stdout, "its state directory ").dropFirst("its state directory ".count)
        let colon = try #require(line.range(of: ": ", options: .backwards))
        return (pid, String(line[..<colon.lowerBound]))
    }

    /// Whether `pid` is an `rnnd run` process (a reused pid is not).
    static func isRunningDaemon(_ pid: pid_t) -> Bool {
        guard let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { return false }
        return String(decoding: cmdline, as: UTF8.self).contains("run\0--sub")
    }

    @Test func runsToTheEndScoresEveryForecastAndCleansUp() throws {
        let command = try Command(["demo", "--samples", "300", "--rate", "150", "--hidden", "8"])
        let status = try command.wait(seconds: 100)
        let out = command.stdout
        #expect(status == 0, "stdout:\n\(out)\nstderr:\n\(command.stderr)")
        #expect(!out.contains("\u{1B}["), "no ANSI codes when stdout is not a terminal")
        #expect(out.contains("rnnd demo: summary: 300 rows per stream sent"), "\(out)")

        // stream, sent, refused, forecasts, scored: a forecast for every sample sent.
        for stream in ["nab/nyc_taxi", "nab/machine_temperature"] {
            let row = try Self.line(out, stream + "  ").split(separator: " ")
            #expect(row.count == 5 && row[1...] == ["300", "0", "300", "299"], "\(row)")
        }
        // Each stream's verdict follows from its row of the second-half table (the first table),
        // its percentage from the two MSEs, and the overall count from the verdicts.
        var wins = 0
        for stream in ["nab/nyc_taxi", "nab/machine_temperature"] {
            let row = try #require(
                out.split(separator: "\n").first { $0.hasPrefix("  \(stream) ") && $0.split(separator: " ").count == 6 }, "\(out)")
            let cells = row.split(separator: " ")
            let model = try #require(Double(cells[1])), persistence = try #require(Double(cells[2]))
            let verdict = try Self.line(out, "\(stream): the model ")
            let beat = verdict.hasPrefix("\(stream): the model BEAT persistence over the second half")
            #expect(beat == (model < persistence), "\(verdict) but MSE \(model) vs persistence \(persistence)")
            if beat { wins += 1 }
            let percent = try #require(Double(try Self.line(out, "(its MSE is ").split(separator: " ")[3].dropLast()), "\(out)")
            if stream == "nab/nyc_taxi" {
                let expected = 100 * abs(1 - model / persistence)
                #expect(abs(percent - expected) <= 1, "\(percent)% printed, \(expected)% from the figures")
            }
        }
        #expect(out.contains("Overall: the model beat persistence on \(wins) of 2 streams"), "\(out)")
        // The bands as the demo counted them from the forecasts' lower and upper: 300 samples
        // give 299 scored forecasts, of which those after the band's warm-up had one.
        for stream in ["nab/nyc_taxi", "nab/machine_temperature"] {
            let line = try Self.line(out, stream + ": bands held ")
            let held = try #require(line.split(separator: " ").dropFirst(3).first.flatMap { Double($0.dropLast()) })
            let of = try #require(line.split(separator: " ").dropFirst(5).first.flatMap { Int($0) })
            #expect(of >= 299 - 22 && of < 299, "\(line)")
            #expect(held > 75 && held <= 100, "\(line)")
        }

        // Persistence over the second half of the taxi forecasts, from the file alone: forecasts
        // 1...299 forecast rows 1...299, the second half is rows 150...299.
        let values = try ReplayCommandTests.taxiValues()
        var sum = 0.0
        for row in 150...299 { sum += (values[row - 1] - values[row]) * (values[row - 1] - values[row]) }
        let halves = out.split(separator: "\n").filter { $0.hasPrefix("  nab/nyc_taxi ") && $0.split(separator: " ").count == 6 }
        #expect(halves.count == 2, "\(out)")
        let printed = try #require(halves.first.flatMap { Double($0.split(separator: " ")[2]) })
        #expect(abs(printed - sum / 150) <= 1e-3 * sum / 150, "persistence MSE \(printed) vs \(sum / 150)")

        // The daemon learned every sample (and the probes), stopped well and left nothing behind.
        let probes = try #require(Int(try Self.line(out, "(with ").split(separator: " ")[1]))
        #expect(out.contains("learned=\(600 + probes) forecasts=\(600 + probes)"), "\(out)")
        let (pid, directory) = try Self.daemon(out)
        #expect(out.contains("stopped with SIGTERM: exit status 0"))
        #expect(!Self.isRunningDaemon(pid), "the daemon (pid \(pid)) is still running")
        #expect(directory.contains("rnnd-demo-") && !FileManager.default.fileExists(atPath: directory))
    }

    @Test func sigintStopsTheDemoAndItsDaemon() throws {
        let command = try Command(["demo", "--samples", "100000", "--rate", "50", "--hidden", "8"])
        let deadline = Date().addingTimeInterval(60)
        while !command.stdout.contains("  feed ") && Date() < deadline && command.process.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let pid = try #require(pid_t(try Self.line(command.stdout, "daemon  pid ").split(separator: " ")[2].dropLast()))
        #expect(Self.isRunningDaemon(pid))
        Thread.sleep(forTimeInterval: 1)
        command.signal(SIGINT)
        #expect(try command.wait(seconds: 60) == 130, "\(command.stdout)\n\(command.stderr)")
        let out = command.stdout
        #expect(out.contains("rnnd demo: summary (interrupted)"), "\(out)")
        let (stopped, directory) = try Self.daemon(out)
        #expect(stopped == pid)
        #expect(out.contains("stopped with SIGTERM: exit status 0"), "\(out)")
        #expect(!Self.isRunningDaemon(pid) && !FileManager.default.fileExists(atPath: directory))
    }

    @Test func saysWhereItLookedForTheData() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("rnnd-no-data-\(UUID())").path
        let result = try ReplayCommandTests.run(["demo", "--data", missing])
        #expect(result.status == 66)
        #expect(result.stderr.contains("is not in any of these directories") && result.stderr.contains(missing), "\(result.stderr)")
    }
}
