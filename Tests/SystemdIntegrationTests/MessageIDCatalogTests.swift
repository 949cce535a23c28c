import Foundation
import SystemdIntegration
import Testing

/// packaging/journal/volume-reaper.catalog, found from this file's location.
let catalogPath = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("packaging/journal/volume-reaper.catalog").path

/// One catalog entry: `-- <id>`, `Key: value` headers, a blank line, text.
struct CatalogEntry {
    var id: String
    var headers: [String: String]
    var body: [String]
}

/// Parses the journal catalog format as systemd's catalog.c does, and fails
/// on anything it would refuse or silently misread.
func parseCatalog(_ text: String) throws -> [CatalogEntry] {
    struct FormatError: Error, CustomStringConvertible {
        var line: Int
        var message: String
        var description: String { "volume-reaper.catalog:\(line): \(message)" }
    }
    var entries: [CatalogEntry] = []
    var inHeader = false
    var previousBlank = true
    for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = String(rawLine)
        let number = index + 1
        if line.hasPrefix("#") { continue }  // comments, anywhere
        if line.isEmpty {
            if inHeader {
                inHeader = false  // headers end, text follows
            }
            previousBlank = true
            continue
        }
        if line.hasPrefix("-- ") {
            guard previousBlank else { throw FormatError(line: number, message: "entry header must follow a blank line") }
            let id = String(line.dropFirst(3))
            guard id.count == 32, id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw FormatError(line: number, message: "'\(id)' is not 32 lowercase hex digits")
            }
            entries.append(CatalogEntry(id: id, headers: [:], body: []))
            inHeader = true
        } else if inHeader {
            guard let colon = line.firstIndex(of: ":"), line[line.index(after: colon)...].hasPrefix(" ") else {
                throw FormatError(line: number, message: "header line is not 'Key: value'")
            }
            let key = String(line[..<colon])
            guard entries[entries.count - 1].headers[key] == nil else {
                throw FormatError(line: number, message: "header \(key) repeated")
            }
            entries[entries.count - 1].headers[key] = String(line[colon...].dropFirst(2))
        } else {
            guard !entries.isEmpty else { throw FormatError(line: number, message: "text before the first entry") }
            entries[entries.count - 1].body.append(line)
        }
        previousBlank = false
    }
    return entries
}

@Suite("MessageID and the journal catalog")
struct MessageIDCatalogTests {
    @Test("ids are distinct random (v4) 128-bit ids as systemd-id128 new makes them")
    func idsAreWellFormed() {
        let ids = MessageID.allCases.map(\.rawValue)
        #expect(Set(ids).count == ids.count)
        #expect(ids.count == 11)
        for id in ids {
            let digits = Array(id)
            #expect(digits.count == 32)
            #expect(digits.allSatisfy { $0.isHexDigit && !$0.isUppercase })
            #expect(digits[12] == "4", "version nibble of \(id)")
            #expect("89ab".contains(digits[16]), "variant nibble of \(id)")
        }
        #expect(MessageID.volumeReaped.metadata == ["message_id": "5109ffc17eb34ec3bd6968d5b3c35abc"])
    }

    @Test("the catalog explains every MessageID exactly once, and nothing else")
    func catalogMatchesSwift() throws {
        let entries = try parseCatalog(String(contentsOfFile: catalogPath, encoding: .utf8))
        let catalogIDs = entries.map(\.id)
        for id in MessageID.allCases {
            #expect(catalogIDs.filter { $0 == id.rawValue }.count == 1, "\(id) (\(id.rawValue)) in catalog")
        }
        #expect(Set(catalogIDs) == Set(MessageID.allCases.map(\.rawValue)))
        #expect(catalogIDs.count == MessageID.allCases.count)
        for entry in entries {
            #expect(entry.headers["Subject"]?.isEmpty == false, "Subject of \(entry.id)")
            #expect(entry.headers["Defined-By"] == "volume-reaper", "Defined-By of \(entry.id)")
            #expect(entry.headers["Documentation"] == "man:volume-reaper(8)", "Documentation of \(entry.id)")
            #expect(!entry.body.isEmpty, "explanation of \(entry.id)")
        }
    }

    @Test(
        "journalctl --update-catalog accepts the catalog",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/journalctl"), "/usr/bin/journalctl missing")
    )
    func journalctlAcceptsCatalog() throws {
        let root = try TempDirectory()
        let catalogDir = root.path + "/usr/lib/systemd/catalog"
        try FileManager.default.createDirectory(atPath: catalogDir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: catalogPath, toPath: catalogDir + "/volume-reaper.catalog")
        defer { try? FileManager.default.removeItem(atPath: root.path + "/usr") }
        defer { try? FileManager.default.removeItem(atPath: root.path + "/var") }

        func journalctl(_ arguments: [String]) throws -> (Int32, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/journalctl")
            process.arguments = ["--root=\(root.path)"] + arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        let (updateStatus, updateOutput) = try journalctl(["--update-catalog"])
        #expect(updateStatus == 0, "journalctl --update-catalog: \(updateOutput)")
        let (listStatus, listing) = try journalctl(["--list-catalog"])
        #expect(listStatus == 0)
        let listed = listing.split(separator: "\n").filter { $0.contains(" volume-reaper: ") }
        #expect(Set(listed.map { String($0.prefix(32)) }) == Set(MessageID.allCases.map(\.rawValue)))
    }
}
