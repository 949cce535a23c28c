import Foundation
import Testing
import TestSupport

/// Comments cite the design as "design §N" (issue 21): every such reference
/// in the sources, the tests and the README must name a section that
/// docs/design.md has, so a reader can follow each one.
@Suite("docs/design.md")
struct DesignReferenceTests {
    static let root = PackagePaths.root.path

    /// Section numbers the document has: `## 5. ...` gives "5", `### 5.8 ...` gives "5.8".
    static func sections() throws -> Set<String> {
        let text = try String(contentsOfFile: root + "/docs/design.md", encoding: .utf8)
        let heading = try Regex(#"^#{2,3} (\d+(?:\.\d+)?)\.? "#)
        var found: Set<String> = []
        for line in text.split(separator: "\n") {
            if let match = line.firstMatch(of: heading), let number = match.output[1].substring { found.insert(String(number)) }
        }
        return found
    }

    /// Every `§N`/`§N.M` after the word "design" (ranges such as `§5.2-5.3`
    /// and lists such as `§5.6, §5.7` count each number), by file.
    static func references() throws -> [(file: String, section: String)] {
        let cited = try Regex(#"[Dd]esign (§[0-9.,\-– §]+)"#)
        let number = try Regex(#"\d+(?:\.\d+)?"#)
        var found: [(String, String)] = []
        for directory in ["Sources", "Tests", "README.md"] {
            let url = URL(fileURLWithPath: root + "/" + directory)
            let files: [URL] = directory.hasSuffix(".md")
                ? [url]
                : (FileManager.default.enumerator(at: url, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL }
                    .filter { $0.pathExtension == "swift" } ?? [])
            for file in files {
                let text = try String(contentsOf: file, encoding: .utf8)
                for match in text.matches(of: cited) {
                    guard let list = match.output[1].substring else { continue }
                    let shown = file.path.replacingOccurrences(of: root + "/", with: "")
                    for part in list.matches(of: number) {
                        found.append((shown, String(list[part.range])))
                    }
                }
            }
        }
        return found
    }

    @Test("every 'design §N' in the code resolves to a section of docs/design.md")
    func everyReferenceResolves() throws {
        let sections = try Self.sections()
        #expect(sections.contains("4.4") && sections.contains("5.8"), "the document's sections are read: \(sections.sorted())")
        let references = try Self.references()
        #expect(references.count > 50, "the scan finds the code's references (\(references.count))")
        for (file, section) in references {
            #expect(sections.contains(section), "\(file) cites design §\(section), which docs/design.md does not have")
        }
    }
}
