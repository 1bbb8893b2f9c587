@testable import RNNTools
import Testing

/// The CSV reader of `rnnd replay` and `rnnd feed`: RFC 4180 records, the time axis, numeric
/// columns, the missing-cell policy, and errors that name the file and the line.
@Suite(.timeLimit(.minutes(1)))
struct CSVTableTests {
    func table(_ text: String) throws -> CSVTable {
        try CSVTable(bytes: Array(text.utf8), file: "test.csv")
    }

    func refusal(_ text: String) -> CSVError? {
        do {
            _ = try table(text)
            return nil
        } catch let error as CSVError {
            return error
        } catch {
            return nil
        }
    }

    // MARK: timestamps

    /// Known Unix times (from an independent calendar: `calendar.timegm` of CPython).
    @Test(arguments: [
        ("1970-01-01 00:00:00", 0.0),
        ("1969-12-31 23:59:59", -1),
        ("1900-03-01 00:00:00", -2_203_891_200),   // 1900 is not a leap year
        ("2000-02-29 12:00:00", 951_825_600),      // 2000 is
        ("2016-07-01 00:00:00", 1_467_331_200),
        ("2016-07-01T00:00:00", 1_467_331_200),
        ("2016-07-01t00:00:00Z", 1_467_331_200),
        ("2016-07-01 00:00", 1_467_331_200),
        ("2016-07-01", 1_467_331_200),
        ("2016-12-31 23:59:59", 1_483_228_799),
        ("2038-01-19 03:14:08", 2_147_483_648),
        ("2400-02-29 00:00:00", 13_574_563_200),
        ("1600-01-01 00:00:00", -11_676_096_000),
        ("2016-07-01T02:00:00+02:00", 1_467_331_200),
        ("2016-06-30T18:30:00-05:30", 1_467_331_200),
        ("2016-07-01T02:00:00+0200", 1_467_331_200),
        ("2016-07-01T02:00:00+02", 1_467_331_200),
        ("2016-07-01T00:00:00.25Z", 1_467_331_200.25),
        ("2016-07-01 00:00:00,5", 1_467_331_200.5),
        ("  2016-07-01 00:00:00 ", 1_467_331_200),
        ("7/1/2016 0:00", 1_467_331_200),
        ("07/01/2016 00:00", 1_467_331_200),
        ("7/1/2016", 1_467_331_200),
        ("12/31/2016 23:59:59", 1_483_228_799),
        ("2/29/2000 12:00", 951_825_600),
    ])
    func parsesTimestamps(text: String, expected: Double) {
        #expect(Timestamp.parse(text) == expected, "\(text)")
    }

    @Test(arguments: [
        "", "2016", "12", "1467331200", "2016-07-01 24:00:00", "2016-02-30", "2015-02-29", "2016-13-01",
        "2016-00-10", "2016-07-01 00:60", "2016-07-01T00:00:00+2", "2016-07-01T00:00:00+24:00", "7/1/16 0:00",
        "13/1/2016", "7/1/2016T00:00", "7/1/2016 0:00Z", "2016-07-01 0:00", "2016/07/01", "2016-07-01 00:00:00 x",
        "20160701", "value", "1.5",
    ])
    func refusesWhatIsNotATimestamp(text: String) {
        #expect(Timestamp.parse(text) == nil, "\(text)")
    }

    @Test func calendarRoundTripsEveryDayOverCenturies() {
        var days = Timestamp.daysFromCivil(year: 1599, month: 12, day: 31)
        for year in 1600...2401 {
            for month in 1...12 {
                for day in 1...Timestamp.daysIn(month: month, year: year) {
                    days += 1
                    #expect(Timestamp.daysFromCivil(year: year, month: month, day: day) == days)
                    let back = Timestamp.civilFromDays(days)
                    if back != (year, month, day) {
                        Issue.record("\(days) -> \(back), expected \(year)-\(month)-\(day)")
                        return
                    }
                }
            }
        }
    }

    @Test func formatsISO8601() {
        #expect(Timestamp.iso8601(0) == "1970-01-01T00:00:00Z")
        #expect(Timestamp.iso8601(1_467_331_200) == "2016-07-01T00:00:00Z")
        #expect(Timestamp.iso8601(1_467_331_200.25) == "2016-07-01T00:00:00.250Z")
        #expect(Timestamp.iso8601(-1) == "1969-12-31T23:59:59Z")
        #expect(Timestamp.iso8601(951_825_600) == "2000-02-29T12:00:00Z")
    }

    // MARK: records

    @Test func readsQuotedFieldsAndBothLineEndings() throws {
        let t = try table(
            "name,\"a, with comma\",\"say \"\"b\"\"\"\r\n"
                + "\"x\",1,\"2\"\r\n"
                + "\"multi\nline\",3,4\n"
                + "\n"   // a blank line is skipped
                + "z, 5 ,6")   // no final line break; spaces around numbers
        #expect(t.header == ["name", "a, with comma", "say \"b\""])
        #expect(t.timeName == nil)
        #expect(t.rowCount == 3)
        #expect(t.lines == [2, 3, 6])
        #expect(t.numericColumnNames == ["a, with comma", "say \"b\""])
        #expect(t.columns[1].values == [1, 3, 5])
        #expect(t.columns[2].values == [2, 4, 6])
        #expect(t.columns[0].textCells == 3)
    }

    @Test func ignoresAByteOrderMark() throws {
        let t = try CSVTable(bytes: [0xEF, 0xBB, 0xBF] + Array("time,v\n2016-07-01 00:00:00,1\n".utf8), file: "bom.csv")
        #expect(t.timeName == "time")
        #expect(t.time == [1_467_331_200])
    }

    @Test func theFirstColumnIsTheTimeAxisWhenItHoldsTimestamps() throws {
        let t = try table("date,HUFL,OT\n7/1/2016 0:00,1.5,30\n7/1/2016 1:00,1.25,31\n")
        #expect(t.timeName == "date")
        #expect(t.time == [1_467_331_200, 1_467_334_800])
        #expect(t.columns.map(\.name) == ["HUFL", "OT"])
        #expect(t.numericColumnNames == ["HUFL", "OT"])

        let numbers = try table("id,v\n1467331200,1\n1467334800,2\n")
        #expect(numbers.timeName == nil, "plain numbers under another name are a column of values")
        #expect(numbers.numericColumnNames == ["id", "v"])
    }

    @Test(arguments: ["time", "Timestamp", "t", "TS", "epoch", "unix", "unix_time", "date", "datetime", " Time "])
    func unixSecondsUnderATimesNameAreTheTimeAxis(name: String) throws {
        let t = try table("\(name),v\n1467331200,1\n1467334800.5,2\n")
        #expect(t.timeName == name)
        #expect(t.time == [1_467_331_200, 1_467_334_800.5])
        #expect(t.numericColumnNames == ["v"])
        let samples = try t.samples(columns: nil)
        #expect(samples.hasTime && samples.timestamp(1) == 1_467_334_800.5)
    }

    @Test func numbersThatAreNotAllPlausibleUnixSecondsStayValues() throws {
        for text in [
            "t,v\n0,1\n1,2\n2,3\n",                          // a counter
            "date,v\n20160701,1\n20160702,2\n",              // dates as numbers
            "time,v\n1467331200,1\n,2\n",                   // a missing cell
            "time,v\n1467331200,1\n5000000000,2\n",         // one beyond 2100
            "time,v\n1467331200,1\n300000000,2\n",          // one before 1980
        ] {
            let t = try table(text)
            #expect(t.timeName == nil, "\(text)")
            #expect(t.columns.count == 2, "\(text)")
        }
    }

    @Test func unixMillisecondsAreRefusedWithTheirRemedy() throws {
        let error = try #require(refusal("timestamp,v\n1467331200000,1\n1467334800000,2\n"))
        #expect(error.kind == .malformed && error.description.contains("milliseconds") && error.description.contains("1000"), "\(error)")
        // Read as values when asked.
        let values = try CSVTable(bytes: Array("timestamp,v\n1467331200000,1\n".utf8), file: "ms.csv", timeColumn: .none)
        #expect(values.timeName == nil && values.numericColumnNames == ["timestamp", "v"])
        let named = try #require({ () -> CSVError? in
            do throws(CSVError) { _ = try CSVTable(bytes: Array("v,ms\n1,1467331200000\n".utf8), file: "ms.csv", timeColumn: .named("ms")) } catch { return error }
            return nil
        }())
        #expect(named.line == 2 && named.description.contains("milliseconds"), "\(named)")
    }

    @Test func timeColumnNamesAnyColumnOrNone() throws {
        let text = "v,when,w\n1,2016-07-01 00:00,5\n2,1467334800,6\n"
        let t = try CSVTable(bytes: Array(text.utf8), file: "x.csv", timeColumn: .named("when"))
        #expect(t.timeName == "when" && t.time == [1_467_331_200, 1_467_334_800], "timestamps and Unix seconds alike")
        #expect(t.columns.map(\.name) == ["v", "w"], "the time column is not an input")
        #expect(throws: CSVError.self) { _ = try t.columnIndex("when", flag: "--columns") }
        #expect(CSVTable.TimeColumn(flag: "none") == .none && CSVTable.TimeColumn(flag: "when") == .named("when"))

        let iso = "date,v\n2016-07-01,1\n2016-07-02,2\n"
        let none = try CSVTable(bytes: Array(iso.utf8), file: "x.csv", timeColumn: .none)
        #expect(none.timeName == nil && none.time == nil)
        #expect(none.numericColumnNames == ["v"], "the dates are text, left out")
        #expect(try none.samples(columns: nil).hasTime == false)

        func refusal(_ text: String, _ choice: CSVTable.TimeColumn) -> CSVError? {
            do throws(CSVError) { _ = try CSVTable(bytes: Array(text.utf8), file: "x.csv", timeColumn: choice) } catch { return error }
            return nil
        }
        let unknown = try #require(refusal(text, .named("When")))
        #expect(unknown.kind == .usage && unknown.description.contains("did you mean 'when'"), "\(unknown)")
        let twice = try #require(refusal("a,a\n1467331200,1467331200\n", .named("a")))
        #expect(twice.kind == .usage, "\(twice)")
        let notTime = try #require(refusal("v,when\n1,2016-07-01\n2,noon\n", .named("when")))
        #expect(notTime.kind == .malformed && notTime.line == 3 && notTime.description.contains("noon"), "\(notTime)")
        let counter = try #require(refusal("v,when\n1,0\n2,1\n", .named("when")))
        #expect(counter.line == 2 && counter.description.contains("1980"), "a counter is no Unix seconds: \(counter)")
    }

    @Test func refusesBadFilesWithTheLine() throws {
        let ragged = try #require(refusal("a,b,c\n1,2,3\n4,5\n"))
        #expect(ragged.line == 3 && ragged.kind == .malformed && ragged.exitCode == 65)
        #expect(ragged.description == "test.csv:3: the row has 2 fields; the header (line 1) has 3")

        let long = try #require(refusal("a,b\n1,2\n\"x\ny\",2,3\n"))
        #expect(long.line == 3, "a record is counted from the line it starts on")

        let open = try #require(refusal("a,b\n1,\"2\n3,4\n"))
        #expect(open.line == 2 && open.message.contains("never closed"))

        let trailing = try #require(refusal("a,b\n1,\"2\"x\n"))
        #expect(trailing.line == 2 && trailing.message.contains("followed by more text"))

        let badTime = try #require(refusal("time,v\n2016-07-01 00:00:00,1\nyesterday,2\n"))
        #expect(badTime.line == 3 && badTime.message.contains("yesterday"))

        let noHeader = try #require(refusal("1,2\n3,4\n"))
        #expect(noHeader.line == 1 && noHeader.message.contains("header"))

        #expect(refusal("")?.message.contains("empty") == true)
    }

    @Test func noNumericColumnIsAnError() throws {
        let t = try table("time,label\n2016-07-01 00:00:00,on\n2016-07-01 01:00:00,off\n")
        #expect(throws: CSVError.self) { try t.samples(columns: nil) }
        do {
            _ = try t.samples(columns: nil)
        } catch {
            #expect(error.description.contains("no numeric column"))
            #expect(error.exitCode == 65)
        }
    }

    // MARK: the missing-cell policy

    /// Every row comes back, a missing cell as NaN: the policy is the stream's (ChannelWatch),
    /// applied by replay (ReplayTests) and, for what feed sends, by the daemon.
    @Test func missingCellsAreNaNAndEveryRowIsKept() throws {
        let t = try table("""
            time,a,b
            2016-07-01 00:00:00,,10
            2016-07-01 01:00:00,1,
            2016-07-01 02:00:00,,NA
            2016-07-01 03:00:00,3,nan
            2016-07-01 04:00:00,4,40
            """)
        #expect(t.numericColumnNames == ["a", "b"], "markers and non-finite numbers do not make a column text")
        #expect(t.columns[0].emptyCells == 2 && t.columns[1].emptyCells == 1 && t.columns[1].markerCells == 2)
        let s = try t.samples(columns: nil)
        #expect(s.rows == [0, 1, 2, 3, 4])
        #expect(s.lines == [2, 3, 4, 5, 6])
        let missing = Double.nan
        #expect(zip(s.values, [missing, 10, 1, missing, missing, missing, 3, missing, 4, 40]).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
        #expect(s.time == [1_467_331_200, 1_467_334_800, 1_467_338_400, 1_467_342_000, 1_467_345_600])

        let onlyB = try t.samples(columns: ["b"])
        #expect(onlyB.rows == [0, 1, 2, 3, 4] && onlyB.values.enumerated().allSatisfy { $0.element.isNaN == [1, 2, 3].contains($0.offset) })
    }

    @Test func aNamedColumnMayHoldText() throws {
        let t = try table("v,w\n1,5\nerror,6\n3,7\n")
        #expect(t.numericColumnNames == ["w"], "text makes a column non-numeric")
        let s = try t.samples(columns: ["v", "w"])
        #expect(s.values[0] == 1 && s.values[1] == 5 && s.values[2].isNaN && s.values[3] == 6 && s.values[4] == 3 && s.values[5] == 7)
    }

    @Test func unknownColumnNamesAreUsageErrors() throws {
        let t = try table("time,value,other\n2016-07-01 00:00:00,1,2\n")
        for (names, expected) in [
            (["valeu"], "no column named 'valeu'; the columns are 'value', 'other' (did you mean 'value'?)"),
            (["time"], "'time' is the time axis"),
            (["value", "value"], "names 'value' twice"),
        ] {
            do {
                _ = try t.samples(columns: names)
                Issue.record("accepted \(names)")
            } catch {
                #expect(error.kind == .usage && error.exitCode == 64)
                #expect(error.description.contains(expected), "\(error)")
            }
        }
    }
}
