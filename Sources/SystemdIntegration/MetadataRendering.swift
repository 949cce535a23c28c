import Logging

/// Shared by both log handlers so journald and stderr see the same metadata.
enum MetadataRendering {
    /// Merges metadata the way swift-log's own handlers do: the handler's own
    /// metadata, overridden by the provider's, overridden by the call's; an
    /// attached error becomes `error.message` / `error.type`.
    static func merge(
        base: Logger.Metadata,
        provider: Logger.MetadataProvider?,
        explicit: Logger.Metadata?,
        error: (any Error)?
    ) -> Logger.Metadata {
        var metadata = base
        if let provided = provider?.get(), !provided.isEmpty {
            metadata.merge(provided) { _, new in new }
        }
        if let explicit, !explicit.isEmpty {
            metadata.merge(explicit) { _, new in new }
        }
        if let error {
            metadata["error.message"] = "\(error)"
            metadata["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        return metadata
    }

    /// A value as text: strings stay as they are; arrays and dictionaries
    /// become compact JSON (sorted keys) so a nested value stays one readable
    /// field and can still be parsed by tools.
    static func text(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array, .dictionary: json(value)
        }
    }

    private static func json(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): quoted(string)
        case .stringConvertible(let convertible): quoted(convertible.description)
        case .array(let values): "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let dictionary):
            "{"
                + dictionary.sorted { $0.key < $1.key }
                .map { quoted($0.key) + ":" + json($0.value) }
                .joined(separator: ",")
                + "}"
        }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
