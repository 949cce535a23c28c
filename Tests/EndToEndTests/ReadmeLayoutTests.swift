import Foundation
import Testing
import TestSupport

/// README's Layout table is the map a new engineer reads first (issue 21):
/// it names every source target, and nothing that is not one.
@Suite("README Layout")
struct ReadmeLayoutTests {
    static let root = PackagePaths.root.path

    @Test("the Layout table names exactly the directories under Sources/")
    func layoutMatchesTree() throws {
        let readme = try String(contentsOfFile: Self.root + "/README.md", encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "\n## Layout\n").dropFirst().first, "README has no ## Layout section")
        let table = section.components(separatedBy: "\n## ").first ?? section
        let name = try Regex(#"`([A-Za-z][A-Za-z0-9-]*)`"#)
        var listed: Set<String> = []
        for line in table.split(separator: "\n") where line.hasPrefix("| `") {
            // The first cell names one target or several (`A`, `B`).
            let cell = line.split(separator: "|", omittingEmptySubsequences: true).first.map(String.init) ?? ""
            for match in cell.matches(of: name) {
                if let target = match.output[1].substring { listed.insert(String(target)) }
            }
        }
        let targets = Set(try FileManager.default.contentsOfDirectory(atPath: Self.root + "/Sources").filter { !$0.hasPrefix(".") })
        #expect(targets.subtracting(listed).sorted() == [], "targets missing from README's Layout")
        #expect(listed.subtracting(targets).sorted() == [], "README's Layout names targets that do not exist")
    }
}
