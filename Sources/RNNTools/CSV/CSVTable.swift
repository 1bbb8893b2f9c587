// CSV files for `rnnd replay` and `rnnd feed` (docs/replay.md): a small RFC 4180 reader, the
// time axis, numeric columns, and the missing-cell policy. The whole file is read at once.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

import RNNBasics

/// A CSV file that cannot be used, with the file, the line (when one is at fault) and what is
/// wrong. `exitCode` is what a command exits with.
public struct CSVError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The file cannot be read (missing, a directory, no permission).
        case unreadable
        /// The file is not a usable CSV table (ragged rows, bad quotes, no numeric column, ...).
        case malformed
        /// A name given on the command line (`--columns`, `--targets`, ...) does not fit the file.
        case usage
    }

    public var kind: Kind
    public var file: String
    /// 1-based line of the file, or nil when the whole file (or a flag) is at fault.
    public var line: Int?
    public var message: String

    public init(_ kind: Kind, file: String, line: Int? = nil, _ message: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }

    /// 66 (EX_NOINPUT) unreadable, 65 (EX_DATAERR) malformed, 64 (EX_USAGE) a bad name.
    public var exitCode: Int32 {
        switch kind {
        case .unreadable: 66
        case .malformed: 65
        case .usage: 64
        }
    }
}

/// A CSV file read whole into columns of numbers.
///
/// The format is RFC 4180: fields separated by commas, records by LF or CRLF, fields that hold
/// commas, quotes or line breaks in double quotes with `""` for a quote. The first record is the
/// header of column names and is required; every record has as many fields as the header.
/// Blank lines are skipped, and a UTF-8 byte order mark is ignored.
///
/// The first column is the time axis when its first cell parses as a timestamp (``Timestamp``),
/// then every one of its cells must; or when its header names a time (``timeHeaders``) and every
/// cell is a number of Unix seconds from 1980 to 2100 (``TimeColumn``; `--time-column` chooses
/// another column, or none). Every other column is kept as numbers: a cell that is a
/// finite number is its value; an empty cell, a non-finite number (`nan`, `inf`), a marker of a
/// missing value (`NA`, `N/A`, `#N/A`, `null`, `none`, `-`, `?`) or any other text is missing
/// (NaN here). A column is *numeric* when it has a number and no other text than those markers.
public struct CSVTable: Sendable {
    /// One column (the time axis excluded).
    public struct Column: Sendable {
        public var name: String
        /// One value per data row; NaN where the cell is missing.
        public var values: [Double]
        /// Cells that are empty (or only spaces).
        public var emptyCells = 0
        /// Cells that are a missing-value marker or a non-finite number.
        public var markerCells = 0
        /// Cells that are neither a number nor empty nor a marker: text.
        public var textCells = 0
        /// The 1-based file line of the first text cell, for messages.
        public var firstTextLine: Int?

        /// Cells that hold a finite number.
        public var numberCells: Int { values.count - emptyCells - markerCells - textCells }

        /// Every non-empty cell is a number or a missing-value marker, and there is a number.
        public var isNumeric: Bool { textCells == 0 && numberCells > 0 }
    }

    /// The file's name as given (for messages).
    public var file: String
    /// The column names of the header, time axis included.
    public var header: [String]
    /// The name of the time axis when there is one.
    public var timeName: String?
    /// Unix seconds of every data row, when the first column is the time axis.
    public var time: [Double]?
    /// Every column but the time axis, in file order.
    public var columns: [Column]
    /// The 1-based file line on which each data row starts.
    public var lines: [Int]

    /// Data rows (the header excluded).
    public var rowCount: Int { lines.count }

    /// The names of the numeric columns, in file order.
    public var numericColumnNames: [String] { columns.filter(\.isNumeric).map(\.name) }

    /// Which column is the time axis.
    public enum TimeColumn: Sendable, Equatable {
        /// The first column, when its first cell is a timestamp, or when its header names a time
        /// (``timeHeaders``) and every cell is a number of Unix seconds in ``plausibleSeconds``.
        case automatic
        /// The column of this name, whose every cell must be a timestamp or a number of Unix
        /// seconds in ``plausibleSeconds`` (`--time-column NAME`).
        case named(String)
        /// None: every column is a column of values (`--time-column none`).
        case none

        /// `--time-column`'s value: `none`, or a column's name.
        public init(flag: String) { self = flag == "none" ? .none : .named(flag) }
    }

    /// The header names (compared in lower case, without surrounding spaces) under which a first
    /// column of plain numbers is read as Unix seconds.
    public static let timeHeaders: Set<String> = [
        "time", "timestamp", "t", "ts", "epoch", "unix", "unix_time", "unixtime", "unix_timestamp", "date", "datetime",
    ]

    /// Plain numbers are Unix seconds from 1980-01-01 to 2100-01-01 (UTC). Below, they are more
    /// likely values or counters (or dates written as 20160701), and beyond, milliseconds.
    public static let plausibleSeconds = 315_532_800.0..<4_102_444_800.0

    /// Reads the file at `path`.
    public init(path: String, timeColumn: TimeColumn = .automatic) throws(CSVError) {
        try self.init(bytes: try Self.readBytes(path), file: path, timeColumn: timeColumn)
    }

    /// Parses `bytes`, the contents of a CSV file named `file` (for messages).
    public init(bytes: [UInt8], file: String, timeColumn choice: TimeColumn = .automatic) throws(CSVError) {
        self.file = file
        var reader = CSVRecordReader(bytes: bytes, file: file)
        guard let (headerLine, names) = try reader.next() else {
            throw CSVError(.malformed, file: file, "the file is empty; the first line must be a header of column names")
        }
        if names.allSatisfy({ Self.number($0) != nil }) {
            throw CSVError(.malformed, file: file, line: headerLine,
                "the first line must be a header of column names, but it holds only numbers")
        }
        header = names
        lines = []
        time = nil
        timeName = nil
        columns = names.map { Column(name: $0, values: []) }
        // The column that may be the time axis, and its cells as written.
        var candidate: Int?
        switch choice {
        case .automatic: candidate = 0
        case .none: candidate = nil
        case .named(let name):
            let matches = names.indices.filter { names[$0] == name }
            if matches.count > 1 {
                throw CSVError(.usage, file: file, "--time-column: the header names '\(name)' \(matches.count) times")
            }
            guard let index = matches.first else {
                var message = "--time-column: no column named '\(name)'; the columns are "
                    + names.map { "'\($0)'" }.joined(separator: ", ") + " (or none, for no time axis)"
                if let close = closest(to: name, among: names) { message += " (did you mean '\(close)'?)" }
                throw CSVError(.usage, file: file, message)
            }
            candidate = index
        }
        var timeCells: [String] = []
        while let (line, fields) = try reader.next() {
            guard fields.count == names.count else {
                throw CSVError(.malformed, file: file, line: line,
                    "the row has \(fields.count) field\(fields.count == 1 ? "" : "s"); the header (line \(headerLine)) has \(names.count)")
            }
            if let candidate { timeCells.append(fields[candidate]) }
            for (k, cell) in fields.enumerated() {
                let value: Double
                if let x = Self.number(cell) {
                    if x.isFinite {
                        value = x
                    } else {
                        columns[k].markerCells += 1
                        value = .nan
                    }
                } else if Self.isBlank(cell) {
                    columns[k].emptyCells += 1
                    value = .nan
                } else if Self.missingMarkers.contains(Self.trimmed(cell).lowercased()) {
                    columns[k].markerCells += 1
                    value = .nan
                } else {
                    columns[k].textCells += 1
                    if columns[k].firstTextLine == nil { columns[k].firstTextLine = line }
                    value = .nan
                }
                columns[k].values.append(value)
            }
            lines.append(line)
        }
        guard let c = candidate, let axis = try timeAxis(column: c, cells: timeCells, named: choice != .automatic) else { return }
        timeName = names[c]
        time = axis
        columns.remove(at: c)
    }

    /// The Unix seconds of column `c` (its `cells` as written) when it is the time axis: always
    /// when `named` (a cell that is no time is an error), else by the rules of ``TimeColumn/automatic``.
    private func timeAxis(column c: Int, cells: [String], named: Bool) throws(CSVError) -> [Double]? {
        guard let first = cells.first else { return nil }
        let name = header[c]
        let form = "a timestamp (YYYY-MM-DD HH:MM:SS, M/D/YYYY H:MM) or Unix seconds from 1980 to 2100 (see docs/replay.md)"
        func millisecondsHint(_ x: Double) -> String {
            Self.plausibleSeconds.contains(x / 1000) ? "; it looks like milliseconds: rnnd takes Unix seconds, so divide the column by 1000" : ""
        }
        if named || Timestamp.parse(first) != nil {
            // Every cell a timestamp; with --time-column, plain Unix seconds too.
            var axis: [Double] = []
            axis.reserveCapacity(cells.count)
            for (row, cell) in cells.enumerated() {
                if let t = Timestamp.parse(cell) {
                    axis.append(t)
                } else if named, let x = Self.number(cell), Self.plausibleSeconds.contains(x) {
                    axis.append(x)
                } else {
                    var message = "the time column '\(name)' holds \"\(cell.prefix(40))\", which is not " + (named ? form : "a timestamp (YYYY-MM-DD HH:MM:SS or M/D/YYYY H:MM, see docs/replay.md)")
                    if let x = Self.number(cell) { message += millisecondsHint(x) }
                    throw CSVError(.malformed, file: file, line: lines[row], message)
                }
            }
            return axis
        }
        // A column of plain numbers under a time's name is Unix seconds when every cell is one.
        guard Self.timeHeaders.contains(Self.trimmed(name).lowercased()) else { return nil }
        let values = columns[c].values
        guard values.allSatisfy({ !$0.isNaN }) else { return nil }
        if values.allSatisfy({ Self.plausibleSeconds.contains($0) }) { return values }
        if values.allSatisfy({ Self.plausibleSeconds.contains($0 / 1000) }) {
            throw CSVError(.malformed, file: file,
                "the first column '\(name)' holds numbers like \(cells[0]), which look like Unix milliseconds: rnnd takes Unix seconds, "
                    + "so divide the column by 1000 (or read it as values with --time-column none)")
        }
        return nil
    }

    /// The texts (compared in lower case) that stand for a missing value.
    public static let missingMarkers: Set<String> = ["na", "n/a", "#n/a", "null", "none", "-", "?"]

    /// The number in a cell (spaces around it allowed), or nil.
    static func number(_ cell: String) -> Double? {
        let text = trimmed(cell)
        guard !text.isEmpty, let first = text.utf8.first,
            first == UInt8(ascii: "-") || first == UInt8(ascii: "+") || first == UInt8(ascii: ".")
                || (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) || first == UInt8(ascii: "n")
                || first == UInt8(ascii: "N") || first == UInt8(ascii: "i") || first == UInt8(ascii: "I")
        else { return nil }
        // Hexadecimal floats ("0x1p3") are Swift's, not a CSV writer's.
        if text.utf8.contains(UInt8(ascii: "x")) || text.utf8.contains(UInt8(ascii: "X")) { return nil }
        return Double(text)
    }

    static func trimmed(_ text: String) -> Substring {
        var s = text[...]
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }

    static func isBlank(_ text: String) -> Bool { trimmed(text).isEmpty }

    /// The index in ``columns`` of the column named `name`, or an error that lists the names.
    public func columnIndex(_ name: String, flag: String) throws(CSVError) -> Int {
        let matches = columns.indices.filter { columns[$0].name == name }
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 {
            throw CSVError(.usage, file: file, "\(flag): the header names '\(name)' \(matches.count) times")
        }
        if name == timeName {
            throw CSVError(.usage, file: file, "\(flag): '\(name)' is the time axis, not a column of values")
        }
        let names = columns.map { "'\($0.name)'" }.joined(separator: ", ")
        var message = "\(flag): no column named '\(name)'; the columns are \(names)"
        if let close = closest(to: name, among: columns.map(\.name)) {
            message += " (did you mean '\(close)'?)"
        }
        throw CSVError(.usage, file: file, message)
    }

    /// The rows of the named columns (every numeric column when `names` is nil), every row, a
    /// missing cell as NaN: the missing-cell policy is the stream's (RNNWire's `ChannelWatch`),
    /// which replay applies and the daemon applies to what `rnnd feed` sends.
    ///
    /// A named column may hold text in some cells (treated as missing), but must hold a number.
    public func samples(columns names: [String]?, flag: String = "--columns") throws(CSVError) -> CSVSamples {
        let chosen: [Int]
        if let names {
            guard !names.isEmpty else { throw CSVError(.usage, file: file, "\(flag) names no column") }
            var indexes: [Int] = []
            for name in names {
                let index = try columnIndex(name, flag: flag)
                if indexes.contains(index) { throw CSVError(.usage, file: file, "\(flag) names '\(name)' twice") }
                guard columns[index].numberCells > 0 else {
                    throw CSVError(.usage, file: file, "\(flag): the column '\(name)' holds no number")
                }
                indexes.append(index)
            }
            chosen = indexes
        } else {
            chosen = columns.indices.filter { columns[$0].isNumeric }
            guard !chosen.isEmpty else {
                var message = "no numeric column"
                if rowCount == 0 { message += ": the file has a header and no data rows" }
                else if let text = columns.first(where: { $0.textCells > 0 }), let line = text.firstTextLine {
                    message += " (the column '\(text.name)' holds text, e.g. on line \(line); name it with --columns "
                        + "to read its numbers and treat the text as missing)"
                }
                throw CSVError(.malformed, file: file, message)
            }
        }
        let width = chosen.count
        var result = CSVSamples(file: file, columns: chosen.map { columns[$0].name }, hasTime: time != nil)
        result.values.reserveCapacity(rowCount * width)
        result.rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            result.rows.append(row)
            result.lines.append(lines[row])
            for k in chosen { result.values.append(columns[k].values[row]) }
            if let time { result.time.append(time[row]) }
        }
        return result
    }

    /// The file's bytes.
    static func readBytes(_ path: String) throws(CSVError) -> [UInt8] {
        do { return try FileContents.read(path) } catch {
            throw CSVError(.unreadable, file: path, "cannot read the file: " + error.reason)
        }
    }
}

/// The rows of chosen columns, a missing cell as NaN: what `rnnd feed` sends (a missing cell as
/// `null`), and what `rnnd replay` learns from after the stream's policies, one sample per row.
public struct CSVSamples: Sendable {
    public var file: String
    /// The chosen columns' names, in the order of the values of a sample.
    public var columns: [String]
    /// The data row (0-based, the header excluded) of each sample.
    public var rows: [Int] = []
    /// The 1-based file line of each sample.
    public var lines: [Int] = []
    /// Unix seconds of each sample; empty when the file has no time axis.
    public var time: [Double] = []
    /// Row-major: sample `i`'s value of column `j` is `values[i * columns.count + j]`; NaN
    /// where the cell is missing.
    public var values: [Double] = []
    public let hasTime: Bool

    init(file: String, columns: [String], hasTime: Bool) {
        self.file = file
        self.columns = columns
        self.hasTime = hasTime
    }

    public var count: Int { rows.count }
    public var width: Int { columns.count }

    /// The values of sample `i`.
    public func sample(_ i: Int) -> ArraySlice<Double> { values[(i * width)..<((i + 1) * width)] }

    /// The time of sample `i`, when the file has a time axis.
    public func timestamp(_ i: Int) -> Double? { hasTime ? time[i] : nil }
}

/// Splits CSV bytes into records (RFC 4180), remembering the line each starts on.
struct CSVRecordReader {
    let bytes: [UInt8]
    let file: String
    var i = 0
    var line = 1

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
    }

    /// The next non-blank record and its first line; nil at the end.
    mutating func next() throws(CSVError) -> (line: Int, fields: [String])? {
        while i < bytes.count {
            let start = line
            let fields = try record()
            if fields.count == 1 && fields[0].isEmpty && !lastRecordHadQuotes { continue }  // a blank line
            return (start, fields)
        }
        return nil
    }

    private var lastRecordHadQuotes = false

    /// One record, up to and including its line break.
    private mutating func record() throws(CSVError) -> [String] {
        var fields: [String] = []
        var field: [UInt8] = []
        lastRecordHadQuotes = false
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        func text(_ bytes: [UInt8]) throws(CSVError) -> String {
            guard let s = String(validating: bytes, as: UTF8.self) else {
                throw CSVError(.malformed, file: file, line: line, "a field is not UTF-8 text")
            }
            return s
        }
        while true {
            if i < bytes.count && bytes[i] == quote && field.isEmpty {
                // A quoted field: up to the closing quote, "" standing for one quote.
                lastRecordHadQuotes = true
                let opened = line
                i += 1
                while true {
                    guard i < bytes.count else {
                        throw CSVError(.malformed, file: file, line: opened, "a quoted field is never closed")
                    }
                    let c = bytes[i]
                    if c == quote {
                        if i + 1 < bytes.count && bytes[i + 1] == quote {
                            field.append(quote)
                            i += 2
                            continue
                        }
                        i += 1
                        break
                    }
                    if c == lf { line += 1 }
                    field.append(c)
                    i += 1
                }
                if i < bytes.count, bytes[i] != comma, bytes[i] != lf, bytes[i] != cr {
                    throw CSVError(.malformed, file: file, line: line,
                        "a quoted field is followed by more text; write \"\" for a quote inside quotes")
                }
            }
            // An unquoted field, or what follows a quoted one: up to a comma or the line's end.
            while i < bytes.count, bytes[i] != comma, bytes[i] != lf, bytes[i] != cr {
                field.append(bytes[i])
                i += 1
            }
            fields.append(try text(field))
            field.removeAll(keepingCapacity: true)
            guard i < bytes.count else { return fields }
            let c = bytes[i]
            i += 1
            if c == comma { continue }
            if c == cr, i < bytes.count, bytes[i] == lf { i += 1 }
            line += 1
            return fields
        }
    }
}

/// Timestamps of CSV time columns, as Unix seconds, with the calendar arithmetic done here
/// (proleptic Gregorian calendar, no leap seconds), not by a date formatter.
///
/// Accepted forms:
/// - ISO 8601: `2016-07-01`, `2016-07-01 00:00`, `2016-07-01 00:00:00`, `2016-07-01T00:00:00`,
///   with optional fractional seconds (`.25`) and an optional zone: `Z`, `+02:00`, `-0530`, `+02`.
/// - US style: `7/1/2016`, `7/1/2016 0:00`, `07/01/2016 13:45:30` (month first).
///
/// A time without a zone is UTC.
public enum Timestamp {
    /// Unix seconds of `text` (spaces around it allowed), or nil when it is not one of the forms.
    public static func parse(_ text: String) -> Double? {
        var s = Scanner(Array(CSVTable.trimmed(text).utf8))
        guard !s.atEnd else { return nil }
        let year: Int, month: Int, day: Int
        var iso = false
        guard let first = s.digits(min: 1, max: 4) else { return nil }
        if first.count == 4 && s.take(UInt8(ascii: "-")) {
            iso = true
            guard let m = s.digits(min: 2, max: 2), s.take(UInt8(ascii: "-")), let d = s.digits(min: 2, max: 2) else { return nil }
            (year, month, day) = (first.value, m.value, d.value)
        } else if first.count <= 2 && s.take(UInt8(ascii: "/")) {
            guard let d = s.digits(min: 1, max: 2), s.take(UInt8(ascii: "/")), let y = s.digits(min: 4, max: 4) else { return nil }
            (year, month, day) = (y.value, first.value, d.value)
        } else {
            return nil
        }
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day) else { return nil }
        var seconds = Double(daysFromCivil(year: year, month: month, day: day) * 86_400)
        if s.atEnd { return seconds }
        // The time of day.
        if iso {
            guard s.take(UInt8(ascii: "T")) || s.take(UInt8(ascii: "t")) || s.take(UInt8(ascii: " ")) else { return nil }
        } else {
            guard s.take(UInt8(ascii: " ")) else { return nil }
            while s.take(UInt8(ascii: " ")) {}
        }
        guard let hour = s.digits(min: iso ? 2 : 1, max: 2), s.take(UInt8(ascii: ":")),
            let minute = s.digits(min: 2, max: 2), hour.value <= 23, minute.value <= 59
        else { return nil }
        var second = 0
        var fraction = 0.0
        if s.take(UInt8(ascii: ":")) {
            guard let sec = s.digits(min: 2, max: 2), sec.value <= 60 else { return nil }
            second = sec.value
            if s.take(UInt8(ascii: ".")) || s.take(UInt8(ascii: ",")) {
                guard let digits = s.digitString(max: 18) else { return nil }
                fraction = Double("0." + digits) ?? 0
            }
        }
        seconds += Double(hour.value * 3600 + minute.value * 60 + second) + fraction
        if s.atEnd { return seconds }
        // The zone.
        guard iso else { return nil }
        if s.take(UInt8(ascii: "Z")) || s.take(UInt8(ascii: "z")) { return s.atEnd ? seconds : nil }
        let sign: Double
        if s.take(UInt8(ascii: "+")) { sign = 1 } else if s.take(UInt8(ascii: "-")) { sign = -1 } else { return nil }
        // ±hh, ±hh:mm or ±hhmm.
        guard let digits = s.digits(min: 2, max: 4), digits.count != 3 else { return nil }
        let offsetHours = digits.count == 4 ? digits.value / 100 : digits.value
        var offsetMinutes = digits.count == 4 ? digits.value % 100 : 0
        if digits.count == 2, s.take(UInt8(ascii: ":")) {
            guard let m = s.digits(min: 2, max: 2) else { return nil }
            offsetMinutes = m.value
        }
        guard offsetHours <= 23, offsetMinutes <= 59, s.atEnd else { return nil }
        return seconds - sign * Double(offsetHours * 3600 + offsetMinutes * 60)
    }

    /// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar
    /// (Howard Hinnant's `days_from_civil`).
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400                                        // [0, 399]
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1  // [0, 365]
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy                // [0, 146096]
        return era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01 (Hinnant's `civil_from_days`).
    public static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    public static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// `2016-07-01T00:00:00Z`, with milliseconds when `seconds` has a fraction
    /// (`2016-07-01T00:00:00.250Z`).
    public static func iso8601(_ seconds: Double) -> String {
        guard seconds.isFinite, abs(seconds) < 1e15 else { return "\(seconds)" }
        var whole = seconds.rounded(.down)
        var millis = Int(((seconds - whole) * 1000).rounded())
        if millis == 1000 { whole += 1; millis = 0 }
        let total = Int(whole)
        let days = total >= 0 ? total / 86_400 : (total - 86_399) / 86_400
        let inDay = total - days * 86_400
        let (y, m, d) = civilFromDays(days)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        var year = String(abs(y))
        while year.count < 4 { year = "0" + year }
        if y < 0 { year = "-" + year }
        var text = "\(year)-\(two(m))-\(two(d))T\(two(inDay / 3600)):\(two(inDay / 60 % 60)):\(two(inDay % 60))"
        if millis != 0 {
            text += "." + (millis < 10 ? "00" : millis < 100 ? "0" : "") + "\(millis)"
        }
        return text + "Z"
    }

    /// A cursor over ASCII bytes.
    struct Scanner {
        let bytes: [UInt8]
        var i = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { i >= bytes.count }

        mutating func take(_ byte: UInt8) -> Bool {
            guard i < bytes.count, bytes[i] == byte else { return false }
            i += 1
            return true
        }

        /// `min` to `max` decimal digits, as a number and how many there were.
        mutating func digits(min: Int, max: Int) -> (value: Int, count: Int)? {
            var value = 0, count = 0
            while count < max, i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                value = value * 10 + Int(bytes[i] - 0x30)
                count += 1
                i += 1
            }
            guard count >= min else { return nil }
            // More digits than allowed: not this form.
            if i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { return nil }
            return (value, count)
        }

        /// One or more digits (at most `max` kept, the rest consumed) as text.
        mutating func digitString(max: Int) -> String? {
            var text = ""
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                if text.count < max { text.unicodeScalars.append(Unicode.Scalar(bytes[i])) }
                i += 1
            }
            return text.isEmpty ? nil : text
        }
    }
}
