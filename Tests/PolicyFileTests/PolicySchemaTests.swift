import BoundedYAML
import Foundation
@testable import PolicyFile
import Testing

/// The policy's one key table (`PolicySchema`) against the reader and README:
/// a key cannot be read but missing from the reference, or documented but refused.
@Suite("Policy schema")
struct PolicySchemaTests {
    @Test("pressure.chekInterval: did you mean checkInterval, naming the field path")
    func checkIntervalTypo() throws {
        let error = try #require(policyError { () throws(PolicyError) in try PolicyLoader.parse("pressure:\n  chekInterval: 10s\n", file: "p.yaml") })
        #expect(error.code == .unknownKey && error.field == "pressure.chekInterval")
        #expect(error.description == #"p.yaml: pressure.chekInterval: unknown key in pressure; did you mean pressure.checkInterval? (got "chekInterval")"#)
    }

    @Test("an unknown key in any section gets a did-you-mean naming the section path", arguments: PolicySchema.schema.sections)
    func nearMissInEverySection(_ section: YAMLSection) throws {
        let key = section.typo
        let yaml = section.path.isEmpty ? "\(key): {}\n" : "\(section.path):\n  \(key): x\n"
        let error = try #require(policyError { () throws(PolicyError) in try PolicyLoader.parse(yaml, file: "p.yaml") })
        let field = section.path.isEmpty ? key : "\(section.path).\(key)"
        #expect(error.code == .unknownKey && error.field == field, "\(error)")
        #expect(error.description.contains("did you mean \(section.path.isEmpty ? "" : section.path + ".")\(section.firstKey)?"), "\(error)")
    }

    @Test("every key of the table is read: a bad value is refused for what it is, never as an unknown key")
    func everyKeyIsRead() throws {
        for section in PolicySchema.schema.sections where !section.path.isEmpty {
            for key in section.names {
                let yaml = "\(section.path):\n  \(key): [[not, a, value]]\n"
                let error = try #require(policyError { () throws(PolicyError) in try PolicyLoader.parse(yaml, file: "p.yaml") }, "\(section.path).\(key)")
                #expect(error.code != .unknownKey && error.field?.hasPrefix("\(section.path).\(key)") == true, "\(error)")
            }
        }
        for key in PolicySchema.sectionNames {
            #expect(throws: Never.self, "\(key)") { try PolicyLoader.parse("\(key): {}\n", file: "p.yaml") }
        }
    }

    @Test("README's policy reference is the table the reader uses")
    func readmeReference() throws {
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains(PolicyDescription.reference + "\n\n"), "README's Policy reference table differs from PolicyDescription.reference:\n\(PolicyDescription.reference)")
        for section in PolicySchema.schema.sections where !section.path.isEmpty {
            for key in section.names {
                #expect(PolicyDescription.reference.contains("| `\(section.path).\(key)` |"), "\(section.path).\(key) undocumented")
            }
        }
    }

    @Test("quoted \"true\" is text, not a boolean, with the hint to unquote it")
    func quotedTrue() throws {
        #expect(try PolicyLoader.parse("orphans:\n  reap: true\n", file: "p.yaml").orphans.reap)
        let error = try #require(policyError { () throws(PolicyError) in try PolicyLoader.parse("orphans:\n  reap: \"true\"\n", file: "p.yaml") })
        #expect(error.description == #"p.yaml: orphans.reap: write true or false without quotes (got "true")"#)
    }
}

extension YAMLSection {
    var firstKey: String { names[0] }
    /// The first key with two letters swapped: a typo one edit away.
    var typo: String {
        var letters = Array(firstKey)
        letters.swapAt(1, 2)
        return String(letters)
    }
}
