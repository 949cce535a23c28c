import Foundation
import Testing
import TestSupport

/// The programs the tests run come from one table, `scripts/external-tools`,
/// which `scripts/install-deps` installs (issue 19): a test that starts
/// calling a new program fails here until the program is in the table, so a
/// fresh machine's `./scripts/install-deps && make test` never meets a
/// missing tool.
@Suite("external tools")
struct ExternalToolsTests {
    static let root = PackagePaths.root.path

    /// Program name -> Debian package, from the table.
    static func table() throws -> [String: String] {
        let text = try String(contentsOfFile: root + "/scripts/external-tools", encoding: .utf8)
        var rows: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2 else { continue }
            rows[String(fields[0])] = String(fields[1])
        }
        return rows
    }

    /// Every program the test sources run: absolute paths under a bin
    /// directory, and names run through `/usr/bin/env` (its first argument
    /// that is not an option or an assignment).
    static func programsRunByTests() throws -> [String: String] {
        var found: [String: String] = [:]
        let absolute = try Regex(#""/(?:usr/)?s?bin/([A-Za-z0-9_.+-]+)""#)
        let viaEnv = try Regex(#""/usr/bin/env",\s*\[((?:\s*"[^"]*",?)+)"#)
        let tests = URL(fileURLWithPath: root + "/Tests")
        let files = FileManager.default.enumerator(at: tests, includingPropertiesForKeys: nil)?
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" } ?? []
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            let name = file.lastPathComponent
            for match in text.matches(of: absolute) {
                if let program = match.output[1].substring { found[String(program), default: name] = name }
            }
            for match in text.matches(of: viaEnv) {
                guard let list = match.output[1].substring else { continue }
                let arguments = list.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \"\n")) }
                if let program = arguments.first(where: { !$0.hasPrefix("-") && !$0.contains("=") && !$0.isEmpty && $0 != "MAKEFLAGS" && $0 != "MFLAGS" && $0 != "MAKELEVEL" }) {
                    found[(program as NSString).lastPathComponent, default: name] = name
                }
            }
        }
        // The binary under test is ours, not a system tool.
        found["volume-reaper"] = nil
        return found
    }

    @Test("every program a test runs is in scripts/external-tools")
    func everyProgramIsListed() throws {
        let table = try Self.table()
        let used = try Self.programsRunByTests()
        #expect(used.keys.contains("promtool"), "the scan finds the tests' programs (promtool is one)")
        for (program, file) in used.sorted(by: { $0.key < $1.key }) {
            #expect(table[program] != nil, "\(file) runs \(program), which scripts/external-tools does not list (so install-deps does not install it)")
        }
    }

    @Test("install-deps reads the table and every listed program is installed")
    func everyListedProgramIsInstalled() throws {
        let script = try String(contentsOfFile: Self.root + "/scripts/install-deps", encoding: .utf8)
        #expect(script.contains("external-tools"), "install-deps installs the table's packages")
        let path = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        for (program, package) in try Self.table().sorted(by: { $0.key < $1.key }) {
            let installed = path.contains { FileManager.default.isExecutableFile(atPath: $0 + "/" + program) }
            #expect(installed, "\(program) is missing: run ./scripts/install-deps (it installs Debian's \(package))")
        }
    }
}
