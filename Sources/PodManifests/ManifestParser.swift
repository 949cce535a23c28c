import Foundation
import ReaperCore
import Yams

extension ManifestReader {
    /// The pods of one manifest file's contents.
    ///
    /// The text is JSON or YAML, told apart by content: text starting with
    /// `{` or `[` goes to `JSONSerialization` first (fast for big kubelet
    /// `/pods` outputs) and falls back to YAML; anything else is YAML, one or
    /// more documents. Each document is a `Pod`, a `PodList` (items without
    /// `kind` are pods) or a `List` (every item `kind: Pod`). Empty documents
    /// between `---` separators are skipped.
    ///
    /// Fails closed: any problem in any document fails the whole file, with a
    /// one-line message naming the document, item, pod and field where it can.
    /// `file` becomes each pod's `source` and the error's `file`.
    public static func parse(_ text: String, file: String) throws(ManifestError) -> [Pod] {
        let documents: [ManifestTree]
        do {
            documents = try loadDocuments(text)
        } catch {
            throw ManifestError(file: file, message: error.message)
        }
        let present = documents.enumerated().filter { !$0.element.isNull }
        guard !present.isEmpty else {
            throw ManifestError(file: file, message: "no document (the file is empty or only comments)")
        }
        var pods: [Pod] = []
        for (offset, document) in present {
            var location = Location(document: offset + 1, documentLine: document.line)
            do {
                try readDocument(document, file: file, location: &location, into: &pods)
            } catch {
                throw ManifestError(file: file, message: "\(location): \(error.message)")
            }
        }
        return pods
    }

    // MARK: - Documents

    static func loadDocuments(_ text: String) throws(Problem) -> [ManifestTree] {
        var body = Substring(text)
        if body.first == "\u{FEFF}" { body = body.dropFirst() }
        let first = body.first(where: { !$0.isWhitespace })
        var jsonProblem: String?
        if first == "{" || first == "[" {
            do {
                let object = try JSONSerialization.jsonObject(with: Data(body.utf8), options: [])
                return [.json(object)]
            } catch {
                // Flow-style YAML is not JSON but may still be a manifest.
                jsonProblem = jsonMessage(error, text: body)
            }
        }
        do {
            var documents: [ManifestTree] = []
            let parser = try Parser(yaml: String(body))
            while let node = try parser.nextRoot() {
                documents.append(.yaml(node))
            }
            return documents
        } catch {
            let yamlProblem = yamlMessage(error)
            if let jsonProblem {
                throw Problem("not valid JSON (\(jsonProblem)) nor YAML (\(yamlProblem))")
            }
            throw Problem("not valid YAML: \(yamlProblem)")
        }
    }

    /// `JSONSerialization`'s reason, with "around character N" as a line and column.
    private static func jsonMessage(_ error: any Error, text: Substring) -> String {
        let nsError = error as NSError
        var reason = (nsError.userInfo[NSDebugDescriptionErrorKey] as? String) ?? nsError.localizedDescription
        if reason.hasSuffix(".") { reason.removeLast() }
        if let range = reason.range(of: "around character "),
           let offset = Int(reason[range.upperBound...].prefix(while: \.isNumber)) {
            let (line, column) = lineAndColumn(ofUTF8Offset: offset, in: text)
            reason = String(reason[..<range.lowerBound])
                .trimmingCharacters(in: .whitespaces) + " at line \(line), column \(column)"
        }
        return reason
    }

    private static func lineAndColumn(ofUTF8Offset offset: Int, in text: Substring) -> (Int, Int) {
        var line = 1
        var column = 1
        for (index, byte) in text.utf8.enumerated() {
            if index >= offset { break }
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return (line, column)
    }

    /// Yams' error on one line: "line L, column C: problem (context)".
    private static func yamlMessage(_ error: any Error) -> String {
        guard let yamlError = error as? YamlError else { return "\(error)" }
        func describe(_ context: YamlError.Context?, _ problem: String, _ mark: Mark) -> String {
            var message = "line \(mark.line), column \(mark.column): \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            return message
        }
        switch yamlError {
        case let .scanner(context, problem, mark, _),
             let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            return describe(context, problem, mark)
        case let .reader(problem, offset, value, _):
            return "\(problem) (value \(value)\(offset.map { " at character \($0)" } ?? ""))"
        case let .duplicatedKeysInMapping(duplicates, context):
            return "line \(context.mark.line), column \(context.mark.column): duplicate keys \(duplicates.joined(separator: ", "))"
        default:
            return String(describing: yamlError).split(separator: "\n").first.map(String.init) ?? "unknown error"
        }
    }

    private static func readDocument(
        _ document: ManifestTree, file: String, location: inout Location, into pods: inout [Pod]
    ) throws(Problem) {
        guard document.isMapping else {
            throw Problem("is \(document.kindDescription), not a mapping (expected a Pod, PodList or List)")
        }
        let kind = try optionalText(document["kind"], field: "kind")
        switch kind {
        case "Pod":
            pods.append(try readPod(document, file: file, location: &location))
        case "PodList", "List":
            location.list = kind
            // Writers always give `items` (`[]` when empty); a list without
            // it is a document cut short before its items.
            guard let itemsValue = document["items"] else {
                throw Problem("has no items (expected a list, [] when empty): cut short?")
            }
            guard !itemsValue.isNull else { return }
            guard let items = itemsValue.elements else {
                throw Problem("items is \(itemsValue.kindDescription), not a list")
            }
            for (index, item) in items.enumerated() {
                location.item = index
                location.itemLine = item.line
                location.pod = nil
                guard item.isMapping else {
                    throw Problem("is \(item.kindDescription), not a mapping")
                }
                let itemKind = try optionalText(item["kind"], field: "kind")
                switch itemKind {
                case "Pod":
                    break
                case nil where kind == "PodList":
                    break
                case nil:
                    throw Problem("has no kind (every item of a List must be kind Pod)")
                case let other?:
                    throw Problem("kind \(other) is not Pod")
                }
                pods.append(try readPod(item, file: file, location: &location))
            }
            location.item = nil
            location.itemLine = nil
            location.pod = nil
        case nil:
            throw Problem("has no kind (expected Pod, PodList or List)")
        case let other?:
            throw Problem("kind \(other) is not Pod, PodList or List")
        }
    }

    // MARK: - Pods

    private static func readPod(_ value: ManifestTree, file: String, location: inout Location) throws(Problem) -> Pod {
        let metadata = try optionalMapping(value["metadata"], field: "metadata")
        let name = try optionalText(metadata?["name"], field: "metadata.name") ?? ""
        var namespace = try optionalText(metadata?["namespace"], field: "metadata.namespace") ?? ""
        if namespace.isEmpty { namespace = "default" }
        if !name.isEmpty { location.pod = "\(namespace)/\(name)" }

        guard let uidValue = metadata?["uid"], !uidValue.isNull else {
            throw Problem("no metadata.uid")
        }
        guard uidValue.isString, let uid = uidValue.text else {
            throw Problem("metadata.uid is \(uidValue.kindDescription), not a string")
        }
        guard !uid.isEmpty else { throw Problem("metadata.uid is empty") }

        var annotations: [String: String] = [:]
        if let entries = try optionalMapping(metadata?["annotations"], field: "metadata.annotations")?.entries {
            for (key, annotation) in entries {
                if annotation.isNull {
                    annotations[key] = ""
                } else if let text = annotation.text {
                    annotations[key] = text
                } else {
                    throw Problem("annotation \(key) is \(annotation.kindDescription), not text")
                }
            }
        }

        var owners: [OwnerReference] = []
        let references = try optionalList(metadata?["ownerReferences"], field: "metadata.ownerReferences")
        for (index, reference) in references.enumerated() {
            let field = "metadata.ownerReferences[\(index)]"
            guard reference.isMapping else {
                throw Problem("\(field) is \(reference.kindDescription), not a mapping")
            }
            guard let kind = try optionalText(reference["kind"], field: "\(field).kind"), !kind.isEmpty else {
                throw Problem("\(field) has no kind")
            }
            let ownerName = try optionalText(reference["name"], field: "\(field).name") ?? ""
            owners.append(OwnerReference(kind: kind, name: ownerName))
        }

        let status = try optionalMapping(value["status"], field: "status")
        let phase = try optionalText(status?["phase"], field: "status.phase").flatMap { $0.isEmpty ? nil : $0 }

        var finishedAt: Date?
        for key in ["initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"] {
            let statuses = try optionalList(status?[key], field: "status.\(key)")
            for (index, container) in statuses.enumerated() {
                let field = "status.\(key)[\(index)]"
                guard container.isMapping else {
                    throw Problem("\(field) is \(container.kindDescription), not a mapping")
                }
                let state = try optionalMapping(container["state"], field: "\(field).state")
                let terminated = try optionalMapping(state?["terminated"], field: "\(field).state.terminated")
                let finishedField = "\(field).state.terminated.finishedAt"
                // A terminated state without a time (`finishedAt: null`, as for
                // ContainerStatusUnknown) adds nothing; a garbled one fails.
                guard let text = try optionalText(terminated?["finishedAt"], field: finishedField) else { continue }
                guard let date = Timestamps.parse(text) else {
                    throw Problem("\(finishedField) \"\(text)\" is not an RFC 3339 time")
                }
                if finishedAt.map({ date > $0 }) ?? true { finishedAt = date }
            }
        }

        return Pod(
            uid: uid, name: name, namespace: namespace, phase: phase, annotations: annotations,
            owners: owners, lastContainerFinishedAt: finishedAt, source: file
        )
    }

    // MARK: - Typed fields (absent and null are the same)

    private static func optionalText(_ value: ManifestTree?, field: String) throws(Problem) -> String? {
        guard let value, !value.isNull else { return nil }
        guard let text = value.text else {
            throw Problem("\(field) is \(value.kindDescription), not text")
        }
        return text
    }

    private static func optionalMapping(_ value: ManifestTree?, field: String) throws(Problem) -> ManifestTree? {
        guard let value, !value.isNull else { return nil }
        guard value.isMapping else {
            throw Problem("\(field) is \(value.kindDescription), not a mapping")
        }
        return value
    }

    private static func optionalList(_ value: ManifestTree?, field: String) throws(Problem) -> [ManifestTree] {
        guard let value, !value.isNull else { return [] }
        guard let elements = value.elements else {
            throw Problem("\(field) is \(value.kindDescription), not a list")
        }
        return elements
    }
}

/// A problem inside one file, before it is given the file's name.
struct Problem: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// Where in a file a problem is: document, list item, pod.
struct Location: CustomStringConvertible {
    /// 1-based, in file order (empty documents count too).
    var document: Int
    var documentLine: Int?
    var list: String?
    /// 0-based index in `items`.
    var item: Int?
    var itemLine: Int?
    /// "namespace/name" once known.
    var pod: String?

    var description: String {
        var parts = ["document \(document)" + (documentLine.map { " (line \($0))" } ?? "")]
        if let item {
            parts.append("\(list ?? "list") items[\(item)]" + (itemLine.map { " (line \($0))" } ?? ""))
        }
        if let pod { parts.append("pod \(pod)") }
        return parts.joined(separator: ", ")
    }
}
