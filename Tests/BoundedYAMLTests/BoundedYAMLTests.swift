import BoundedYAML
import Foundation
import Testing
import Yams

/// The guarded reader on its own: each hostile shape refused at the right
/// place, in our words, within milliseconds; ordinary YAML read as Yams reads it.
@Suite("BoundedYAML")
struct BoundedYAMLTests {
    static let limits = YAMLLimits.settings

    func refusal(_ text: String, limits: YAMLLimits = BoundedYAMLTests.limits) -> YAMLError? {
        do {
            _ = try BoundedYAML.documents(text, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    /// Nested anchors `a0`...`a<levels>`, each nine aliases to the one before.
    static func laughs(levels: Int) -> String {
        var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...levels {
            text += "a\(level): &a\(level) [\(Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", "))]\n"
        }
        return text
    }

    @Test("ordinary YAML with anchors and aliases is composed as Yams composes it")
    func ordinary() throws {
        let text = "base: &base {a: 1, b: [x, y]}\ncopy: *base\nlist:\n  - one\n  - 'two'\n"
        let documents = try BoundedYAML.documents(text, limits: Self.limits)
        #expect(documents.count == 1)
        #expect(documents[0] == (try Yams.compose(yaml: text)))
        #expect(documents[0]["copy"]?["b"]?[1]?.string == "y")
    }

    @Test("several documents and empty ones are returned in order")
    func documents() throws {
        let documents = try BoundedYAML.documents("---\n---\na: 1\n---\nb: 2\n", limits: Self.limits)
        #expect(documents.count == 3)
        #expect(documents[2]["b"]?.int == 2)
        #expect(try BoundedYAML.documents("", limits: Self.limits).isEmpty)
    }

    @Test("an alias used as a mapping key is refused at the alias, however small")
    func aliasAsKey() throws {
        let problem = try #require(refusal("a: &k x\n? *k\n: y\n"))
        #expect(problem.code == .aliasAsKey)
        #expect((problem.line, problem.column) == (2, 3))
        // The 9-level case that took more than 30 s in Yams' duplicate check.
        let started = ContinuousClock.now
        let big = try #require(refusal(Self.laughs(levels: 9) + "? *a9\n: v\n", limits: YAMLLimits(maxDepth: 32, maxAnchors: 100, maxAliases: 1000, maxNodes: .max)))
        #expect(big.code == .aliasAsKey)
        #expect(ContinuousClock.now - started < .seconds(1))
    }

    @Test("a list or mapping used as a key is refused")
    func complexKey() throws {
        let problem = try #require(refusal("? [a, b]\n: c\n"))
        #expect(problem.code == .complexKey)
        #expect(problem.description == "line 1, column 3: a list used as a mapping key; keys are plain names")
    }

    @Test("billion laughs: refused by the node budget without expanding anything")
    func billionLaughs() throws {
        let started = ContinuousClock.now
        let problem = try #require(refusal(Self.laughs(levels: 12)))
        #expect(problem.code == .tooManyNodes)
        #expect(ContinuousClock.now - started < .seconds(1))
        // Within the budget: accepted.
        #expect(refusal(Self.laughs(levels: 3)) == nil)
    }

    @Test("anchors, aliases and depth each have a limit")
    func counts() throws {
        let anchors = (0...100).map { "k\($0): &a\($0) v" }.joined(separator: "\n")
        #expect(refusal(anchors)?.code == .tooManyAnchors)
        let aliases = "a: &a v\nl: [" + Array(repeating: "*a", count: 1001).joined(separator: ", ") + "]\n"
        #expect(refusal(aliases)?.code == .tooManyAliases)
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(refusal(deep)?.code == .tooDeep)
        // libyaml's own nesting limit is never what the user sees.
        let deeper = try #require(refusal(String(repeating: "[", count: 5000)))
        #expect(!deeper.description.contains("yaml_"))
    }

    @Test("duplicate keys are refused at the repeat, quoted, tagged or not", arguments: [
        ("a: 1\nb: 2\na: 3\n", 3, 1),
        ("a: 1\n'a': 2\n", 2, 1),
        ("a: 1\n!!str a: 2\n", 2, 1),
        ("x:\n  y: 1\n  \"y\": 2\n", 3, 3),
    ])
    func duplicates(_ text: String, _ line: Int, _ column: Int) throws {
        let problem = try #require(refusal(text))
        #expect(problem.code == .duplicateKey)
        #expect((problem.line, problem.column) == (line, column), "\(problem)")
        #expect(!problem.description.contains("uncovertable"))
    }

    @Test("syntax errors are one line in our words, control characters escaped")
    func syntax() throws {
        let unclosed = try #require(refusal("a: [b\n"))
        #expect(unclosed.code == .syntax)
        #expect(unclosed.description.hasPrefix("line 2, column 1: not valid YAML: "), "\(unclosed)")
        let control = try #require(refusal("a: b\u{07}c\n"))
        #expect(control.description == "line 1, column 5: not valid YAML: a control character, not allowed in YAML")
        let undefined = try #require(refusal("a: *nothing\n"))
        #expect(undefined.code == .undefinedAlias)
        let escapedKey = try #require(refusal("\"a\\nb\\e\": 1\n\"a\\nb\\e\": 2\n"))
        #expect(escapedKey.description.contains(#"a\nb\u{1b}"#) && !escapedKey.description.contains("\n"))
    }
}
