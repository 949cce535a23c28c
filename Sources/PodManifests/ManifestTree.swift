import Foundation
import Yams

/// One node of a parsed YAML manifest document, read lazily: only the fields
/// the agent uses are ever looked at.
struct ManifestTree {
    /// A node from Yams' composer (aliases already resolved).
    let node: Node

    /// A mapping's entries, keys as text; nil when this is not a mapping.
    var entries: [(key: String, value: ManifestTree)]? {
        guard case .mapping(let mapping) = node else { return nil }
        return mapping.map { (key: $0.key.scalar?.string ?? "", value: ManifestTree(node: $0.value)) }
    }

    var isMapping: Bool {
        if case .mapping = node { return true }
        return false
    }

    /// The value under `key` when this is a mapping that has it.
    subscript(key: String) -> ManifestTree? {
        guard case .mapping(let mapping) = node else { return nil }
        // Compare the keys' text: Yams' own subscript resolves tags with
        // regular expressions on every comparison. Duplicate keys are a
        // parse error, so the first match is the only one.
        for (name, value) in mapping where name.scalar?.string == key {
            return ManifestTree(node: value)
        }
        return nil
    }

    /// A sequence's elements; nil when this is not a sequence.
    var elements: [ManifestTree]? {
        guard case .sequence(let sequence) = node else { return nil }
        return sequence.map { ManifestTree(node: $0) }
    }

    /// A plain `null`, `~` or empty scalar.
    var isNull: Bool {
        guard case .scalar(let scalar) = node else { return false }
        return scalar.style == .plain && node.tag.description == Tag.Name.null.rawValue
    }

    /// A scalar's text as written, never the value YAML would resolve it to:
    /// `2026-11-29T07:00:00Z`, `true` and `0123` stay what they say. Nil for
    /// null, mappings and sequences.
    var text: String? {
        isNull ? nil : node.scalar?.string
    }

    /// What this is, for error messages: "a mapping", "a list", "a scalar"...
    var kindDescription: String {
        if isNull { return "null" }
        switch node {
        case .scalar: return "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// The 1-based line where this value starts.
    var line: Int? { node.mark?.line }
}

// MARK: - The fields the reconciler reads, for `PodRules`

extension ManifestTree {
    /// A scalar field. YAML has no separate string syntax: every scalar but
    /// null is text, and a string (Kubernetes' YAML decoder keeps a scalar's
    /// text when the field is a string).
    var scalarField: Field<ScalarText> {
        if isNull { return .absent }
        guard let text else { return .wrong(kindDescription) }
        return .present(ScalarText(text: text, nonString: nil))
    }

    func mappingField<Value>(_ make: (ManifestTree) -> Value) -> Field<Value> {
        if isNull { return .absent }
        return isMapping ? .present(make(self)) : .wrong(kindDescription)
    }

    func listField<Element>(_ make: (ManifestTree) -> Element) -> Field<FieldList<Element>> {
        if isNull { return .absent }
        guard let elements else { return .wrong(kindDescription) }
        return .present(FieldList(elements: elements.map { $0.mappingField(make) }))
    }

    func scalar(_ key: String) -> Field<ScalarText> { self[key]?.scalarField ?? .absent }

    var podFields: PodFields {
        PodFields(
            kind: scalar("kind"),
            metadata: self["metadata"]?.mappingField(\.metadataFields) ?? .absent,
            status: self["status"]?.mappingField(\.statusFields) ?? .absent
        )
    }

    private var metadataFields: MetadataFields {
        MetadataFields(
            name: scalar("name"), namespace: scalar("namespace"), uid: scalar("uid"),
            resourceVersion: scalar("resourceVersion"),
            annotations: self["annotations"]?.mappingField { $0.entries?.map { (key: $0.key, value: $0.value.scalarField) } ?? [] } ?? .absent,
            ownerReferences: self["ownerReferences"]?.listField { OwnerFields(kind: $0.scalar("kind"), name: $0.scalar("name")) } ?? .absent
        )
    }

    private var statusFields: StatusFields {
        StatusFields(
            phase: scalar("phase"),
            containerStatuses: StatusFields.containerStatusKeys.map { key in
                (key: key, value: self[key]?.listField(\.containerStatusFields) ?? .absent)
            }
        )
    }

    private var containerStatusFields: ContainerStatusFields {
        ContainerStatusFields(state: self["state"]?.mappingField { state in
            StateFields(terminated: state["terminated"]?.mappingField { TerminatedFields(finishedAt: $0.scalar("finishedAt")) } ?? .absent)
        } ?? .absent)
    }
}
