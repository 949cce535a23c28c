import Foundation
import ReaperCore

/// The pods of one JSON document: a `Pod`, a `PodList` (items without `kind`
/// are pods) or a `List` (every item `kind: Pod`), as the kubelet's `/pods`,
/// the API server's LIST and `kubectl get pods -o json` write them.
///
/// Decoded with `JSONDecoder` into types that name only the fields the
/// reconciler reads; everything else is skipped. A list is decoded one item
/// at a time, so the memory beyond the text itself is one item's worth.
/// Before decoding, one pass over the bytes checks the syntax and refuses
/// duplicate keys (`JSONOutline`).
///
/// Fails closed: any problem fails the whole document, with a one-line
/// message naming the item, pod and field.
public struct PodDocument: Sendable {
    public var pods: [Pod]
    /// `metadata.resourceVersion` of the list, or of the pod; where a watch resumes.
    public var resourceVersion: String?
    /// The document's own `kind`: `Pod`, `PodList` or `List`. A network
    /// answer that stands for the node's pods must be a `PodList`.
    public var kind: String
    /// A list's `metadata.continue`: set, the answer is one page of several
    /// and the rest must be asked for with it (design §7.2).
    public var continueToken: String?
    /// A list's `metadata.remainingItemCount`, when the server tells.
    public var remainingItemCount: Int?

    init(pods: [Pod], resourceVersion: String?, kind: String) {
        self.pods = pods
        self.resourceVersion = resourceVersion
        self.kind = kind
    }

    /// Decodes `json` (UTF-8). `source` becomes each pod's `source` and the error's `file`.
    public static func decode(json: Data, source: String) throws(ManifestError) -> PodDocument {
        do {
            return try decode(json.rebased, source: source, location: Location(document: 1))
        } catch {
            switch error {
            case .syntax(let message): throw ManifestError(file: source, message: "not valid JSON: \(message)")
            case .refused(let problem): throw ManifestError(file: source, message: problem.message)
            }
        }
    }

    /// `decode(json:source:)` for a document of a manifest file: problems
    /// carry `location`, and a syntax error is told apart so that the caller
    /// can try YAML.
    static func decode(_ json: Data, source: String, location: Location) throws(DocumentError) -> PodDocument {
        guard UTF8Check.isValid(json) else { throw .refused(ParseError("is not UTF-8 text")) }
        let outline: JSONOutline
        switch JSONOutline.scan(json) {
        case .success(let scanned):
            outline = scanned
        case let .failure(.syntax(message, offset)):
            throw .syntax(message + " at " + TextPosition.describe(offset: offset, in: json))
        case let .failure(.refused(message, offset)):
            throw .refused(ParseError("\(location): \(message) at \(TextPosition.describe(offset: offset, in: json))"))
        }
        if json[outline.root.lowerBound] == UInt8(ascii: "n") {
            throw .refused(ParseError("no document (the file is empty or only comments)"))
        }
        var location = location
        do {
            return try decode(outline, in: json, source: source, location: &location)
        } catch {
            throw .refused(ParseError("\(location): \(error.message)"))
        }
    }

    enum DocumentError: Error {
        case syntax(String)
        case refused(ParseError)
    }

    private static func decode(
        _ outline: JSONOutline, in json: Data, source: String, location: inout Location
    ) throws(ParseError) -> PodDocument {
        let decoder = JSONDecoder()
        let root = outline.root
        guard json[root.lowerBound] == UInt8(ascii: "{") else {
            let kind = JSONValueKind.describe(firstByte: json[root.lowerBound])
            throw ParseError("is \(kind), not a mapping (expected a Pod, PodList or List)")
        }
        let kind = try PodRules.text(member(outline.member("kind"), in: json, decoder: decoder), "kind")
        switch try PodRules.documentKind(kind) {
        case .pod:
            let fields = try decodeFields(PodFields.self, json[root], decoder: decoder)
            let pod = try PodRules.pod(fields, file: source, location: &location)
            return PodDocument(pods: [pod], resourceVersion: fields.metadata.presentValue?.resourceVersion.presentValue?.text, kind: "Pod")
        case .list(let listKind):
            location.list = listKind
            var document = PodDocument(pods: [], resourceVersion: nil, kind: listKind)
            if let metadata = outline.member("metadata"), json[metadata.value.lowerBound] == UInt8(ascii: "{") {
                let list = try decodeFields(ListMetadataFields.self, json[metadata.value], decoder: decoder)
                document.resourceVersion = try PodRules.text(list.resourceVersion, "metadata.resourceVersion")
                document.continueToken = try PodRules.text(list.continueToken, "metadata.continue").flatMap { $0.isEmpty ? nil : $0 }
                if let count = try PodRules.text(list.remainingItemCount, "metadata.remainingItemCount") {
                    guard let number = Int(count), number >= 0 else {
                        throw ParseError("metadata.remainingItemCount \(MessageText.name(count)) is not a count")
                    }
                    document.remainingItemCount = number
                }
            }
            guard let items = outline.member("items"), json[items.value.lowerBound] != UInt8(ascii: "n") else {
                return document
            }
            guard let ranges = outline.items else {
                throw ParseError("items is \(JSONValueKind.describe(firstByte: json[items.value.lowerBound])), not a list")
            }
            document.pods.reserveCapacity(ranges.count)
            for (index, range) in ranges.enumerated() {
                location.item = index
                location.pod = nil
                guard json[range.lowerBound] == UInt8(ascii: "{") else {
                    throw ParseError("is \(JSONValueKind.describe(firstByte: json[range.lowerBound])), not a mapping")
                }
                let fields = try decodeFields(PodFields.self, json[range], decoder: decoder)
                try PodRules.checkItemKind(try PodRules.kind(fields), listKind: listKind)
                document.pods.append(try PodRules.pod(fields, file: source, location: &location))
            }
            location.item = nil
            location.pod = nil
            return document
        }
    }

    /// A top-level scalar member (such as `kind`), decoded only when it is a
    /// scalar: a mapping or list is named by its first byte, never decoded.
    static func member(_ member: JSONOutline.Member?, in json: Data, decoder: JSONDecoder) throws(ParseError) -> Field<ScalarText> {
        guard let member else { return .absent }
        let first = json[member.value.lowerBound]
        if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
            return .wrong(JSONValueKind.describe(firstByte: first))
        }
        return try decodeFields(Field<ScalarText>.self, json[member.value], decoder: decoder)
    }

    static func decodeFields<Value: Decodable>(_ type: Value.Type, _ json: Data, decoder: JSONDecoder) throws(ParseError) -> Value {
        do {
            return try decoder.decode(type, from: json)
        } catch {
            // The outline checked the syntax; what is left is e.g. a number
            // out of range in a field the reconciler reads.
            throw ParseError("not valid JSON: \(JSONValueKind.describe(error))")
        }
    }
}

/// One event of a pod watch (`{"type": ..., "object": ...}`, one per line).
public struct PodWatchEvent: Sendable {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    public var type: String
    /// The pod, for ADDED, MODIFIED and DELETED.
    public var pod: Pod?
    /// The object's `metadata.resourceVersion` (a BOOKMARK carries only this).
    public var resourceVersion: String?
    /// For ERROR: the `Status` object's `code` and `reason`, e.g. 410 `Expired`.
    public var errorCode: Int?
    public var errorReason: String?
    /// A BOOKMARK with the annotation `k8s.io/initial-events-end: "true"`:
    /// the end of a streaming list's initial events (KEP-3157).
    public var initialEventsEnd = false

    public static func decode(json: Data, source: String) throws(ManifestError) -> PodWatchEvent {
        do {
            return try decodeEvent(json.rebased, source: source)
        } catch {
            throw ManifestError(file: source, message: "watch event: \(error.message)")
        }
    }

    private static func decodeEvent(_ json: Data, source: String) throws(ParseError) -> PodWatchEvent {
        guard UTF8Check.isValid(json) else { throw ParseError("is not UTF-8 text") }
        let outline: JSONOutline
        switch JSONOutline.scan(json) {
        case .success(let scanned):
            outline = scanned
        case let .failure(.syntax(message, offset)), let .failure(.refused(message, offset)):
            throw ParseError("\(message) at \(TextPosition.describe(offset: offset, in: json))")
        }
        let decoder = JSONDecoder()
        guard json[outline.root.lowerBound] == UInt8(ascii: "{") else {
            throw ParseError("is \(JSONValueKind.describe(firstByte: json[outline.root.lowerBound])), not a mapping")
        }
        guard let type = try PodRules.text(PodDocument.member(outline.member("type"), in: json, decoder: decoder), "type") else {
            throw ParseError("has no type")
        }
        guard let object = outline.member("object"), json[object.value.lowerBound] == UInt8(ascii: "{") else {
            throw ParseError("\(MessageText.name(type)) has no object mapping")
        }
        var event = PodWatchEvent(type: type)
        switch type {
        case "ADDED", "MODIFIED", "DELETED":
            let fields = try PodDocument.decodeFields(PodFields.self, json[object.value], decoder: decoder)
            if let kind = try PodRules.kind(fields), kind != "Pod" {
                throw ParseError("\(type) object kind \(MessageText.name(kind)) is not Pod")
            }
            var location = Location(document: 1)
            do {
                event.pod = try PodRules.pod(fields, file: source, location: &location)
            } catch {
                throw ParseError("\(type)\(location.pod.map { " pod \($0)" } ?? ""): \(error.message)")
            }
            event.resourceVersion = try PodRules.text(fields.metadata.presentValue?.resourceVersion ?? .absent, "object.metadata.resourceVersion")
        case "BOOKMARK":
            let fields = try PodDocument.decodeFields(PodFields.self, json[object.value], decoder: decoder)
            let metadata = try fields.metadata.value("object.metadata", expected: "a mapping")
            event.resourceVersion = try PodRules.text(metadata?.resourceVersion ?? .absent, "object.metadata.resourceVersion")
            // Only the exact value "true" ends the initial events, as the
            // apiserver reads it (storage.HasInitialEventsEndBookmarkAnnotation).
            for (key, value) in try metadata?.annotations.value("object.metadata.annotations", expected: "a mapping") ?? []
            where key == "k8s.io/initial-events-end" {
                if case .present(let scalar) = value, scalar.text == "true", scalar.nonString == nil { event.initialEventsEnd = true }
            }
        case "ERROR":
            let status = try PodDocument.decodeFields(StatusObjectFields.self, json[object.value], decoder: decoder)
            event.errorCode = status.code
            event.errorReason = try PodRules.text(status.reason, "object.reason")
        default:
            throw ParseError("type \(MessageText.name(type)) is not ADDED, MODIFIED, DELETED, BOOKMARK or ERROR")
        }
        return event
    }

    init(type: String) { self.type = type }
}
