import BoundedYAML
import Foundation
import ReaperCore
import Yams

/// Walks a Yams node tree into a `Policy`, by hand rather than through
/// `Codable`, so that every refusal names the exact field and value. The first
/// problem in document order is the one reported.
struct PolicyReader {
    /// Where the YAML came from, for messages.
    let file: String

    // MARK: Document

    /// Parses the text and reads its single document.
    func read(_ yaml: String) throws(PolicyError) -> Policy {
        try policy(from: try document(of: yaml))
    }

    /// The one document of the text, refusing syntax errors, empty files and
    /// several documents. YAML is read through `BoundedYAML`: aliases as keys,
    /// repeated keys and structures that expand past the node budget are
    /// refused before anything is composed.
    func document(of yaml: String) throws(PolicyError) -> Node {
        let all: [Node]
        do {
            all = try BoundedYAML.documents(yaml, limits: .settings)
        } catch {
            throw yamlError(error)
        }
        // `---` with nothing after it (a habit of Kubernetes YAML) is no document.
        let documents = all.filter { !YAMLValue.isNull($0) }
        guard let root = documents.first else {
            throw PolicyError(
                .empty, file: file, field: nil, value: nil,
                problem: "the policy is empty; write at least one section (\(PolicySchema.sectionNames.joined(separator: ", "))), or use {} for all defaults"
            )
        }
        if documents.count > 1 {
            let mark = documents[1].mark
            throw PolicyError(
                .multipleDocuments, file: file, field: nil, value: nil,
                problem: "more than one YAML document (\(documents.count), separated by ---); a policy file holds exactly one",
                line: mark?.line, column: mark?.column
            )
        }
        return root
    }

    func yamlError(_ problem: YAMLError) -> PolicyError {
        switch problem.code {
        case .duplicateKey:
            return PolicyError(
                .duplicateKey, file: file, field: nil, value: problem.key,
                problem: "duplicate key: each key may appear once in a mapping", line: problem.line, column: problem.column
            )
        case .syntax, .undefinedAlias:
            return PolicyError(.syntax, file: file, field: nil, value: nil, problem: problem.problem, line: problem.line, column: problem.column)
        case .aliasAsKey, .complexKey, .tooDeep, .tooManyAnchors, .tooManyAliases, .tooManyNodes:
            return PolicyError(.unsafeYAML, file: file, field: nil, value: nil, problem: problem.problem, line: problem.line, column: problem.column)
        }
    }

    // MARK: Sections

    func policy(from root: Node) throws(PolicyError) -> Policy {
        guard case .mapping = root else {
            throw error(
                .notAMapping, field: "(top level)", root,
                "a policy is a mapping of sections (\(PolicySchema.sectionNames.joined(separator: ", "))), not \(YAMLValue.kind(of: root))"
            )
        }
        var policy = Policy()
        for entry in try entries(of: root, section: nil) {
            try readSection(entry, into: &policy)
        }
        return policy
    }

    /// One top-level section into `policy`. Sections are read independently
    /// of each other, so `problems(_:)` can read each on its own.
    func readSection(_ entry: Entry, into policy: inout Policy) throws(PolicyError) {
        switch entry.key {
        case "idle": try readIdle(entry.value, into: &policy.idle)
        case "annotation": try readAnnotation(entry.value, into: &policy.annotation)
        case "pods": try readPods(entry.value, into: &policy.pods)
        case "orphans": try readOrphans(entry.value, into: &policy.orphans)
        case "volumes": try readVolumes(entry.value, into: &policy.volumes)
        case "limits": try readLimits(entry.value, into: &policy.limits)
        case "pressure":
            var pressure = Policy.Pressure()
            try readPressure(entry.value, into: &pressure)
            policy.pressure = pressure
        default: throw unread(entry)
        }
    }

    func readIdle(_ node: Node, into idle: inout Policy.Idle) throws(PolicyError) {
        for entry in try entries(of: node, section: "idle") {
            let field = entry.field
            switch entry.key {
            case "after":
                idle.after = try duration(entry.value, field)
                if idle.after == 0 {
                    throw error(.zeroDuration, field: field, entry.value, "must be longer than 0: a volume idle for no time at all is not idle")
                }
            case "timestamps":
                idle.timestamps = try timestampKinds(entry.value, field)
            case "requireObservation":
                idle.requireObservation = try bool(entry.value, field)
            case "maxUnobservedGap":
                idle.maxUnobservedGap = try duration(entry.value, field)
            default:
                throw unread(entry)
            }
        }
    }

    func readAnnotation(_ node: Node, into annotation: inout Policy.Annotation) throws(PolicyError) {
        for entry in try entries(of: node, section: "annotation") {
            let field = entry.field
            switch entry.key {
            case "key": annotation.key = try annotationKey(entry.value, field)
            case "idleAfter": annotation.idleAfter = try duration(entry.value, field)
            case "required": annotation.required = try bool(entry.value, field)
            default: throw unread(entry)
            }
        }
    }

    func readPods(_ node: Node, into pods: inout Policy.Pods) throws(PolicyError) {
        for entry in try entries(of: node, section: "pods") {
            let field = entry.field
            switch entry.key {
            case "phases":
                pods.phases = try phases(entry.value, field)
            case "excludeOwnerKinds":
                pods.excludeOwnerKinds = try texts(entry.value, field, expected: "a kind such as DaemonSet") { (item, itemField, text) throws(PolicyError) in
                    if let problem = NameRules.kindProblem(text) {
                        throw error(.invalidKind, field: itemField, item, problem.problem)
                    }
                    return text
                }
            case "excludeNamespaces":
                pods.excludeNamespaces = try texts(entry.value, field, expected: "a namespace such as kube-system") { (item, itemField, text) throws(PolicyError) in
                    if let problem = NameRules.namespaceProblem(text) {
                        throw error(.invalidNamespace, field: itemField, item, problem)
                    }
                    return text
                }
            case "protectAnnotation":
                pods.protectAnnotation = try annotationKey(entry.value, field)
            default:
                throw unread(entry)
            }
        }
    }

    func readOrphans(_ node: Node, into orphans: inout Policy.Orphans) throws(PolicyError) {
        for entry in try entries(of: node, section: "orphans") {
            let field = entry.field
            switch entry.key {
            case "reap": orphans.reap = try bool(entry.value, field)
            case "manifestsMaxAge": orphans.manifestsMaxAge = try duration(entry.value, field)
            case "confirmAfter": orphans.confirmAfter = try duration(entry.value, field)
            case "removePodDir": orphans.removePodDir = try bool(entry.value, field)
            default: throw unread(entry)
            }
        }
    }

    func readVolumes(_ node: Node, into volumes: inout Policy.Volumes) throws(PolicyError) {
        for entry in try entries(of: node, section: "volumes") {
            let field = entry.field
            switch entry.key {
            case "recursive":
                volumes.recursive = try plugins(entry.value, field) { (item, itemField, plugin) throws(PolicyError) in
                    guard plugin.isLocal else {
                        throw error(
                            .pluginNotLocal, field: itemField, item,
                            "only the local kinds (\(NameRules.localKindsList)) may have their contents deleted; network and CSI volumes are only ever removed empty and unmounted (design §5.5)"
                        )
                    }
                }
            case "exclude":
                volumes.exclude = try plugins(entry.value, field) { (_, _, _) throws(PolicyError) in }
            case "unmount":
                volumes.unmount = try texts(entry.value, field, expected: "a file system type such as tmpfs") { (item, itemField, text) throws(PolicyError) in
                    if let problem = NameRules.filesystemTypeProblem(text) {
                        throw error(problem.code, field: itemField, item, problem.problem)
                    }
                    return text
                }
            default:
                throw unread(entry)
            }
        }
    }

    func readLimits(_ node: Node, into limits: inout Policy.Limits) throws(PolicyError) {
        for entry in try entries(of: node, section: "limits") {
            let field = entry.field
            switch entry.key {
            case "maxReapsPerCycle": limits.maxReapsPerCycle = try count(entry.value, field)
            case "maxOrphanFraction": limits.maxOrphanFraction = try fraction(entry.value, field)
            case "maxPodsLost": limits.maxPodsLost = try count(entry.value, field)
            default: throw unread(entry)
            }
        }
    }

    func readPressure(_ node: Node, into pressure: inout Policy.Pressure) throws(PolicyError) {
        for entry in try entries(of: node, section: "pressure") {
            let field = entry.field
            switch entry.key {
            case "available": pressure.available = try amount(entry.value, field)
            case "inodesAvailable": pressure.inodesAvailable = try amount(entry.value, field)
            case "hysteresis": pressure.hysteresis = try amount(entry.value, field)
            case "margin":
                let text = try scalar(entry.value, field, expected: "percentage points such as 5").string.trimmingCharacters(in: .whitespaces)
                guard let value = Double(text.hasSuffix("%") ? String(text.dropLast()) : text), value.isFinite, (0...50).contains(value),
                      text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "." || $0 == "%") }) else {
                    throw error(.invalidAmount, field: field, entry.value, "expected percentage points from 0 to 50, such as 5")
                }
                pressure.margin = value
            case "idleAfter":
                pressure.idleAfter = try duration(entry.value, field)
                if pressure.idleAfter == 0 {
                    throw error(.zeroDuration, field: field, entry.value, "must be longer than 0: a volume idle for no time at all is not idle")
                }
            case "maxReapsPerCycle": pressure.maxReapsPerCycle = try count(entry.value, field)
            case "checkInterval":
                pressure.checkInterval = try duration(entry.value, field)
                if pressure.checkInterval < 1 {
                    throw error(.zeroDuration, field: field, entry.value, "must be at least 1s: free space is measured this often between cycles")
                }
            default: throw unread(entry)
            }
        }
    }

    /// A percentage of the filesystem (`15%`) or a size (`10Gi`, `500M`, `100000`).
    func amount(_ node: Node, _ field: String) throws(PolicyError) -> SpaceAmount {
        let text = try scalar(node, field, expected: "a percentage such as 15% or a size such as 10Gi").string
        guard let amount = SpaceAmount.parse(text) else {
            throw error(.invalidAmount, field: field, node, "expected a percentage from 0% to 100% (15%) or a size (10Gi, 500Mi, 2G, 100000)")
        }
        return amount
    }

    // MARK: Mappings

    typealias Entry = FieldEntry

    /// The pairs of a mapping, each key checked against `PolicySchema` (a
    /// near miss named); a section written with no value (`idle:` with every
    /// key commented out) is an empty section: all defaults.
    func entries(of node: Node, section: String?) throws(PolicyError) -> [Entry] {
        do {
            return try PolicySchema.schema.entries(of: node, section: section ?? "")
        } catch {
            let code: PolicyError.Code = switch error.code {
            case .unknownKey: .unknownKey
            case .notAMapping: .notAMapping
            case .keyNotText: .wrongType
            }
            throw PolicyError(
                code, file: file, field: error.field, value: error.value, problem: error.problem, line: error.line, column: error.column
            )
        }
    }

    /// A key of `PolicySchema` that no reader reads: a bug, refused rather than ignored.
    func unread(_ entry: Entry) -> PolicyError {
        error(.unknownKey, field: entry.field, entry.keyNode, "known to the schema but not read; please report this")
    }

    // MARK: Scalars

    /// The node as a scalar, refusing null, lists and mappings.
    func scalar(_ node: Node, _ field: String, expected: String) throws(PolicyError) -> Node.Scalar {
        switch node {
        case let .scalar(scalar):
            if YAMLValue.isNull(node) {
                throw error(.missingValue, field: field, node, "no value; expected \(expected) (remove the key to get the default)")
            }
            return scalar
        default:
            throw error(.wrongType, field: field, node, "expected \(expected), not \(YAMLValue.kind(of: node))")
        }
    }

    /// A duration within `DurationText.policyRange`; 0 is returned as is
    /// (`idle.after` refuses it itself; elsewhere it means "none").
    func duration(_ node: Node, _ field: String) throws(PolicyError) -> TimeInterval {
        let text = try scalar(node, field, expected: "a duration such as 30m").string
        switch ScalarGrammar.duration(text, range: DurationText.policyRange, zero: true) {
        case .success(let value): return value
        case .failure(let problem):
            let code: PolicyError.Code = switch problem.kind {
            case .negative: .negativeDuration
            case .outOfRange: .durationOutOfRange
            case .notPositive, .unitless, .invalid: .invalidDuration
            }
            throw error(code, field: field, node, problem.description)
        }
    }

    /// Only YAML's `true` and `false`: not `yes`/`no`/`on`/`off`, not quoted
    /// text (`ScalarGrammar.boolean`, the config's grammar too).
    func bool(_ node: Node, _ field: String) throws(PolicyError) -> Bool {
        let scalar = try scalar(node, field, expected: "true or false")
        switch ScalarGrammar.boolean(scalar) {
        case .success(let flag): return flag
        case .failure(let problem): throw error(.invalidBoolean, field: field, node, problem.description)
        }
    }

    /// A whole number, 0 or more, written in plain decimal: `0100` (YAML 1.1
    /// octal, 64), `0x10`, `1_000` and `1:30` (sexagesimal) are refused rather
    /// than read as something other than what a reader sees.
    func count(_ node: Node, _ field: String) throws(PolicyError) -> Int {
        let scalar = try scalar(node, field, expected: "a whole number such as 100")
        let tag = YAMLValue.tagName(of: node)
        if tag == .int {
            let text = scalar.string
            let negative = text.hasPrefix("-")
            let digits = text.drop { $0 == "-" || $0 == "+" }
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits == "0" || !digits.hasPrefix("0"),
                  text.count - digits.count <= 1 else {
                throw error(.notAnInteger, field: field, node, "write a plain decimal number such as 100 (no leading zeros, 0x, 0o, _ or :)")
            }
            guard !negative else { throw error(.negativeNumber, field: field, node, "must be 0 or more") }
            guard let value = Int(digits) else {
                throw error(.notAnInteger, field: field, node, "not a whole number this machine can hold")
            }
            return value
        }
        if tag == .float, let value = node.float {
            if value < 0 { throw error(.negativeNumber, field: field, node, "must be 0 or more") }
            throw error(.notAnInteger, field: field, node, "must be a whole number")
        }
        let hint = Double(scalar.string.trimmingCharacters(in: .whitespaces)) != nil ? " (write it without quotes)" : ""
        throw error(.notAnInteger, field: field, node, "expected a whole number such as 100\(hint)")
    }

    /// A number within 0...1, in plain decimal (`0.5`, `1`, `5e-1`).
    func fraction(_ node: Node, _ field: String) throws(PolicyError) -> Double {
        let scalar = try scalar(node, field, expected: "a fraction from 0 to 1 such as 0.5")
        let tag = YAMLValue.tagName(of: node)
        if tag == .int || tag == .float, let value = node.float {
            let text = scalar.string
            let plain = text.allSatisfy { $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }
                && !(text.count > 1 && text.hasPrefix("0") && text.dropFirst().first?.isNumber == true)
            guard plain, value.isFinite, (0...1).contains(value) else {
                throw error(.fractionOutOfRange, field: field, node, "must be a fraction from 0 to 1 (0.5 is half)")
            }
            return value
        }
        let text = scalar.string.trimmingCharacters(in: .whitespaces)
        if text.hasSuffix("%"), let percent = Double(text.dropLast()), percent.isFinite {
            throw error(
                .fractionOutOfRange, field: field, node,
                "write a fraction from 0 to 1, not a percentage (\(UserText.excerpt(text, limit: 20)) is \(Self.formatFraction(percent / 100)))"
            )
        }
        throw error(.wrongType, field: field, node, "expected a fraction from 0 to 1 such as 0.5")
    }

    static func formatFraction(_ value: Double) -> String {
        value.isFinite && value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    func annotationKey(_ node: Node, _ field: String) throws(PolicyError) -> String {
        let text = try scalar(node, field, expected: "an annotation key such as example.com/name").string
        guard !text.isEmpty else {
            throw error(.emptyValue, field: field, node, "an annotation key cannot be empty")
        }
        if let problem = NameRules.annotationKeyProblem(text) {
            throw error(.invalidAnnotationKey, field: field, node, problem)
        }
        return text
    }

    // MARK: Lists

    /// The items of a list with their field paths (`pods.phases[1]`). Null is
    /// refused: `[]` is the empty list, an absent key the default.
    func items(_ node: Node, _ field: String, expected: String) throws(PolicyError) -> [(node: Node, field: String)] {
        switch node {
        case let .sequence(sequence):
            return sequence.enumerated().map { (node: $0.element, field: "\(field)[\($0.offset)]") }
        case .scalar where YAMLValue.isNull(node):
            throw error(.missingValue, field: field, node, "no value; write [] for an empty list, or remove the key to get the default")
        case let .scalar(scalar):
            throw error(.wrongType, field: field, node, "expected a list, each item \(expected), not a single value; write [\(UserText.excerpt(scalar.string, limit: 40))]")
        default:
            throw error(.wrongType, field: field, node, "expected a list, each item \(expected), not \(YAMLValue.kind(of: node))")
        }
    }

    /// A list of non-empty texts, each checked by `check`, duplicates dropped.
    func texts(
        _ node: Node, _ field: String, expected: String,
        check: (Node, String, String) throws(PolicyError) -> String
    ) throws(PolicyError) -> [String] {
        var result: [String] = []
        for item in try items(node, field, expected: expected) {
            let text = try scalar(item.node, item.field, expected: expected).string
            guard !text.isEmpty else {
                throw error(.emptyValue, field: item.field, item.node, "cannot be empty; expected \(expected)")
            }
            let checked = try check(item.node, item.field, text)
            if !result.contains(checked) { result.append(checked) }
        }
        return result
    }

    func plugins(
        _ node: Node, _ field: String, check: (Node, String, PluginName) throws(PolicyError) -> Void
    ) throws(PolicyError) -> [PluginName] {
        var result: [PluginName] = []
        for text in try texts(node, field, expected: "a plugin such as kubernetes.io/empty-dir", check: { (item, itemField, text) throws(PolicyError) in
            if let problem = NameRules.pluginProblem(text) {
                throw error(.invalidPluginName, field: itemField, item, problem)
            }
            try check(item, itemField, PluginName(text))
            return text
        }) {
            let plugin = PluginName(text)
            if !result.contains(plugin) { result.append(plugin) }
        }
        return result
    }

    func timestampKinds(_ node: Node, _ field: String) throws(PolicyError) -> [TimestampKind] {
        let known = TimestampKind.allCases.map(\.rawValue)
        let kinds = try texts(node, field, expected: "a timestamp kind (\(known.joined(separator: ", ")))") { (item, itemField, text) throws(PolicyError) in
            guard TimestampKind(rawValue: text) != nil else {
                var problem = "unknown timestamp kind; known: \(known.joined(separator: ", "))"
                if let near = NearMiss.nearest(text, in: known) { problem += "; did you mean \(near)?" }
                throw error(.unknownTimestampKind, field: itemField, item, problem)
            }
            return text
        }
        guard !kinds.isEmpty else {
            throw error(
                .emptyList, field: field, node,
                "list at least one of \(known.joined(separator: ", ")): without them, time when no daemon watched could not be judged (design §5.7)"
            )
        }
        return kinds.compactMap(TimestampKind.init(rawValue:))
    }

    func phases(_ node: Node, _ field: String) throws(PolicyError) -> [PodPhase] {
        let known = PodPhase.allCases.map(\.rawValue)
        let names = try texts(node, field, expected: "a pod phase such as Succeeded") { (item, itemField, text) throws(PolicyError) in
            guard let phase = PodPhase(rawValue: text) else {
                var problem = "unknown pod phase; phases are \(known.joined(separator: ", "))"
                if let near = NearMiss.nearest(text, in: known) { problem += "; did you mean \(near)?" }
                throw error(.unknownPhase, field: itemField, item, problem)
            }
            if phase == .running || phase == .pending {
                throw error(
                    .livePhase, field: itemField, item,
                    "volumes of live pods are never reaped; list terminal phases only (Succeeded, Failed)"
                )
            }
            return text
        }
        return names.compactMap(PodPhase.init(rawValue:))
    }

    // MARK: Messages

    func error(_ code: PolicyError.Code, field: String, _ node: Node, _ problem: String) -> PolicyError {
        PolicyError(
            code, file: file, field: field, value: YAMLValue.render(node), problem: problem,
            line: node.mark?.line, column: node.mark?.column
        )
    }
}
