import Foundation
import ReaperCore
import Testing
@testable import PodManifests

private func failure(_ text: String, file: String = "/m/pods.json") -> String? {
    do {
        _ = try ManifestReader.parse(text, file: file)
        return nil
    } catch {
        return error.message
    }
}

@Suite("JSON documents")
struct JSONDocumentTests {
    @Test("duplicate keys are refused in JSON, at any depth, escaped or not")
    func duplicateKeys() throws {
        #expect(failure(#"{"kind":"Pod","metadata":{"uid":"a","uid":"b"}}"#)
            == #"document 1: duplicate key "uid" at line 1, column 37"#)
        #expect(failure("{\"kind\":\"Pod\",\n \"kind\":\"Pod\",\"metadata\":{\"uid\":\"a\"}}")
            == #"document 1: duplicate key "kind" at line 2, column 2"#)
        // "\u0075id" is "uid": Go's decoder (last wins) and others (first wins) would disagree.
        #expect(failure(#"{"kind":"Pod","metadata":{"uid":"a","\u0075id":"b"}}"#)?.hasPrefix(#"document 1: duplicate key "uid""#) == true)
        let deep = #"{"kind":"PodList","items":[{"metadata":{"uid":"a"},"spec":{"containers":[{"name":"c","env":[{"name":"A","name":"B"}]}]}}]}"#
        #expect(failure(deep)?.hasPrefix(#"document 1: duplicate key "name" at line 1"#) == true)
        // Equal keys in different objects, and keys differing only in case or escapes of other characters, are fine.
        let fine = #"{"kind":"PodList","items":[{"metadata":{"uid":"a","UID":"x","u\"id":"y"}},{"metadata":{"uid":"b"}}]}"#
        #expect(try ManifestReader.parse(fine, file: "f.json").map(\.uid) == ["a", "b"])
        // A key in a message is escaped and cut short.
        let key = "\\u001b[31m" + String(repeating: "k", count: 500)
        let hostile = "{\"kind\":\"Pod\",\"\(key)\":1,\"\(key)\":2}"
        let message = failure(hostile) ?? ""
        #expect(!message.contains("\u{1B}") && message.count < 200, "\(message)")
    }

    @Test("deep nesting is refused, not a stack overflow")
    func deepNesting() {
        let deep = "{\"kind\":\"Pod\",\"spec\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(failure(deep)?.hasPrefix("document 1: nested deeper than 512 levels at line 1") == true)
    }

    @Test("syntax errors name the problem and its position; the text may still be YAML")
    func syntax() {
        for (text, problem, offset) in [
            (#"{"kind":"Pod"} x"#, "Unexpected character 'x' after the document", 15),
            (#"{"kind":"P\od"}"#, "Invalid escape sequence in a string", 11),
            ("{\"kind\":\"P\u{1}od\"}", "Unescaped control character in a string", 10),
            (#"{"kind":01}"#, "Expected ',' or '}' after an object member", 9),
            (#"{"kind":1.}"#, "Invalid number: no digit after the decimal point", 10),
            (#"{"kind":tru}"#, "Unexpected character '}'", 11),
            (#"{"kind" "Pod"}"#, "Expected ':' after an object key", 8),
            (#"{"kind":"Pod",}"#, "Expected a key (a string) in an object", 14),
            (#"[1,]"#, "Unexpected character ']'", 3),
            (#"{"a":"\u12G4"}"#, "Invalid \\u escape in a string", 10),
        ] {
            let bytes = Array(text.utf8)
            let result = bytes.withUnsafeBytes { raw in Result { () throws(JSONOutline.SyntaxError) in try JSONOutline.scan(raw) } }
            guard case .failure(.syntax(let message, let at)) = result else {
                Issue.record("\(text): \(result)")
                continue
            }
            #expect(message == problem, "\(text)")
            #expect(at == offset, "\(text)")
        }
        // Not JSON, not YAML either: both reasons, the JSON one with its position.
        #expect(failure(#"{"kind":"P\od"}"#)?.hasPrefix("not valid JSON (Invalid escape sequence in a string at line 1, column 12) nor YAML (") == true)
        // Not JSON, but flow-style YAML: read as YAML.
        #expect(failure(#"{"kind":tru}"#) == "document 1 (line 1): kind tru is not Pod, PodList or List")
    }

    @Test("JSON and YAML follow the same type rules, field by field")
    func sameRules() throws {
        // (JSON, YAML, the message both give; YAML calls any scalar "a scalar").
        let cases: [(String, String, String)] = [
            (#"{"kind":"Pod","metadata":[1]}"#, "kind: Pod\nmetadata: [1]\n", "metadata is a list, not a mapping"),
            (#"{"kind":"Pod","metadata":{"uid":["a"]}}"#, "kind: Pod\nmetadata: {uid: [a]}\n", "metadata.uid is a list, not a string"),
            (#"{"kind":"Pod","metadata":{"uid":"u","name":{"a":1}}}"#, "kind: Pod\nmetadata: {uid: u, name: {a: 1}}\n", "metadata.name is a mapping, not text"),
            (#"{"kind":"Pod","metadata":{"uid":"u","annotations":["a"]}}"#, "kind: Pod\nmetadata: {uid: u, annotations: [a]}\n", "metadata.annotations is a list, not a mapping"),
            (#"{"kind":"Pod","metadata":{"uid":"u","annotations":{"a":{"b":1}}}}"#, "kind: Pod\nmetadata: {uid: u, annotations: {a: {b: 1}}}\n", "annotation a is a mapping, not text"),
            (#"{"kind":"Pod","metadata":{"uid":"u","ownerReferences":{"kind":"Job"}}}"#, "kind: Pod\nmetadata: {uid: u, ownerReferences: {kind: Job}}\n", "metadata.ownerReferences is a mapping, not a list"),
            (#"{"kind":"Pod","metadata":{"uid":"u","ownerReferences":[null]}}"#, "kind: Pod\nmetadata: {uid: u, ownerReferences: [null]}\n", "metadata.ownerReferences[0] is null, not a mapping"),
            (#"{"kind":"Pod","metadata":{"uid":"u","ownerReferences":[{"name":"x"}]}}"#, "kind: Pod\nmetadata: {uid: u, ownerReferences: [{name: x}]}\n", "metadata.ownerReferences[0] has no kind"),
            (#"{"kind":"Pod","metadata":{"uid":"u"},"status":{"phase":["Running"]}}"#, "kind: Pod\nmetadata: {uid: u}\nstatus: {phase: [Running]}\n", "status.phase is a list, not text"),
            (#"{"kind":"Pod","metadata":{"uid":"u"},"status":{"containerStatuses":{}}}"#, "kind: Pod\nmetadata: {uid: u}\nstatus: {containerStatuses: {}}\n", "status.containerStatuses is a mapping, not a list"),
            (#"{"kind":"Pod","metadata":{"uid":"u"},"status":{"containerStatuses":[{"state":[]}]}}"#, "kind: Pod\nmetadata: {uid: u}\nstatus: {containerStatuses: [{state: []}]}\n", "status.containerStatuses[0].state is a list, not a mapping"),
            (#"{"kind":"Pod","metadata":{"uid":"u"},"status":{"ephemeralContainerStatuses":[{"state":{"terminated":{"finishedAt":"soon"}}}]}}"#,
             "kind: Pod\nmetadata: {uid: u}\nstatus: {ephemeralContainerStatuses: [{state: {terminated: {finishedAt: soon}}}]}\n",
             #"status.ephemeralContainerStatuses[0].state.terminated.finishedAt "soon" is not an RFC 3339 time"#),
            (#"{"kind":"List","items":[{"metadata":{"uid":"a"}}]}"#, "kind: List\nitems: [{metadata: {uid: a}}]\n", "has no kind (every item of a List must be kind Pod)"),
            (#"{"kind":"PodList","items":{"a":1}}"#, "kind: PodList\nitems: {a: 1}\n", "items is a mapping, not a list"),
            (#"{"kind":["Pod"]}"#, "kind: [Pod]\n", "kind is a list, not text"),
        ]
        for (json, yaml, message) in cases {
            let fromJSON = try #require(failure(json), "\(json) parsed")
            let fromYAML = try #require(failure(yaml, file: "/m/p.yaml"), "\(yaml) parsed")
            #expect(fromJSON.hasSuffix(message), "JSON: \(fromJSON)")
            #expect(fromYAML.hasSuffix(message), "YAML: \(fromYAML)")
        }
        // Scalars: a JSON number is not a string for uid; YAML has only scalars, all text.
        #expect(failure(#"{"kind":"Pod","metadata":{"uid":true}}"#) == "document 1: metadata.uid is a boolean, not a string")
        #expect(try ManifestReader.parse("kind: Pod\nmetadata: {uid: true}\n", file: "t.yaml").map(\.uid) == ["true"])
        // null is absent in both.
        #expect(try ManifestReader.parse(#"{"kind":"Pod","metadata":{"uid":"u","name":null},"status":null}"#, file: "n.json").map(\.name) == [""])
        #expect(try ManifestReader.parse("kind: Pod\nmetadata: {uid: u, name: null}\nstatus: ~\n", file: "n.yaml").map(\.name) == [""])
    }

    @Test("a kubelet /pods document parses to the same pods from bytes, text and the public decoder")
    func publicDecoder() throws {
        let data = Data(Fixtures.kubeletPods.utf8)
        let document = try PodDocument.decode(json: data, source: "kubelet")
        #expect(document.pods == (try ManifestReader.parse(Fixtures.kubeletPods, file: "kubelet")))
        #expect(document.pods.count == 5)
        // A slice of a bigger buffer (a line of a stream) decodes too.
        let framed = Data("xx\n".utf8) + data + Data("\nyy".utf8)
        #expect(try PodDocument.decode(json: framed[3..<(3 + data.count)], source: "kubelet").pods == document.pods)

        let list = try PodDocument.decode(json: Data(#"{"kind":"PodList","metadata":{"resourceVersion":"4711"},"items":[]}"#.utf8), source: "api")
        #expect(list.resourceVersion == "4711")
        #expect(list.pods.isEmpty)
        let pod = try PodDocument.decode(json: Data(#"{"kind":"Pod","metadata":{"uid":"u","resourceVersion":"9"}}"#.utf8), source: "api")
        #expect(pod.resourceVersion == "9")
        #expect(pod.pods.map(\.uid) == ["u"])

        #expect(throws: ManifestError(file: "api", message: "document 1, pod default/x: no metadata.uid")) {
            try PodDocument.decode(json: Data(#"{"kind":"Pod","metadata":{"name":"x"}}"#.utf8), source: "api")
        }
        #expect(throws: ManifestError(file: "api", message: "not valid JSON: Unexpected end of file at line 1, column 14")) {
            try PodDocument.decode(json: Data(#"{"kind":"Pod""#.utf8), source: "api")
        }
    }

    @Test("watch events: a pod, a bookmark, an expired resourceVersion")
    func watchEvents() throws {
        let modified = try PodWatchEvent.decode(json: Data(#"""
            {"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","namespace":"ns","uid":"u1","resourceVersion":"12"},"status":{"phase":"Succeeded"}}}
            """#.utf8), source: "watch")
        #expect(modified.type == "MODIFIED")
        #expect(modified.pod?.uid == "u1")
        #expect(modified.pod?.phase == "Succeeded")
        #expect(modified.resourceVersion == "12")

        let bookmark = try PodWatchEvent.decode(json: Data(#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"13"}}}"#.utf8), source: "watch")
        #expect(bookmark.pod == nil)
        #expect(bookmark.resourceVersion == "13")

        let gone = try PodWatchEvent.decode(json: Data(#"""
            {"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (13)","reason":"Expired","code":410}}
            """#.utf8), source: "watch")
        #expect(gone.errorCode == 410)
        #expect(gone.errorReason == "Expired")

        #expect(throws: ManifestError(file: "watch", message: "watch event: ADDED pod ns/b: no metadata.uid")) {
            try PodWatchEvent.decode(json: Data(#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"b","namespace":"ns"}}}"#.utf8), source: "watch")
        }
        #expect(throws: ManifestError.self) {
            try PodWatchEvent.decode(json: Data(#"{"type":"ADDED","type":"DELETED","object":{}}"#.utf8), source: "watch")
        }
    }

    @Test("the UTF-8 check agrees with the standard library on random and edge bytes")
    func utf8Check() {
        var generator = SystemRandomNumberGenerator()
        let edges: [[UInt8]] = [
            [0xC0, 0x80], [0xE0, 0x9F, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x90, 0x80, 0x80],
            [0xEF, 0xBB, 0xBF], [0xE2, 0x82], Array("plain ascii text, long enough for the wide path".utf8),
        ]
        for bytes in edges {
            #expect(UTF8Check.isValid(Data(bytes)) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
        for _ in 0..<2_000 {
            let count = Int.random(in: 0..<24, using: &generator)
            let bytes = (0..<count).map { _ in
                Bool.random(using: &generator) ? UInt8.random(in: 0x20..<0x80, using: &generator) : UInt8.random(in: 0x80...0xFF, using: &generator)
            }
            #expect(UTF8Check.isValid(Data(bytes)) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
    }
}
