import Foundation
import ReaperCore
import Testing
@testable import PodManifests

/// The error `parse` throws for `text`, or nil when it parses.
private func failure(_ text: String, file: String = "/m/broken.yaml") -> ManifestError? {
    do {
        _ = try ManifestReader.parse(text, file: file)
        return nil
    } catch {
        return error
    }
}

@Suite("Broken manifests")
struct BrokenTests {
    @Test("truncated JSON: named as not JSON nor YAML, with a position")
    func truncatedJSON() throws {
        let text = String(Fixtures.kubectlList.prefix(700))
        let error = try #require(failure(text, file: "/m/pods.json"))
        #expect(error.file == "/m/pods.json")
        #expect(error.message.hasPrefix("not valid JSON (Unexpected end of file"))
        #expect(error.message.contains("nor YAML (line "))
        #expect(!error.message.contains("\n"))
        #expect(error.description.hasPrefix("/m/pods.json: "))
    }

    @Test("invalid JSON in the middle gives its line and column")
    func invalidJSON() throws {
        let error = try #require(failure("{\n  \"kind\": \"Pod\",\n  \"metadata\": {\"uid\": \"x\" \"name\": \"y\"}\n}\n"))
        #expect(error.message.contains("line 3, column"), "\(error)")
    }

    @Test("YAML syntax error: line and column")
    func yamlSyntax() throws {
        let yaml = """
            kind: Pod
            metadata:
              name: a
              uid: "unterminated
            status:
              phase: Running
            """
        let error = try #require(failure(yaml))
        #expect(error.message.hasPrefix("not valid YAML: line "), "\(error)")
        #expect(error.message.contains("column"))
        #expect(!error.message.contains("\n"))

        let indent = try #require(failure("kind: Pod\nmetadata:\n  uid: a\n name: b\n"))
        #expect(indent.message.hasPrefix("not valid YAML: line 4, column 2"), "\(indent)")
    }

    @Test("duplicate keys are a YAML error")
    func duplicateKeys() throws {
        let error = try #require(failure("kind: Pod\nmetadata:\n  uid: a\n  uid: b\n"))
        // Reported at the repeat, in our words (not Yams' "duplicate keys").
        #expect(error.message == "not valid YAML: line 4, column 3: duplicate key \"uid\": each key may appear once in a mapping", "\(error)")
    }

    @Test("a Pod without uid names the document, item and pod")
    func missingUID() throws {
        let single = try #require(failure("kind: Pod\nmetadata:\n  name: nouid\n  namespace: ns\n"))
        #expect(single.message == "document 1 (line 1), pod ns/nouid: no metadata.uid", "\(single)")

        let list = #"{"kind":"PodList","items":[{"metadata":{"uid":"a"}},{"metadata":{"name":"b"}}]}"#
        let inList = try #require(failure(list))
        #expect(inList.message == "document 1, PodList items[1], pod default/b: no metadata.uid", "\(inList)")

        let third = try #require(failure("kind: Pod\nmetadata: {uid: a}\n---\nkind: Pod\nmetadata: {uid: b}\n---\nkind: Pod\nmetadata: {uid: ''}\n"))
        #expect(third.message.hasPrefix("document 3 (line 7)"), "\(third)")
        #expect(third.message.hasSuffix("metadata.uid is empty"))

        let noMetadata = try #require(failure("kind: Pod\nspec: {}\n"))
        #expect(noMetadata.message == "document 1 (line 1): no metadata.uid")
    }

    @Test("a uid that is not a string")
    func uidNotString() throws {
        let number = try #require(failure(#"{"kind":"Pod","metadata":{"name":"n","uid":12}}"#))
        #expect(number.message == "document 1, pod default/n: metadata.uid is a number, not a string")
        let mapping = try #require(failure("kind: Pod\nmetadata:\n  uid: {a: b}\n"))
        #expect(mapping.message.hasSuffix("metadata.uid is a mapping, not a string"))
    }

    @Test("a wrong kind is named")
    func wrongKind() throws {
        let deployment = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, uid: d1}
            """
        #expect(failure(deployment)?.message == "document 1 (line 1): kind Deployment is not Pod, PodList or List")

        let second = "kind: Pod\nmetadata: {uid: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
        #expect(failure(second)?.message == "document 2 (line 4): kind Service is not Pod, PodList or List")

        let list = #"{"kind":"List","items":[{"kind":"Pod","metadata":{"uid":"a"}},{"kind":"Service","metadata":{"name":"s","uid":"b"}}]}"#
        #expect(failure(list)?.message == "document 1, List items[1]: kind Service is not Pod")

        let noKindInList = #"{"kind":"List","items":[{"metadata":{"uid":"a"}}]}"#
        #expect(failure(noKindInList)?.message == "document 1, List items[0]: has no kind (every item of a List must be kind Pod)")

        #expect(failure("metadata: {uid: a}\n")?.message == "document 1 (line 1): has no kind (expected Pod, PodList or List)")
        #expect(failure("- kind: Pod\n")?.message.hasSuffix("is a list, not a mapping (expected a Pod, PodList or List)") == true)
        #expect(failure("[1, 2]")?.message == "document 1: is a list, not a mapping (expected a Pod, PodList or List)")
    }

    @Test("no document: empty, blank, comment-only, only separators")
    func noDocument() {
        for text in ["", "\n\n   \n", "# just a comment\n# and another\n", "---\n---\n# nothing\n"] {
            #expect(failure(text)?.message == "no document (the file is empty or only comments)", "\(text.debugDescription)")
        }
    }

    @Test("an unparseable finishedAt fails the file")
    func badFinishedAt() throws {
        let yaml = """
            kind: Pod
            metadata: {uid: u, name: p}
            status:
              phase: Succeeded
              initContainerStatuses:
              - name: i
                state: {terminated: {finishedAt: yesterday}}
            """
        #expect(failure(yaml)?.message == #"document 1 (line 1), pod default/p: status.initContainerStatuses[0].state.terminated.finishedAt "yesterday" is not an RFC 3339 time"#)
        let dateOnly = "kind: Pod\nmetadata: {uid: u}\nstatus:\n  containerStatuses:\n  - state: {terminated: {finishedAt: 2026-11-29}}\n"
        #expect(failure(dateOnly)?.message.contains("containerStatuses[0].state.terminated.finishedAt \"2026-11-29\"") == true)
        let wrongType = #"{"kind":"Pod","metadata":{"uid":"u"},"status":{"containerStatuses":[{"state":{"terminated":{"finishedAt":{"a":1}}}}]}}"#
        #expect(failure(wrongType)?.message.hasSuffix("finishedAt is a mapping, not text") == true)
    }

    @Test("an annotation value that is a mapping or a list")
    func annotationNotText() {
        let mapping = "kind: Pod\nmetadata:\n  uid: u\n  annotations:\n    a: {b: c}\n"
        #expect(failure(mapping)?.message == "document 1 (line 1): annotation a is a mapping, not text")
        let list = #"{"kind":"Pod","metadata":{"uid":"u","name":"n","annotations":{"x":[1]}}}"#
        #expect(failure(list)?.message == "document 1, pod default/n: annotation x is a list, not text")
    }

    @Test("wrongly typed fields the agent uses are errors")
    func wrongTypes() {
        #expect(failure("kind: Pod\nmetadata: [a]\n")?.message == "document 1 (line 1): metadata is a list, not a mapping")
        #expect(failure("kind: Pod\nmetadata: {uid: u, ownerReferences: {kind: Job}}\n")?.message
            .hasSuffix("metadata.ownerReferences is a mapping, not a list") == true)
        #expect(failure("kind: Pod\nmetadata: {uid: u, ownerReferences: [{name: x}]}\n")?.message
            .hasSuffix("metadata.ownerReferences[0] has no kind") == true)
        #expect(failure("kind: Pod\nmetadata: {uid: u}\nstatus: {phase: [Running]}\n")?.message
            .hasSuffix("status.phase is a list, not text") == true)
        #expect(failure("kind: Pod\nmetadata: {uid: u}\nstatus: Running\n")?.message
            .hasSuffix("status is a scalar, not a mapping") == true)
        #expect(failure("kind: PodList\nitems: {a: b}\n")?.message == "document 1 (line 1): items is a mapping, not a list")
        #expect(failure("kind: PodList\nitems: [3]\n")?.message == "document 1 (line 1), PodList items[0] (line 2): is a scalar, not a mapping")
    }

    @Test("one bad pod fails the whole file (fail closed)")
    func wholeFileFails() {
        let yaml = "kind: Pod\nmetadata: {uid: good}\n---\nkind: Pod\nmetadata: {name: bad}\n"
        #expect(failure(yaml) != nil)
    }
}
