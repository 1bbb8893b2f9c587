// Text in the plot (docs/replay.md, "The plot"): how wide it may be drawn, and how it is made to
// fit: wrapped between phrases, then between words, then shortened with an ellipsis.

/// Text measured and fitted without a font at hand. An SVG's text is laid out by whatever
/// renders it, so the width is an upper estimate rather than a measurement: the file's own
/// lines are sized so that they fit under it.
enum ChartText {
    /// The width of `text` in px at font size `size`, on the high side: 0.64 em for an ASCII
    /// character (DejaVu Sans, the usual sans-serif on Linux, averages about 0.55 em over English
    /// text, with digits at 0.64 em; Helvetica and Arial are narrower), 1 em for any other, and
    /// a tenth more in bold. Only runs of capitals such as `WWW` can be wider.
    static func width(_ text: String, size: Double, bold: Bool = false) -> Double {
        var ems = 0.0
        for scalar in text.unicodeScalars { ems += scalar.isASCII ? 0.64 : 1 }
        return ems * size * (bold ? 1.1 : 1)
    }

    /// The phrases joined by `separator` into at most `maxLines` lines, each at most `width` px
    /// wide: a phrase goes on the line when it fits, else starts the next; a phrase wider than a
    /// line is broken between words, a word wider than a line is shortened in its middle, and
    /// text beyond the last line is cut with an ellipsis.
    static func wrap(
        _ phrases: [String], separator: String = " · ", width: Double, size: Double, bold: Bool = false, maxLines: Int = 3
    ) -> [String] {
        func fits(_ text: String) -> Bool { Self.width(text, size: size, bold: bold) <= width }
        var lines: [String] = []
        var line = ""
        func add(_ piece: String, after joiner: String) {
            if line.isEmpty {
                line = piece
            } else if fits(line + joiner + piece) {
                line += joiner + piece
            } else {
                lines.append(line)
                line = piece
            }
        }
        for phrase in phrases where !phrase.isEmpty {
            if fits(phrase) {
                add(phrase, after: separator)
                continue
            }
            // Too long for any line: its words, the first after the separator.
            for (k, word) in phrase.split(separator: " ").enumerated() {
                add(fits(String(word)) ? String(word) : shorten(String(word), width: width, size: size, bold: bold),
                    after: k == 0 ? separator : " ")
            }
        }
        if !line.isEmpty { lines.append(line) }
        guard lines.count > maxLines else { return lines }
        let rest = lines[(maxLines - 1)...].joined(separator: " ")
        return Array(lines.prefix(maxLines - 1)) + [truncate(rest, width: width, size: size, bold: bold)]
    }

    /// `text` cut in its middle, with an ellipsis there, to at most `width` px (its start and end
    /// are what tell names apart: `sensor_…_temperature`).
    static func shorten(_ text: String, width: Double, size: Double, bold: Bool = false) -> String {
        guard Self.width(text, size: size, bold: bold) > width else { return text }
        let characters = Array(text)
        var budget = width - Self.width("…", size: size, bold: bold)
        var head = 0, tail = characters.count
        // Characters from either end in turn, while they fit beside the ellipsis.
        while head < tail {
            let next = head <= characters.count - tail ? head : tail - 1
            let cost = Self.width(String(characters[next]), size: size, bold: bold)
            guard cost <= budget else { break }
            budget -= cost
            if next == head { head += 1 } else { tail -= 1 }
        }
        return String(characters[..<head]) + "…" + String(characters[tail...])
    }

    /// `text` cut at its end, with an ellipsis there, to at most `width` px.
    static func truncate(_ text: String, width: Double, size: Double, bold: Bool = false) -> String {
        guard Self.width(text, size: size, bold: bold) > width else { return text }
        var budget = width - Self.width("…", size: size, bold: bold)
        var kept = ""
        for c in text {
            let cost = Self.width(String(c), size: size, bold: bold)
            guard cost <= budget else { break }
            budget -= cost
            kept.append(c)
        }
        return kept + "…"
    }

    /// `text` for an SVG text node or attribute value: markup characters escaped, and the control
    /// characters XML 1.0 forbids (a CSV header may hold any byte) replaced by U+FFFD.
    static func escape(_ text: String) -> String {
        var out = ""
        for c in text.unicodeScalars {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            case "\t", "\n", "\r": out.unicodeScalars.append(" ")
            case _ where c.value < 0x20 || (0xFFFE...0xFFFF).contains(c.value): out += "\u{FFFD}"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
