import Foundation
import Testing
import TestSupport

/// Syscalls are wrapped once, in SystemCalls (and the systemd calls in
/// SystemdIntegration): everywhere else reaches libc only through them, so
/// every call retries EINTR and fails with errno, call and path.
@Suite("Sources: libc only through SystemCalls")
struct SyscallImportTests {
    static let allowed: Set<String> = ["SystemCalls", "SystemdIntegration"]
    static let libcModules = ["Glibc", "Musl", "Darwin"]
    static let importKinds: Set<String> = ["struct", "class", "enum", "protocol", "typealias", "func", "var", "let"]

    /// `target/file:line: text` of every libc import outside the allowed targets.
    static func offendingImports(under sources: URL) throws -> [String] {
        var found: [String] = []
        let targets = try FileManager.default.contentsOfDirectory(atPath: sources.path).sorted()
        for target in targets where !allowed.contains(target) {
            guard let files = FileManager.default.enumerator(atPath: sources.appendingPathComponent(target).path) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: sources.appendingPathComponent(target).appendingPathComponent(file), encoding: .utf8)
                for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    let words = line.split(whereSeparator: \.isWhitespace)
                    // `import Glibc`, `@_exported import Glibc`, `import struct Glibc.stat`.
                    guard let at = words.firstIndex(of: "import") else { continue }
                    let path = words[(at + 1)...].first { !Self.importKinds.contains(String($0)) } ?? ""
                    let module = path.split(separator: ".").first ?? ""
                    if libcModules.contains(String(module)) {
                        found.append("Sources/\(target)/\(file):\(index + 1): \(line.trimmingCharacters(in: .whitespaces))")
                    }
                }
            }
        }
        return found
    }

    @Test("no file outside SystemCalls and SystemdIntegration imports Glibc, Musl or Darwin")
    func noLibcImports() throws {
        let offending = try Self.offendingImports(under: PackagePaths.root.appendingPathComponent("Sources"))
        #expect(offending.isEmpty, "libc reached around SystemCalls (add a wrapper there):\n\(offending.joined(separator: "\n"))")
    }
}
