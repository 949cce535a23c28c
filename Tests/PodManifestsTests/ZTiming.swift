import Foundation
import Testing
import ReaperCore
@testable import PodManifests
@Test func timing() throws {
    var t = Date()
    for _ in 0..<10_000 { _ = RFC3339.parse("2026-11-29T05:01:00Z") }
    print("rfc3339 x10000", Date().timeIntervalSince(t))
    t = Date()
    var items: [String] = []
    for i in 0..<5000 { items.append(#"{"metadata":{"name":"p\#(i)","uid":"u\#(i)","annotations":{"a":"b"},"ownerReferences":[{"kind":"Job","name":"j"}]},"spec":{"containers":[{"name":"c","image":"i","env":[{"name":"A","value":"1"}]}]},"status":{"phase":"Succeeded"}}"#) }
    let json = #"{"kind":"PodList","items":["# + items.joined(separator: ",") + "]}"
    print("gen", Date().timeIntervalSince(t)); t = Date()
    _ = try JSONSerialization.jsonObject(with: Data(json.utf8))
    print("jsonser", Date().timeIntervalSince(t)); t = Date()
    _ = try ManifestReader.parse(json, file: "x")
    print("parse", Date().timeIntervalSince(t))
}
