import Foundation
import ReaperCore

// The fields of a pod the reconciler reads, as a document wrote them, before
// any rule is applied. JSON (`PodDocument`, through `Decodable`) and YAML
// (`ManifestTree`) both produce these, and `PodRules` checks them: the type
// rules are the same for both formats by construction.

/// A field the reconciler reads: absent (or null), of the expected shape, or
/// of another shape, named for the error message ("a list", "a number"...).
enum Field<Value> {
    case absent
    case present(Value)
    case wrong(String)

    /// The value; nil when absent; an error naming `field` when wrongly typed.
    func value(_ field: @autoclosure () -> String, expected: String) throws(ParseError) -> Value? {
        switch self {
        case .absent: return nil
        case .present(let value): return value
        case .wrong(let kind): throw ParseError("\(field()) is \(kind), not \(expected)")
        }
    }
}

/// A scalar: a JSON string, number or boolean, or any YAML scalar but null.
struct ScalarText {
    var text: String
    /// What it is when it is not a string in the document's own terms: "a
    /// number" or "a boolean" in JSON. YAML scalars are strings (Kubernetes'
    /// YAML decoder keeps a scalar's text when the field is a string).
    var nonString: String?
}

/// A list of fields: each element is checked as a field of its own.
struct FieldList<Element> {
    var elements: [Field<Element>]
}

struct PodFields {
    var kind: Field<ScalarText> = .absent
    var metadata: Field<MetadataFields> = .absent
    var status: Field<StatusFields> = .absent
}

struct MetadataFields {
    var name: Field<ScalarText> = .absent
    var namespace: Field<ScalarText> = .absent
    var uid: Field<ScalarText> = .absent
    var resourceVersion: Field<ScalarText> = .absent
    var annotations: Field<[(key: String, value: Field<ScalarText>)]> = .absent
    var ownerReferences: Field<FieldList<OwnerFields>> = .absent
}

struct OwnerFields {
    var kind: Field<ScalarText> = .absent
    var name: Field<ScalarText> = .absent
}

struct StatusFields {
    var phase: Field<ScalarText> = .absent
    /// `initContainerStatuses`, `containerStatuses`, `ephemeralContainerStatuses`, in that order.
    var containerStatuses: [(key: String, value: Field<FieldList<ContainerStatusFields>>)] = []

    static let containerStatusKeys = ["initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"]
}

struct ContainerStatusFields {
    /// `state.terminated.finishedAt`, each level a field of its own.
    var state: Field<StateFields> = .absent
}

struct StateFields {
    var terminated: Field<TerminatedFields> = .absent
}

struct TerminatedFields {
    var finishedAt: Field<ScalarText> = .absent
}

/// The rules a pod's fields must follow, for every format.
enum PodRules {
    static func text(_ field: Field<ScalarText>, _ name: @autoclosure () -> String) throws(ParseError) -> String? {
        try field.value(name(), expected: "text")?.text
    }

    /// The kind of a document or list item.
    static func kind(_ fields: PodFields) throws(ParseError) -> String? {
        try text(fields.kind, "kind")
    }

    /// The pod `fields` describe; `location.pod` is set once its name is known.
    static func pod(_ fields: PodFields, file: String, location: inout Location) throws(ParseError) -> Pod {
        let metadata = try fields.metadata.value("metadata", expected: "a mapping")
        let name = try text(metadata?.name ?? .absent, "metadata.name") ?? ""
        var namespace = try text(metadata?.namespace ?? .absent, "metadata.namespace") ?? ""
        if namespace.isEmpty { namespace = "default" }
        if !name.isEmpty { location.pod = "\(namespace)/\(name)" }

        let uid: String
        switch metadata?.uid ?? .absent {
        case .absent:
            throw ParseError("no metadata.uid")
        case .wrong(let kind):
            throw ParseError("metadata.uid is \(kind), not a string")
        case .present(let scalar):
            if let kind = scalar.nonString { throw ParseError("metadata.uid is \(kind), not a string") }
            uid = scalar.text
        }
        guard !uid.isEmpty else { throw ParseError("metadata.uid is empty") }

        var annotations: [String: String] = [:]
        for (key, annotation) in try metadata?.annotations.value("metadata.annotations", expected: "a mapping") ?? [] {
            switch annotation {
            case .absent: annotations[key] = ""
            case .present(let scalar): annotations[key] = scalar.text
            case .wrong(let kind): throw ParseError("annotation \(MessageText.name(key)) is \(kind), not text")
            }
        }

        var owners: [OwnerReference] = []
        let references = try metadata?.ownerReferences.value("metadata.ownerReferences", expected: "a list")
        for (index, reference) in (references?.elements ?? []).enumerated() {
            let field = "metadata.ownerReferences[\(index)]"
            let owner = try element(reference, field)
            guard let kind = try text(owner.kind, "\(field).kind"), !kind.isEmpty else {
                throw ParseError("\(field) has no kind")
            }
            owners.append(OwnerReference(kind: kind, name: try text(owner.name, "\(field).name") ?? ""))
        }

        let status = try fields.status.value("status", expected: "a mapping")
        let phase = try text(status?.phase ?? .absent, "status.phase").flatMap { $0.isEmpty ? nil : $0 }

        var finishedAt: Date?
        for (key, list) in status?.containerStatuses ?? [] {
            let statuses = try list.value("status.\(key)", expected: "a list")
            for (index, container) in (statuses?.elements ?? []).enumerated() {
                let field = "status.\(key)[\(index)]"
                let state = try element(container, field).state.value("\(field).state", expected: "a mapping")
                let terminated = try state?.terminated.value("\(field).state.terminated", expected: "a mapping")
                let finishedField = "\(field).state.terminated.finishedAt"
                // A terminated state without a time (`finishedAt: null`, as for
                // ContainerStatusUnknown) adds nothing; a garbled one fails.
                guard let finished = try text(terminated?.finishedAt ?? .absent, finishedField) else { continue }
                guard let date = Timestamps.parse(finished) else {
                    throw ParseError("\(finishedField) \(MessageText.quoted(finished)) is not an RFC 3339 time")
                }
                if finishedAt.map({ date > $0 }) ?? true { finishedAt = date }
            }
        }

        return Pod(
            uid: uid, name: name, namespace: namespace, phase: phase, annotations: annotations,
            owners: owners, lastContainerFinishedAt: finishedAt, source: file
        )
    }

    /// A list element that must be a mapping (null is not one).
    private static func element<Value>(_ field: Field<Value>, _ name: String) throws(ParseError) -> Value {
        switch field {
        case .present(let value): return value
        case .absent: throw ParseError("\(name) is null, not a mapping")
        case .wrong(let kind): throw ParseError("\(name) is \(kind), not a mapping")
        }
    }
}

extension PodRules {
    /// What a document is, by its `kind`.
    enum DocumentKind { case pod, list(String) }

    static func documentKind(_ kind: String?) throws(ParseError) -> DocumentKind {
        switch kind {
        case "Pod": return .pod
        case "PodList", "List": return .list(kind ?? "")
        case nil: throw ParseError("has no kind (expected Pod, PodList or List)")
        case let other?: throw ParseError("kind \(MessageText.name(other)) is not Pod, PodList or List")
        }
    }

    /// Checks the `kind` of an item of a `listKind` list: items without kind are pods in a PodList only.
    static func checkItemKind(_ kind: String?, listKind: String) throws(ParseError) {
        switch kind {
        case "Pod": return
        case nil where listKind == "PodList": return
        case nil: throw ParseError("has no kind (every item of a List must be kind Pod)")
        case let other?: throw ParseError("kind \(MessageText.name(other)) is not Pod")
        }
    }
}
