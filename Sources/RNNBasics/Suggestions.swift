/// The candidate within two edits (Levenshtein) of `word`, compared in lower case, if there is
/// one: the "did you mean" of unknown configuration keys and unknown CSV columns.
public func closest(to word: String, among candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
    let lowered = Array(word.lowercased())
    return candidates.map { ($0, distance(lowered, Array($0))) }
        .filter { $0.1 <= 2 }
        .min { $0.1 < $1.1 }?.0
}
