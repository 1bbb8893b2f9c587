import Foundation
import RNNCore
import RNNWire
@testable import RNNTools
import Testing

/// `rnnd replay`'s core: the scores, persistence, warm-up, and the predictions it writes.
@Suite(.timeLimit(.minutes(1)))
struct ReplayTests {
    /// A small, fast model (debug builds of the core are slow): Elman, 8 units.
    static func configuration(horizon: Int = 1, lr: Double = 0.01, window: Int = 8) -> ModelConfiguration {
        var c = ModelConfiguration()
        c.cell = .elman
        c.hidden = 8
        c.window = window
        c.horizon = horizon
        c.learningRate = lr
        return c
    }

    /// A CSV file of `columns` named columns with an hourly time axis.
    static func csv(_ columns: [String], rows: Int, value: (Int, Int) -> Double) -> CSVTable {
        let names = columns.map { $0.contains(",") ? "\"\($0)\"" : $0 }
        var text = (["time"] + names).joined(separator: ",") + "\n"
        for r in 0..<rows {
            text += Timestamp.iso8601(1_467_331_200 + 3600 * Double(r))
            for j in columns.indices { text += ",\(value(r, j))" }
            text += "\n"
        }
        return try! CSVTable(bytes: Array(text.utf8), file: "generated.csv")
    }

    struct Line: Equatable {
        var row: Int
        var horizon: Int
        var values: [String]
        /// Lower and upper bound per target ("" without a band), and the anomaly score.
        var bounds: [String]
        var anomaly: String
    }

    /// Replays and collects the predictions file's lines, parsed back from their text.
    func replay(_ table: CSVTable, _ configuration: ModelConfiguration, _ settings: ReplaySettings = .init())
        throws -> (Replayer, ReplayReport, [Line])
    {
        let replayer = try Replayer(table: table, model: configuration, settings: settings)
        var lines: [Line] = []
        let report = replayer.run(prediction: { p in
            let text = Replayer.predictionLine(p)
            let fields = text.dropLast().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let k = p.values.count
            lines.append(Line(
                row: Int(fields[0])!, horizon: Int(fields[1])!, values: Array(fields[2..<(2 + k)]),
                bounds: Array(fields[(2 + k)..<(2 + 3 * k)]), anomaly: fields[2 + 3 * k]))
        })
        return (replayer, report, lines)
    }

    @Test func persistenceOfARampIsExact() throws {
        // x_r = 2r: persistence at horizon h is off by exactly 2h on every scored row.
        let table = Self.csv(["x"], rows: 60) { r, _ in 2 * Double(r) }
        let (_, report, lines) = try replay(table, Self.configuration(horizon: 3))
        for h in 1...3 {
            let e = report.horizonStep(h)
            #expect(e.persistence.count == 60 - h)
            #expect(e.persistence.mse == Double(4 * h * h))
            #expect(e.persistence.mae == Double(2 * h))
        }
        #expect(report.overall.persistence.count == 59 + 58 + 57)
        #expect(lines.count == 59 + 58 + 57)
        #expect(lines.first?.row == 1 && lines.first?.horizon == 1)
        #expect(lines.map(\.row) == lines.map(\.row).sorted(), "in order of the row forecast")
        #expect(report.firstScoredRow == 1)
    }

    @Test func reportedScoresAreThoseOfThePredictions() throws {
        // Two inputs, one of them the target, horizon 2: recompute everything from the lines.
        let table = Self.csv(["a", "b"], rows: 200) { r, j in
            j == 0 ? sin(Double(r) * 0.3) * 10 + 3 : cos(Double(r) * 0.11) + Double(r % 7) * 0.01
        }
        let (replayer, report, lines) = try replay(table, Self.configuration(horizon: 2), ReplaySettings(targets: ["b"]))
        #expect(replayer.model.targets == [1])
        #expect(replayer.model.outputs == 2)
        #expect(report.targets == ["b"])
        let actual = table.columns[1].values
        var cells = [[(Double, Double, Int)]](repeating: [(0, 0, 0)], count: 2)
        var persistence = [(Double, Double)](repeating: (0, 0), count: 2)
        var bands = [BandFigures](repeating: BandFigures(), count: 2)
        for line in lines {
            #expect(line.values.count == 1)
            let f = Double(Float(line.values[0])!)
            let e = f - actual[line.row]
            cells[line.horizon - 1][0].0 += e * e
            cells[line.horizon - 1][0].1 += abs(e)
            cells[line.horizon - 1][0].2 += 1
            if let lower = Float(line.bounds[0]), let upper = Float(line.bounds[1]) {
                bands[line.horizon - 1].count += 1
                if Double(lower) <= actual[line.row] && actual[line.row] <= Double(upper) { bands[line.horizon - 1].covered += 1 }
            }
            let p = actual[line.row - line.horizon] - actual[line.row]
            persistence[line.horizon - 1].0 += p * p
            persistence[line.horizon - 1].1 += abs(p)
        }
        for h in 1...2 {
            let e = report.horizonStep(h)
            let (sq, ab, n) = cells[h - 1][0]
            #expect(n == 200 - h && e.model.count == n)
            #expect(e.model.mse == sq / Double(n))
            #expect(e.model.mae == ab / Double(n))
            #expect(e.persistence.mse == persistence[h - 1].0 / Double(n))
            #expect(e.persistence.mae == persistence[h - 1].1 / Double(n))
            #expect(e.bands.count == bands[h - 1].count && e.bands.covered == bands[h - 1].covered)
            #expect(e.bands.count >= n - Forecaster.bandWarmup - h - 1, "a band from the warm-up on: \(e.bands.count) of \(n)")
        }
        let all = cells.map { $0[0] }
        let total = (all[0].0 + all[1].0, all[0].1 + all[1].1, all[0].2 + all[1].2)
        #expect(report.overall.model.mse == total.0 / Double(total.2))
        #expect(report.overall.model.mae == total.1 / Double(total.2))
        #expect(report.target(0) == report.overall)
    }

    @Test func theForecastsAreThoseOfTheDaemonsModel() throws {
        // The same configuration and samples through a Forecaster driven by hand, as the
        // daemon's worker drives it: predict (with the sample's time), record, learn.
        let table = Self.csv(["a", "b"], rows: 80) { r, j in Double(r % 11) * 0.37 + Double(j) * 1.000000001 }
        let configuration = Self.configuration(horizon: 2)
        let (replayer, _, lines) = try replay(table, configuration)
        var model = configuration
        model.inputs = 2
        let forecaster = Forecaster(configuration: model)
        var forecasts: [[Float]] = [], bounds: [[Float]] = [], scores: [Double?] = []
        for r in 0..<80 {
            let x = [Float(table.columns[0].values[r]), Float(table.columns[1].values[r])]
            x.withUnsafeBufferPointer { _ = forecaster.predict($0.baseAddress!, time: replayer.samples.timestamp(r)) }
            forecasts.append(Array(forecaster.forecast))
            bounds.append(Array(forecaster.lower) + Array(forecaster.upper))
            scores.append(forecaster.anomaly)
            forecaster.learn()
        }
        #expect(lines.count == 79 + 78)
        func text(_ v: Float) -> String { v.isNaN ? "" : v.description }
        for line in lines {
            let r = line.row - line.horizon, at = 2 * (line.horizon - 1)
            #expect(line.values == forecasts[r][at..<(at + 2)].map(text), "row \(line.row) h \(line.horizon)")
            let b = bounds[r]
            #expect(line.bounds == [b[at], b[4 + at], b[at + 1], b[4 + at + 1]].map(text), "row \(line.row) h \(line.horizon)")
            #expect(line.anomaly == (line.horizon == 1 ? scores[line.row].map { Float($0).description } ?? "" : ""))
        }
    }

    @Test func theFinalStateIsTheStreamsScales() throws {
        // Recomputed from the file and the predictions alone: the normaliser's mean and standard
        // deviation and the change unit (no forgetting by default), the bands' scale (the running
        // mean absolute error of the published forecast, forgetting 0.99, per output) and the
        // drift detector's (0.999, step 1 only), each error counting up to 5 scales (docs/numerics.md,
        // "Outliers and level shifts").
        let rows = 300
        let table = Self.csv(["a", "b"], rows: rows) { r, j in
            Double(r % 17) * 0.61 + Double((r * 7) % 5) * Double(j + 1) + (r == 150 ? 40 : 0)
        }
        let (_, report, lines) = try replay(table, Self.configuration(horizon: 2))
        let state = try #require(report.finalState)
        let columns: [[Double]] = (0..<2).map { j in (0..<rows).map { r in Double(Float(table.columns[j].values[r])) } }
        #expect(state.samples == rows)
        for j in 0..<2 {
            let x: [Double] = columns[j]
            var sum = 0.0, squares = 0.0, changes = 0.0
            for v in x { sum += v }
            let mean = sum / Double(rows)
            for v in x { squares += (v - mean) * (v - mean) }
            for r in 1..<rows {
                let change: Double = x[r] - x[r - 1]
                changes += change * change
            }
            let std = (squares / Double(rows)).squareRoot()
            let unit = (changes / Double(rows - 1)).squareRoot()
            #expect(abs(state.inputMeans[j] - mean) <= 1e-9 * abs(mean), "input \(j)")
            #expect(abs(state.inputScales[j] - std) <= 1e-9 * std, "input \(j)")
            #expect(abs(state.changeUnits[j] - unit) <= 1e-9 * unit, "input \(j)")
        }
        // Lines come in order of the sample they are for, then of the step, as the forecaster
        // resolves them.
        var band = [Double](repeating: 0, count: 4), drift = [Double](repeating: 0, count: 2)
        for line in lines {
            for j in 0..<2 {
                let error = abs(Double(Float(line.values[j])!) - columns[j][line.row])
                let o = (line.horizon - 1) * 2 + j
                // The bands' scale forgets at 0.99 at step 1, 0.998 beyond (docs/numerics.md, "Bands").
                let keep = line.horizon == 1 ? 0.99 : 0.998
                band[o] = band[o] == 0 ? error : keep * band[o] + (1 - keep) * min(error, 5 * band[o])
                if line.horizon == 1 { drift[j] = drift[j] == 0 ? error : 0.999 * drift[j] + 0.001 * min(error, 5 * drift[j]) }
            }
        }
        for o in 0..<4 { #expect(abs(state.bandScales[o] - band[o]) <= 1e-4 * band[o], "output \(o)") }
        for j in 0..<2 { #expect(abs(state.driftErrorScales[j] - drift[j]) <= 1e-4 * drift[j], "target \(j)") }
        #expect(state.combinationErrorScales.count == 4 && state.combinationErrorScales.allSatisfy { $0 > 0 })

        // In the JSON, per input and per target, one number per step for the per-output scales.
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        let final = try #require(object["final_state"] as? [String: Any])
        let inputs = try #require(final["inputs"] as? [[String: Any]])
        let targets = try #require(final["targets"] as? [[String: Any]])
        // (Through JSON text and back a double may move by an ulp or so.)
        func close(_ a: [Double]?, _ b: [Double]) -> Bool {
            guard let a, a.count == b.count else { return false }
            return zip(a, b).allSatisfy { abs($0 - $1) <= 1e-12 * abs($1) }
        }
        #expect(inputs.map { $0["input"] as? String } == ["a", "b"])
        #expect(close((inputs[1]["change_unit"] as? Double).map { [$0] }, [state.changeUnits[1]]))
        #expect(close(targets[1]["band_scale"] as? [Double], [state.bandScales[1], state.bandScales[3]]))
        #expect(close(targets[0]["combination_error_scale"] as? [Double], [state.combinationErrorScales[0], state.combinationErrorScales[2]]))
        #expect(close((targets[1]["drift_scale"] as? Double).map { [$0] }, [state.driftErrorScales[1]]))
    }

    @Test func theModelBeatsPersistenceOnALearnableSeries() throws {
        // A sine of period 8: persistence is far off; the recurrent model learns the cycle.
        let table = Self.csv(["x"], rows: 3000) { r, _ in sin(2 * Double.pi * Double(r) / 8) }
        var configuration = Self.configuration(lr: 0.01)
        configuration.hidden = 12
        let (_, report, _) = try replay(table, configuration)
        let last = report.overall
        #expect(last.persistence.mse! > 0.25)
        #expect(last.model.mse! < 0.5 * last.persistence.mse!, "model \(last.model.mse!) persistence \(last.persistence.mse!)")
        #expect(last.skill! > 0.5)
    }

    @Test func warmupRowsAreTrainedOnButNotScored() throws {
        let table = Self.csv(["x"], rows: 100) { r, _ in Double(r % 9) }
        let settings = ReplaySettings(warmupRows: 30, warmupEpochs: 3)
        let (replayer, report, lines) = try replay(table, Self.configuration(horizon: 2), settings)
        #expect(report.steps == 3 * 30 + 70)
        #expect(report.horizonStep(1).model.count == 70)
        #expect(report.horizonStep(2).model.count == 70, "row 30's forecast 2 ahead was made at row 28, in the last pass")
        #expect(lines.map(\.row).min() == 30)
        #expect(lines.count == 140)
        #expect(report.firstScoredRow == 30)
        #expect(replayer.scoredRows.first == 30)
        // One pass is not three.
        let (_, once, _) = try replay(table, Self.configuration(horizon: 2), ReplaySettings(warmupRows: 30, warmupEpochs: 1))
        #expect(once.steps == 100)
        #expect(once.overall.model != report.overall.model)
        #expect(once.overall.persistence == report.overall.persistence)
        // Warm-up that leaves nothing to score is refused.
        #expect(throws: ReplayError.self) {
            _ = try Replayer(table: table, model: Self.configuration(), settings: ReplaySettings(warmupRows: 100))
        }
    }

    /// A file of 5-minute samples with clock faults: one row stamped in 2100, a gap of a day,
    /// the clock set back an hour, and ten timestamps sent twice.
    static func faultyClockFile() -> (table: CSVTable, times: [Double]) {
        var times: [Double] = []
        var t = 1_700_000_000.0
        func next(_ n: Int) { for _ in 0..<n { t += 300; times.append(t) } }
        next(100)
        times.append(4_102_444_800)  // 2100-01-01: refused as future_time, the rows after go on
        next(50)
        t += 86_400  // a real gap of a day: nothing refused
        next(50)
        t -= 3600  // the clock set back an hour: two out_of_order, then the new clock
        next(50)
        for _ in 0..<10 {  // each timestamp twice: one duplicate_timestamp each
            t += 300
            times += [t, t]
        }
        next(20)
        var text = "time,x\n"
        for (i, time) in times.enumerated() { text += "\(Timestamp.iso8601(time)),\(sin(Double(i) / 10))\n" }
        return (try! CSVTable(bytes: Array(text.utf8), file: "clock.csv"), times)
    }

    @Test func clockFaultsCostTheDocumentedRefusals() throws {
        let (table, times) = Self.faultyClockFile()
        let (replayer, report, _) = try replay(table, Self.configuration())
        #expect(report.refused == ["future_time": 1, "out_of_order": 2, "duplicate_timestamp": 10], "\(report.refused)")
        #expect(report.clockResets == 1)
        #expect(report.samples == times.count - 13)
        // Printed and written as the other refusals are.
        #expect(report.table().contains("refused as the daemon would: duplicate_timestamp=10 future_time=1 out_of_order=2"), "\(report.table())")
        #expect(report.table().contains("clock set back and accepted as the daemon would: 1 time"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        #expect(json["clock_resets"] as? Int == 1)
        #expect(json["refused"] as? [String: Int] == ["future_time": 1, "out_of_order": 2, "duplicate_timestamp": 10])
        #expect(!replayer.samples.time.contains(4_102_444_800), "the far-future row is not learned")
        #expect(replayer.samples.rows[100] == 101, "the row after the far-future one is")
        // With the daemon's old rule (no future check, no clock reset) the row in 2100 locks the file.
        let locked = try Replayer(
            table: table, model: Self.configuration(), settings: ReplaySettings(clock: ClockPolicy(maxSkew: 0, resetAfter: 0)))
        #expect(locked.samples.count == 101 && locked.refused["out_of_order"] == times.count - 101)
        // Warm-up passes jump back to the first row on purpose: nothing more is refused.
        let warm = try Replayer(table: table, model: Self.configuration(), settings: ReplaySettings(warmupRows: 150, warmupEpochs: 2))
        #expect(warm.refused == report.refused && warm.clockResets == 1)
        let warmReport = warm.run()
        #expect(warmReport.steps == 2 * 150 + (report.samples - 150))
    }

    @Test func tailShowsTheInstantsAForecastIsFor() {
        let payload = #"{"stream":"s","seq":2,"t":1467331200,"horizon":2,"at":[1467331500,1467331800.5],"forecast":[[1.0],[2.0]],"updates":1}"#
        let line = ForecastLine.format(topic: Array("s".utf8), payload: Array(payload.utf8))
        #expect(line.hasPrefix("2016-07-01T00:00:00Z  s  seq=2  forecast="), "\(line)")
        #expect(line.hasSuffix("  at=2016-07-01T00:05:00Z…2016-07-01T00:10:00.500Z  updates=1"), "\(line)")
    }

    @Test func rowsTheDaemonWouldRefuseAreLeftOut() throws {
        let text = """
            time,x
            2016-07-01 00:00:00,1
            2016-07-01 01:00:00,2
            2016-07-01 00:30:00,3
            2016-07-01 01:00:00,4
            2016-07-01 02:00:00,1e39
            2016-07-01 03:00:00,5
            """
        let table = try CSVTable(bytes: Array(text.utf8), file: "t.csv")
        let (replayer, report, lines) = try replay(table, Self.configuration())
        #expect(report.refused == ["out_of_order": 1, "duplicate_timestamp": 1, "non_finite_value": 1])
        #expect(report.samples == 3)
        #expect(replayer.samples.rows == [0, 1, 5])
        #expect(lines.map(\.row) == [1, 5])
        #expect(report.horizonStep(1).persistence.mae == 2.0, "|1 - 2| and |2 - 5|")
    }

    /// The missing-cell policy is the daemon's (ChannelWatch): a missing cell takes its column's
    /// previous accepted value; a row with every cell missing, and one with a missing cell of a
    /// column with no value yet, are refused under the daemon's reasons.
    @Test func missingCellsAreCarriedAsTheDaemonCarriesThem() throws {
        let text = """
            time,a,b
            2016-07-01 00:00:00,,10
            2016-07-01 01:00:00,1,
            2016-07-01 02:00:00,2,20
            2016-07-01 03:00:00,,NA
            2016-07-01 04:00:00,,30
            2016-07-01 05:00:00,4,nan
            2016-07-01 06:00:00,5,50
            """
        let table = try CSVTable(bytes: Array(text.utf8), file: "t.csv")
        let (replayer, report, _) = try replay(table, Self.configuration())
        #expect(report.refused == ["nothing_to_carry": 2, "all_channels_missing": 1], "rows 0 and 1 (10 was never accepted), row 3")
        #expect(report.skippedRows == 2)
        #expect(replayer.samples.rows == [2, 4, 5, 6])
        #expect(replayer.samples.values == [2, 20, 2, 30, 4, 30, 5, 50])
        #expect(report.carried == [1, 1])
        #expect(report.table().contains("missing cells carried forward: a 1, b 1"))
        #expect(report.table().contains("all_channels_missing=1 nothing_to_carry=2"))
        let json = report.json()
        #expect(json.contains(#""carried":{"#) && json.contains(#""skipped_rows":2"#), "\(json)")
    }

    /// A column frozen far longer than its usual runs is counted as stuck: its episodes and rows.
    @Test func stuckColumnsAreCounted() throws {
        let rows = ChannelWatch.minimumHistory + 100
        // a changes every row but for 40 rows at one value; b always changes.
        let table = Self.csv(["a", "b"], rows: rows) { r, j in
            j == 1 ? Double(r) : (r >= 300 && r < 340 ? 7.5 : Double(r % 4))
        }
        let (_, report, _) = try replay(table, Self.configuration())
        // Stuck from its 31st equal value, row 330, to its change at row 340.
        #expect(report.stuckEpisodes == [1, 0] && report.stuckRows == [10, 0])
        #expect(report.stuckText == "a 1 episode over 10 rows")
        #expect(report.table().contains("  stuck: a 1 episode over 10 rows"))
        let json = report.json()
        #expect(json.contains(#""stuck_episodes":{"#) && json.contains(#""stuck_rows":{"#), "\(json)")
    }

    /// The model's experts as the replay's JSON and its text name them: those on, and of those
    /// only the ones `experts` includes.
    @Test func theExpertsCombinedAreNamed() throws {
        var c = Self.configuration(horizon: 3)
        c.directLookback = 8
        c.experts = [.persistence, .network, .direct]
        let table = Self.csv(["a"], rows: 30) { r, _ in Double(r % 7) }
        let (_, report, _) = try replay(table, c)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        let model = try #require(object["model"] as? [String: Any])
        #expect(model["direct_lookback"] as? Int == 8 && model["experts"] as? [String] == ["persistence", "network", "direct"])
        #expect(ReplayReport.describe(c).contains(", ensemble (persistence, network, direct 8 samples), "), "\(ReplayReport.describe(c))")
        c.experts = nil
        c.linearLags = 0
        c.directLookback = 0
        #expect(ReplayReport.describe(c).contains(", ensemble (persistence, smoothing, network, seasonal), "), "\(ReplayReport.describe(c))")
        let one = try replay(table, Self.configuration()).1
        let oneModel = try #require((try JSONSerialization.jsonObject(with: Data(one.json().utf8)) as? [String: Any])?["model"] as? [String: Any])
        #expect(oneModel["direct_lookback"] as? Int == 0 && oneModel["experts"] as? [String] == ["persistence", "smoothing", "linear", "network"])
        // Each expert alone: the direct expert only when there is one (its column is persistence's without).
        #expect(report.table().contains(", direct "), "\(report.table())")
        #expect(!one.table().contains("direct"), "\(one.table())")
    }

    @Test func outputsAreWellFormed() throws {
        let table = Self.csv(["a", "b,c"], rows: 40) { r, j in Double(r * (j + 1)) }
        let (replayer, report, _) = try replay(table, Self.configuration(horizon: 2))
        #expect(replayer.predictionsHeader == "row,horizon,a,\"b,c\",a_lower,a_upper,\"b,c_lower\",\"b,c_upper\",anomaly,a_anomaly,\"b,c_anomaly\"\n")
        let json = report.json(firstTime: replayer.timeSpan?.first, lastTime: replayer.timeSpan?.last)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["horizon"] as? Int == 2)
        #expect((object["per_horizon"] as? [Any])?.count == 2)
        #expect((object["per_target"] as? [Any])?.count == 2)
        let overall = try #require(object["overall"] as? [String: Any])
        let persistence = try #require(overall["persistence"] as? [String: Any])
        #expect(persistence["mse"] as? Double == report.overall.persistence.mse)
        #expect(object["first_time"] as? Double == 1_467_331_200)
        // Beyond horizon 1 the direct expert is on, with its derived look-back, and the seasonal one.
        let settings = try #require(object["model"] as? [String: Any])
        #expect(settings["direct_lookback"] as? Int == 672)
        #expect(settings["experts"] as? [String] == ["persistence", "smoothing", "linear", "network", "direct", "seasonal"])
        // JSON has no NaN or infinity: such a figure is null, and a missing one too; the keys stay.
        var odd = report
        odd.seconds = .nan
        odd.model.coverage = .infinity
        odd.seasonalLag = nil
        let nulls = try #require(try JSONSerialization.jsonObject(with: Data(odd.json().utf8)) as? [String: Any])
        let model = try #require(nulls["model"] as? [String: Any])
        #expect(nulls["seconds"] is NSNull && model["coverage"] is NSNull)
        #expect(nulls["first_time"] is NSNull && nulls["from"] is NSNull && nulls["seasonal_lag"] is NSNull)

        let text = report.table()
        #expect(text.contains("MSE model") && text.contains("overall") && text.contains("h=2") && text.contains("b,c"))

        let svg = replayer.plot(target: 1, range: 0..<39)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.hasSuffix("</svg>\n"))
        #expect(svg.contains("forecast (h=1)") && svg.contains("<polyline"))
    }
}
