/// A small JSON writer: objects, arrays, strings, numbers (shortest round-trip form; null for
/// non-finite or missing values).
import RNNCore

final class JSONWriter {
    private(set) var text = ""
    /// Per open container: whether a member was written (so the next needs a comma).
    private var needsComma = [false]
    /// A key was written and its value comes next.
    private var pendingKey = false

    private func separate() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    private func value(_ raw: String) {
        if pendingKey { pendingKey = false } else { separate() }
        text += raw
    }

    func key(_ name: String) {
        separate()
        appendString(name)
        text += ":"
        pendingKey = true
    }

    func object(_ body: () -> Void) {
        value("{")
        needsComma.append(false)
        body()
        needsComma.removeLast()
        text += "}"
    }

    func array<T>(_ elements: [T], _ body: (T) -> Void) {
        value("[")
        needsComma.append(false)
        for e in elements { body(e) }
        needsComma.removeLast()
        text += "]"
    }

    func string(_ s: String) {
        if pendingKey { pendingKey = false } else { separate() }
        appendString(s)
    }

    func int(_ n: Int) { value("\(n)") }

    /// The forecaster's settings of `m` as keys of the object being written (TOML's names):
    /// what `rnnd replay --metrics` and `rnnd checkpoint show --json` both report.
    func forecasterSettings(_ m: ModelConfiguration) {
        key("formulation"); string(m.formulation.rawValue)
        key("calendar"); bool(m.calendar)
        key("ensemble"); bool(m.ensemble)
        key("linear_lags"); int(m.linearLags)
        key("coverage"); number(m.coverage)
        key("drift"); bool(m.drift)
    }
    func bool(_ b: Bool) { value(b ? "true" : "false") }
    func null() { value("null") }
    func number(_ x: Double?) {
        guard let x, x.isFinite else { return value("null") }
        value("\(x)")
    }

    private func appendString(_ s: String) {
        text += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(u)
            }
        }
        text += "\""
    }
}
