import BoundedYAML
import Testing
import Yams

/// The one field reader: keys checked against a section's table, near misses
/// named with their field path, reference tables made from the same table.
@Suite("Field reader")
struct FieldReaderTests {
    static let schema = YAMLSchema([
        YAMLSection("", noun: "section", keys: [YAMLKey("idle"), YAMLKey("pressure", default: "absent", "pressure mode")]),
        YAMLSection("idle", keys: [YAMLKey("after", default: "`30m`", "idle after this")]),
        YAMLSection("pressure", keys: [YAMLKey("checkInterval", default: "`10s`", "how often"), YAMLKey("margin", default: "`5`", "points")]),
        YAMLSection("foreign", unknownKeys: .nearMissesRefused, keys: [YAMLKey("server"), YAMLKey("certificate-authority")]),
    ])

    func problem(_ yaml: String, _ section: String, at prefix: String? = nil) throws -> FieldError? {
        let node = try #require(try BoundedYAML.documents(yaml, limits: .settings).first)
        do {
            _ = try Self.schema.entries(of: node, section: section, at: prefix)
            return nil
        } catch {
            return error
        }
    }

    @Test("a near miss is named with its section's path, and the field path is the key's")
    func nearMiss() throws {
        let problem = try #require(try problem("chekInterval: 10s\n", "pressure"))
        #expect(problem.code == .unknownKey && problem.field == "pressure.chekInterval" && problem.value == "chekInterval")
        #expect(problem.problem == "unknown key in pressure; did you mean pressure.checkInterval?")
        #expect(problem.line == 1 && problem.column == 1)
    }

    @Test("a key far from every key lists the known ones; a key of another section names it")
    func farAndElsewhere() throws {
        #expect(try problem("banana: 1\n", "pressure")?.problem == "unknown key in pressure; known: checkInterval, margin")
        #expect(try problem("after: 1\n", "pressure")?.problem == "unknown key in pressure; did you mean idle.after?")
        #expect(try problem("after: 1\n", "")?.problem == "unknown section; did you mean idle.after?")
        #expect(try problem("presure: 1\n", "")?.problem == "unknown section; did you mean pressure?")
    }

    @Test("another program's section: near misses refused under the real path, other keys let through")
    func foreign() throws {
        let typo = try #require(try problem("certificate-authorty: /ca\n", "foreign", at: "clusters[0].cluster"))
        #expect(typo.field == "clusters[0].cluster.certificate-authorty")
        #expect(typo.problem == "unknown key in clusters[0].cluster; did you mean clusters[0].cluster.certificate-authority?")
        #expect(try problem("server: x\nfuture-field: {a: 1}\n", "foreign") == nil)
    }

    @Test("entries carry their field paths; a section with no value is empty; a list is no mapping")
    func entries() throws {
        let node = try #require(try BoundedYAML.documents("margin: 5\ncheckInterval: 10s\n", limits: .settings).first)
        #expect(try Self.schema.entries(of: node, section: "pressure").map(\.field) == ["pressure.margin", "pressure.checkInterval"])
        #expect(try problem("~\n", "pressure") == nil)
        let list = try #require(try problem("[a]\n", "pressure"))
        #expect(list.code == .notAMapping && list.problem == "expected a mapping of checkInterval, margin, not a list")
    }

    @Test("the reference table has a row per documented key, sections inline under their key")
    func reference() {
        #expect(Self.schema.referenceTable() == """
            | key | default | |
            |---|---|---|
            | `idle.after` | `30m` | idle after this |
            | `pressure` | absent | pressure mode |
            | `pressure.checkInterval` | `10s` | how often |
            | `pressure.margin` | `5` | points |
            """)
        #expect(Self.schema.referenceTable("pressure", header: "key (under `pressure`)").hasPrefix("| key (under `pressure`) | default | |\n|---|---|---|\n| `checkInterval` |"))
    }

    @Test("near misses: case, separators, a typo or two; not a different word")
    func nearest() {
        #expect(NearMiss.nearest("max_reaps_per_cycle", in: ["maxReapsPerCycle"]) == "maxReapsPerCycle")
        #expect(NearMiss.nearest("chekInterval", in: ["checkInterval", "margin"]) == "checkInterval")
        #expect(NearMiss.nearest("banana", in: ["checkInterval", "margin"]) == nil)
    }
}
