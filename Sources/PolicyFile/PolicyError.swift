import ReaperCore

/// Why a policy file was refused. One line, naming the file, the field and the
/// bad value: `<file>: <field>: <what is wrong> (got "<value>")`.
///
/// Modelled on swift-service-lifecycle's `ServiceGroupError`: a struct with a
/// stable `Code`, so callers can match on the kind of failure while the message
/// stays free to improve.
public struct PolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure. Stable: tests and callers match on it.
    public enum Code: String, Hashable, Sendable, CaseIterable {
        /// The file is missing, unreadable, too large or not UTF-8 text.
        case cannotRead
        /// The YAML itself does not parse (Yams gives the line and column).
        case syntax
        /// The same key twice in one mapping (however quoted or tagged).
        case duplicateKey
        /// YAML the agent will not compose: an alias or a structure as a key,
        /// or anchors, aliases, depth or expanded nodes past `YAMLLimits.settings`.
        case unsafeYAML
        /// An empty file, or one holding only comments.
        case empty
        /// The document (or a section) is not a mapping.
        case notAMapping
        /// More than one YAML document (`---`) in the file.
        case multipleDocuments
        /// A key the schema does not know (a near miss names the closest known key).
        case unknownKey
        /// A list where a scalar is expected, a scalar where a list is expected, a number where text is expected...
        case wrongType
        /// A key with no value (YAML null).
        case missingValue
        /// Text that is not a duration such as `90s`, `30m`, `1h30m`; a bare number.
        case invalidDuration
        /// A duration below zero.
        case negativeDuration
        /// A duration outside `DurationText.policyRange` (1s to 365d; 0 where it means none).
        case durationOutOfRange
        /// A duration that must be positive is zero (`idle.after`).
        case zeroDuration
        /// A boolean written other than `true` / `false` (`yes`, `on`, `"true"`...).
        case invalidBoolean
        /// An `idle.timestamps` entry other than mtime, ctime, atime.
        case unknownTimestampKind
        /// A list that must not be empty is (`idle.timestamps`).
        case emptyList
        /// A `pods.phases` entry that is no Kubernetes pod phase.
        case unknownPhase
        /// `Running` or `Pending` in `pods.phases`: volumes of live pods are never reaped.
        case livePhase
        /// A plugin in `volumes.recursive` that is not one of the local kinds (design §5.5).
        case pluginNotLocal
        /// A text that is not a plugin name.
        case invalidPluginName
        /// A network or cluster file system type in `volumes.unmount` (the kubelet's job).
        case networkFilesystem
        /// A text that is not a file system type name.
        case invalidFilesystemType
        /// An empty text where a name is needed (annotation keys...).
        case emptyValue
        /// Not a Kubernetes annotation key (`[prefix/]name`).
        case invalidAnnotationKey
        /// Not a Kubernetes namespace name (a DNS-1123 label).
        case invalidNamespace
        /// Not a Kubernetes kind name, or a well-known kind with the wrong case.
        case invalidKind
        /// A number that must be a whole number is not.
        case notAnInteger
        /// A count below zero.
        case negativeNumber
        /// A number that is not a fraction within 0...1.
        case fractionOutOfRange
        /// Not a percentage (0-100%) nor a size (`10Gi`, `500M`, `100000`).
        case invalidAmount
    }

    public let code: Code
    /// The policy file's path, or a name such as `built-in default`.
    public let file: String
    /// The field path, e.g. `idle.after` or `pods.phases[1]`; nil when the
    /// failure concerns the whole file (read errors, YAML syntax).
    public let field: String?
    /// The offending value as written (flattened to one line); nil when there is none.
    public let value: String?
    /// What is wrong, without file, field or value.
    public let problem: String
    /// Where in the file, 1-based, when known.
    public let line: Int?
    public let column: Int?

    public init(
        _ code: Code, file: String, field: String?, value: String?, problem: String,
        line: Int? = nil, column: Int? = nil
    ) {
        self.code = code
        self.file = file
        self.field = field.map { UserText.excerpt($0, limit: 2 * UserText.defaultLimit) }
        self.value = value.map { UserText.excerpt($0, limit: UserText.defaultLimit, quoting: true) }
        self.problem = UserText.excerpt(problem, limit: 400)
        self.line = line
        self.column = column
    }

    /// `<file>: <field>: <problem> (got "<value>")`, on one line.
    public var description: String {
        var text = "\(UserText.excerpt(file, limit: 1024)): "
        if let field {
            text += "\(field): "
        } else if let line {
            text += "line \(line)" + (column.map { ", column \($0)" } ?? "") + ": "
        }
        text += problem
        if let value { text += " (got \"\(value)\")" }
        return text
    }

}
