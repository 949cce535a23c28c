import BoundedYAML
import Foundation
import ReaperCore
import Yams

extension ManifestReader {
    /// The pods of one manifest file's contents.
    ///
    /// The text is JSON or YAML, told apart by content: text starting with
    /// `{` or `[` is JSON (`PodDocument`: only the fields the agent reads are
    /// decoded, a list one item at a time) unless it is not valid JSON, when
    /// it may still be flow-style YAML; anything else is YAML, one or more
    /// documents. Each document is a `Pod`, a `PodList` (items without
    /// `kind` are pods) or a `List` (every item `kind: Pod`). Empty documents
    /// between `---` separators are skipped.
    ///
    /// Fails closed: any problem in any document fails the whole file, with a
    /// one-line message naming the document, item, pod and field where it can.
    /// `file` becomes each pod's `source` and the error's `file`.
    public static func parse(_ bytes: Data, file: String) throws(ManifestError) -> [Pod] {
        let contents = bytes.rebased
        guard UTF8Check.isValid(contents) else { throw ManifestError(file: file, message: "is not UTF-8 text") }
        var jsonProblem: String?
        if let first = contents.firstIndex(where: { !Self.isWhitespaceOrBOM($0) }),
           contents[first] == UInt8(ascii: "{") || contents[first] == UInt8(ascii: "[") {
            do {
                return try PodDocument.decode(contents, source: file, location: Location(document: 1)).pods
            } catch {
                switch error {
                case .refused(let problem): throw ManifestError(file: file, message: problem.message)
                // Flow-style YAML is not JSON but may still be a manifest.
                case .syntax(let message): jsonProblem = message
                }
            }
        }
        return try parseYAML(String(decoding: contents, as: UTF8.self), file: file, jsonProblem: jsonProblem)
    }

    /// `parse` of a text.
    public static func parse(_ text: String, file: String) throws(ManifestError) -> [Pod] {
        try parse(Data(text.utf8), file: file)
    }

    private static func isWhitespaceOrBOM(_ byte: UInt8) -> Bool {
        // The BOM's three bytes (EF BB BF) are skipped too.
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 || byte == 0xEF || byte == 0xBB || byte == 0xBF
    }

    private static func parseYAML(_ text: String, file: String, jsonProblem: String?) throws(ManifestError) -> [Pod] {
        let documents: [ManifestTree]
        do {
            documents = try loadYAML(text, jsonProblem: jsonProblem)
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

    // MARK: - YAML documents

    static func loadYAML(_ text: String, jsonProblem: String?) throws(ParseError) -> [ManifestTree] {
        var body = Substring(text)
        if body.first == "\u{FEFF}" { body = body.dropFirst() }
        // Aliases as keys, duplicate keys and alias bombs are refused on the
        // event stream, before Yams composes (its duplicate-key check is
        // quadratic in what an alias key expands to).
        do throws(YAMLError) {
            try BoundedYAML.check(String(body), limits: .manifests)
        } catch {
            if let jsonProblem { throw ParseError("not valid JSON (\(jsonProblem)) nor YAML (\(error))") }
            throw ParseError("not valid YAML: \(error)")
        }
        do {
            var documents: [ManifestTree] = []
            let parser = try Parser(yaml: String(body))
            while let node = try parser.nextRoot() {
                documents.append(ManifestTree(node: node))
            }
            return documents
        } catch {
            let yamlProblem = yamlMessage(error)
            if let jsonProblem {
                throw ParseError("not valid JSON (\(jsonProblem)) nor YAML (\(yamlProblem))")
            }
            throw ParseError("not valid YAML: \(yamlProblem)")
        }
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
    ) throws(ParseError) {
        guard document.isMapping else {
            throw ParseError("is \(document.kindDescription), not a mapping (expected a Pod, PodList or List)")
        }
        let fields = document.podFields
        switch try PodRules.documentKind(try PodRules.kind(fields)) {
        case .pod:
            pods.append(try PodRules.pod(fields, file: file, location: &location))
        case .list(let listKind):
            location.list = listKind
            // Writers always give `items` (`[]` when empty); a list without
            // it is a document cut short before its items.
            guard let itemsValue = document["items"] else {
                throw ParseError("has no items (expected a list, [] when empty): cut short?")
            }
            guard !itemsValue.isNull else { return }
            guard let items = itemsValue.elements else {
                throw ParseError("items is \(itemsValue.kindDescription), not a list")
            }
            for (index, item) in items.enumerated() {
                location.item = index
                location.itemLine = item.line
                location.pod = nil
                guard item.isMapping else {
                    throw ParseError("is \(item.kindDescription), not a mapping")
                }
                let itemFields = item.podFields
                try PodRules.checkItemKind(try PodRules.kind(itemFields), listKind: listKind)
                pods.append(try PodRules.pod(itemFields, file: file, location: &location))
            }
            location.item = nil
            location.itemLine = nil
            location.pod = nil
        }
    }
}

/// A problem inside one file, before it is given the file's name.
struct ParseError: Error {
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
        if let pod { parts.append("pod \(UserText.excerpt(pod))") }
        return parts.joined(separator: ", ")
    }
}
