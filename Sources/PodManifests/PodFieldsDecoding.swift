import Foundation

// How `PodDocument` decodes the fields of `PodFields.swift` with `JSONDecoder`:
// every field the reconciler reads becomes a `Field` that records a wrongly
// typed value instead of failing, so `PodRules` names it the same way for JSON
// and YAML; every other key is skipped.

extension JSONOutline {
    static func scan(_ json: Data) -> Result<JSONOutline, SyntaxError> {
        json.withUnsafeBytes { bytes in Result { () throws(SyntaxError) in try scan(bytes) } }
    }
}

extension Data {
    /// This data with indices from 0, as the outline's offsets are (a slice is copied).
    var rebased: Data { startIndex == 0 ? self : Data(self) }
}

extension Field {
    var presentValue: Value? {
        if case .present(let value) = self { return value }
        return nil
    }
}

/// Decodes a `Field` of this shape: a mapping's fields, a list, or a scalar.
protocol FieldDecodable {
    static func decodeField(from decoder: any Decoder) throws -> Field<Self>
}

extension Field: Decodable where Value: FieldDecodable {
    init(from decoder: any Decoder) throws {
        self = try Value.decodeField(from: decoder)
    }
}

/// A type decoded from a JSON object; anything else is a wrongly typed field.
protocol MappingFields: FieldDecodable, Decodable {}

extension MappingFields {
    static func decodeField(from decoder: any Decoder) throws -> Field<Self> {
        if (try? decoder.container(keyedBy: AnyKey.self)) != nil { return .present(try Self(from: decoder)) }
        return JSONValueKind.field(decoder)
    }
}

extension ScalarText: FieldDecodable {
    static func decodeField(from decoder: any Decoder) throws -> Field<ScalarText> {
        let value = try decoder.singleValueContainer()
        if value.decodeNil() { return .absent }
        if let text = try? value.decode(String.self) { return .present(ScalarText(text: text)) }
        if let flag = try? value.decode(Bool.self) { return .present(ScalarText(text: flag ? "true" : "false", nonString: "a boolean")) }
        if let integer = try? value.decode(Int64.self) { return .present(ScalarText(text: String(integer), nonString: "a number")) }
        if let number = try? value.decode(Double.self) { return .present(ScalarText(text: "\(number)", nonString: "a number")) }
        return JSONValueKind.field(decoder)
    }
}

extension FieldList: FieldDecodable where Element: FieldDecodable {
    static func decodeField(from decoder: any Decoder) throws -> Field<FieldList<Element>> {
        guard var container = try? decoder.unkeyedContainer() else { return JSONValueKind.field(decoder) }
        var elements: [Field<Element>] = []
        while !container.isAtEnd { elements.append(try container.decode(Field<Element>.self)) }
        return .present(FieldList(elements: elements))
    }
}

/// Annotations: a mapping of text values.
struct AnnotationFields: FieldDecodable {
    var entries: [(key: String, value: Field<ScalarText>)]

    static func decodeField(from decoder: any Decoder) throws -> Field<AnnotationFields> {
        guard let container = try? decoder.container(keyedBy: AnyKey.self) else { return JSONValueKind.field(decoder) }
        var entries: [(key: String, value: Field<ScalarText>)] = []
        for key in container.allKeys {
            entries.append((key.stringValue, try container.decode(Field<ScalarText>.self, forKey: key)))
        }
        return .present(AnnotationFields(entries: entries))
    }
}

extension PodFields: MappingFields {
    private enum Keys: String, CodingKey { case kind, metadata, status }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        kind = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .kind) ?? .absent
        metadata = try container.decodeIfPresent(Field<MetadataFields>.self, forKey: .metadata) ?? .absent
        status = try container.decodeIfPresent(Field<StatusFields>.self, forKey: .status) ?? .absent
    }
}

extension MetadataFields: MappingFields {
    private enum Keys: String, CodingKey { case name, namespace, uid, resourceVersion, annotations, ownerReferences }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        name = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .name) ?? .absent
        namespace = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .namespace) ?? .absent
        uid = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .uid) ?? .absent
        resourceVersion = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .resourceVersion) ?? .absent
        switch try container.decodeIfPresent(Field<AnnotationFields>.self, forKey: .annotations) ?? .absent {
        case .absent: annotations = .absent
        case .wrong(let kind): annotations = .wrong(kind)
        case .present(let fields): annotations = .present(fields.entries)
        }
        ownerReferences = try container.decodeIfPresent(Field<FieldList<OwnerFields>>.self, forKey: .ownerReferences) ?? .absent
    }
}

extension OwnerFields: MappingFields {
    private enum Keys: String, CodingKey { case kind, name }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        kind = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .kind) ?? .absent
        name = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .name) ?? .absent
    }
}

extension StatusFields: MappingFields {
    private enum Keys: String, CodingKey { case phase, initContainerStatuses, containerStatuses, ephemeralContainerStatuses }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        phase = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .phase) ?? .absent
        for key in [Keys.initContainerStatuses, .containerStatuses, .ephemeralContainerStatuses] {
            let list = try container.decodeIfPresent(Field<FieldList<ContainerStatusFields>>.self, forKey: key) ?? .absent
            containerStatuses.append((key.rawValue, list))
        }
    }
}

extension ContainerStatusFields: MappingFields {
    private enum Keys: String, CodingKey { case state }

    init(from decoder: any Decoder) throws {
        state = try decoder.container(keyedBy: Keys.self).decodeIfPresent(Field<StateFields>.self, forKey: .state) ?? .absent
    }
}

extension StateFields: MappingFields {
    private enum Keys: String, CodingKey { case terminated }

    init(from decoder: any Decoder) throws {
        terminated = try decoder.container(keyedBy: Keys.self).decodeIfPresent(Field<TerminatedFields>.self, forKey: .terminated) ?? .absent
    }
}

extension TerminatedFields: MappingFields {
    private enum Keys: String, CodingKey { case finishedAt }

    init(from decoder: any Decoder) throws {
        finishedAt = try decoder.container(keyedBy: Keys.self).decodeIfPresent(Field<ScalarText>.self, forKey: .finishedAt) ?? .absent
    }
}

/// A list's `metadata`: where a watch resumes, and whether this is one page
/// of several (`continue`, `remainingItemCount`).
struct ListMetadataFields: Decodable {
    var resourceVersion: Field<ScalarText>
    var continueToken: Field<ScalarText>
    var remainingItemCount: Field<ScalarText>

    private enum Keys: String, CodingKey {
        case resourceVersion
        case continueToken = "continue"
        case remainingItemCount
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        resourceVersion = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .resourceVersion) ?? .absent
        continueToken = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .continueToken) ?? .absent
        remainingItemCount = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .remainingItemCount) ?? .absent
    }
}

/// The `Status` object of a watch ERROR event.
struct StatusObjectFields: Decodable {
    var code: Int?
    var reason: Field<ScalarText>

    private enum Keys: String, CodingKey { case code, reason }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        code = try? container.decodeIfPresent(Int.self, forKey: .code)
        reason = try container.decodeIfPresent(Field<ScalarText>.self, forKey: .reason) ?? .absent
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// What a JSON value is, for error messages.
enum JSONValueKind {
    static func describe(firstByte: UInt8) -> String {
        switch firstByte {
        case UInt8(ascii: "{"): return "a mapping"
        case UInt8(ascii: "["): return "a list"
        case UInt8(ascii: "\""): return "a string"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return "a boolean"
        case UInt8(ascii: "n"): return "null"
        default: return "a number"
        }
    }

    /// The kind of the value `decoder` is on, as a wrongly typed field.
    static func field<Value>(_ decoder: any Decoder) -> Field<Value> {
        if let value = try? decoder.singleValueContainer() {
            if value.decodeNil() { return .wrong("null") }
            if (try? value.decode(String.self)) != nil { return .wrong("a string") }
            if (try? value.decode(Bool.self)) != nil { return .wrong("a boolean") }
        }
        if (try? decoder.container(keyedBy: AnyKey.self)) != nil { return .wrong("a mapping") }
        if (try? decoder.unkeyedContainer()) != nil { return .wrong("a list") }
        return .wrong("a number")
    }

    /// A `DecodingError` on one line, without Swift type names.
    static func describe(_ error: any Error) -> String {
        guard let decodingError = error as? DecodingError else { return "\(error)" }
        let context: DecodingError.Context
        switch decodingError {
        case let .dataCorrupted(c), let .keyNotFound(_, c), let .typeMismatch(_, c), let .valueNotFound(_, c): context = c
        @unknown default: return "cannot be decoded"
        }
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        let reason = context.debugDescription.split(separator: "\n").first.map(String.init) ?? "cannot be decoded"
        return (path.isEmpty ? "" : "\(path.drop { $0 == "." }): ") + String(reason.prefix(200))
    }
}

/// Line and column of a byte offset, for messages.
enum TextPosition {
    static func describe(offset: Int, in bytes: Data) -> String {
        var line = 1
        var column = 1
        for byte in bytes.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return "line \(line), column \(column)"
    }
}
