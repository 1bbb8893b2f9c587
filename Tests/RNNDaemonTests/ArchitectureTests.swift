import Foundation
import Testing

/// docs/architecture.md's table of targets is the rule for what each may import: every `import`
/// in `Sources/TARGET` must name a module its row lists (or the C library).
@Suite(.timeLimit(.minutes(1)))
struct ArchitectureTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let cLibrary: Set<String> = ["Glibc", "Musl", "Darwin"]

    /// The table's rows: target → the modules it may import.
    static func allowedImports() throws -> [String: Set<String>] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        var rows: [String: Set<String>] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4 else { continue }
            let targets = Self.names(in: cells[1])
            let allowed = Set(Self.names(in: cells[3]))
            for target in targets { rows[target] = allowed.union(targets) }
        }
        return rows
    }

    /// The names in backticks in a table cell.
    static func names(in cell: String) -> [String] {
        cell.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    @Test func everyTargetImportsOnlyWhatTheArchitecturePageAllows() throws {
        let rows = try Self.allowedImports()
        let sources = Self.root.appendingPathComponent("Sources")
        let targets = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter { !$0.hasPrefix(".") }
        #expect(targets.count >= 10)
        for target in targets.sorted() {
            let allowed = try #require(rows[target], "Sources/\(target) has no row in docs/architecture.md")
            let files = FileManager.default.enumerator(atPath: sources.appendingPathComponent(target).path)?
                .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
            for file in files {
                let text = try String(contentsOf: sources.appendingPathComponent(target).appendingPathComponent(file), encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                    let module = String(line.split(separator: " ").last!)
                    #expect(
                        allowed.contains(module) || Self.cLibrary.contains(module),
                        "Sources/\(target)/\(file) imports \(module), which docs/architecture.md does not allow \(target)")
                }
            }
        }
    }

    /// The rule the issue named: the numerics and the protocol stay free of I/O libraries.
    @Test func theCoreAndTheProtocolImportNoIOLibrary() throws {
        let rows = try Self.allowedImports()
        for target in ["RNNCore", "RNNWire"] {
            let allowed = try #require(rows[target])
            #expect(allowed.isDisjoint(with: ["ZeroMQ", "GRDB", "Logging", "Foundation", "Prometheus"]), "\(target): \(allowed)")
        }
    }
}
