internal import CYaml
import ReaperCore
import Yams

/// The one way the agent reads YAML (policy, config, manifests): the text is
/// first walked as libyaml's event stream, where aliases are names rather
/// than structures, and refused if an alias is a mapping key, a key repeats,
/// or anchors, aliases, depth or the nodes they expand to exceed `limits`.
/// Only a text that passes is composed into Yams nodes, so neither Yams'
/// duplicate-key hashing nor a reader walking the tree can be made to
/// expand an exponential structure.
public enum BoundedYAML {
    /// Every document of `text` (a `---` with nothing after it included, as null).
    public static func documents(_ text: String, limits: YAMLLimits) throws(YAMLError) -> [Node] {
        try check(text, limits: limits)
        do {
            let parser = try Parser(yaml: text)
            var documents: [Node] = []
            while let node = try parser.nextRoot() { documents.append(node) }
            return documents
        } catch let error as YamlError {
            throw translate(error)
        } catch {
            throw YAMLError(.syntax, "not valid YAML", line: 1, column: 1)
        }
    }

    /// Checks `text`'s event stream against `limits` without composing anything.
    public static func check(_ text: String, limits: YAMLLimits) throws(YAMLError) {
        var bytes = Array(text.utf8)
        let count = bytes.count
        try bytes.withUnsafeMutableBufferPointer { buffer throws(YAMLError) in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else {
                throw YAMLError(.syntax, "out of memory reading YAML", line: 1, column: 1)
            }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, buffer.baseAddress, count)
            var walker = EventWalker(limits: limits)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    throw syntaxProblem(parser, bytes: UnsafeBufferPointer(buffer))
                }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { return }
                try walker.visit(event)
            }
        }
    }

    // MARK: Errors in our words

    /// libyaml's scanner, parser or reader error, as a one-line problem.
    static func syntaxProblem(_ parser: yaml_parser_t, bytes: UnsafeBufferPointer<UInt8>) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
        if parser.error == YAML_READER_ERROR {
            let (line, column) = position(ofByte: parser.problem_offset, in: bytes)
            let what = problem.contains("control characters") ? "a control character, not allowed in YAML"
                : problem.contains("invalid") || problem.contains("incomplete") ? "not UTF-8 text"
                : problem
            return YAMLError(.syntax, "not valid YAML: \(what)", line: line, column: column)
        }
        if parser.error == YAML_MEMORY_ERROR {
            return YAMLError(.syntax, "out of memory reading YAML", line: 1, column: 1)
        }
        let line = Int(parser.problem_mark.line) + 1, column = Int(parser.problem_mark.column) + 1
        if problem.contains("nest") {
            return YAMLError(.tooDeep, "collections nested too deeply", line: line, column: column)
        }
        var text = "not valid YAML: \(problem)"
        if let context = parser.context.map({ String(cString: $0) }) {
            text += " (\(context) at line \(parser.context_mark.line + 1), column \(parser.context_mark.column + 1))"
        }
        return YAMLError(.syntax, text, line: line, column: column)
    }

    /// A Yams error (should the composer fail after the check passed), in our words.
    static func translate(_ error: YamlError) -> YAMLError {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            var text = "not valid YAML: \(UserText.excerpt(problem))"
            if let context { text += " (\(UserText.excerpt(context.text)) at line \(context.mark.line), column \(context.mark.column))" }
            return YAMLError(.syntax, text, line: mark.line, column: mark.column)
        case let .duplicatedKeysInMapping(_, context):
            return YAMLError(.duplicateKey, "duplicate key in a mapping", line: context.mark.line, column: context.mark.column)
        default:
            return YAMLError(.syntax, "not valid YAML", line: 1, column: 1)
        }
    }

    /// Line and column (1-based, counting characters) of a byte offset.
    static func position(ofByte offset: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (Int, Int) {
        var line = 1, column = 1
        for byte in bytes.prefix(offset) {
            if byte == 0x0A { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
        }
        return (line, column)
    }
}

/// The checks, one event at a time. Sizes are counted with aliases expanded:
/// an anchor records how many nodes its structure holds, and each alias adds
/// that many, so the budget is exact without expanding anything.
struct EventWalker {
    struct Frame {
        var isMapping: Bool
        /// In a mapping: whether the next node is a key.
        var expectingKey = true
        var keys: Set<String> = []
        /// The node count when the collection started, to size its anchor.
        var startCount: Int
        var anchor: String?
    }

    let limits: YAMLLimits
    var stack: [Frame] = []
    /// Expanded node count of every anchor defined so far.
    var anchors: [String: Int] = [:]
    var anchorCount = 0
    var aliasCount = 0
    var nodes = 0

    init(limits: YAMLLimits) {
        self.limits = limits
    }

    mutating func visit(_ event: yaml_event_t) throws(YAMLError) {
        let line = Int(event.start_mark.line) + 1, column = Int(event.start_mark.column) + 1
        switch event.type {
        case YAML_SCALAR_EVENT:
            let value = String(decoding: UnsafeBufferPointer(start: event.data.scalar.value, count: event.data.scalar.length), as: UTF8.self)
            try asKeyOrValue(scalar: value, line: line, column: column)
            try add(1, line: line, column: column)
            try define(event.data.scalar.anchor, size: 1, line: line, column: column)
        case YAML_ALIAS_EVENT:
            let name = Self.text(event.data.alias.anchor) ?? ""
            if let frame = stack.last, frame.isMapping, frame.expectingKey {
                throw YAMLError(
                    .aliasAsKey, "an alias (*\(UserText.excerpt(name))) used as a mapping key; write the key out",
                    line: line, column: column
                )
            }
            try asKeyOrValue(scalar: nil, line: line, column: column)
            aliasCount += 1
            guard aliasCount <= limits.maxAliases else {
                throw YAMLError(.tooManyAliases, "more than \(limits.maxAliases) aliases", line: line, column: column)
            }
            guard let size = anchors[name] else {
                throw YAMLError(
                    .undefinedAlias, "undefined alias *\(UserText.excerpt(name)): no anchor &\(UserText.excerpt(name)) before it",
                    line: line, column: column
                )
            }
            try add(size, line: line, column: column)
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            let isMapping = event.type == YAML_MAPPING_START_EVENT
            if let frame = stack.last, frame.isMapping, frame.expectingKey {
                throw YAMLError(
                    .complexKey, "a \(isMapping ? "mapping" : "list") used as a mapping key; keys are plain names",
                    line: line, column: column
                )
            }
            try asKeyOrValue(scalar: nil, line: line, column: column)
            guard stack.count < limits.maxDepth else {
                throw YAMLError(.tooDeep, "collections nested more than \(limits.maxDepth) deep", line: line, column: column)
            }
            let anchor = isMapping ? Self.text(event.data.mapping_start.anchor) : Self.text(event.data.sequence_start.anchor)
            try add(1, line: line, column: column)
            stack.append(Frame(isMapping: isMapping, startCount: nodes - 1, anchor: anchor))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { return }
            if let anchor = frame.anchor {
                try defineNamed(anchor, size: nodes - frame.startCount, line: line, column: column)
            }
        default:
            // Stream and document boundaries.
            return
        }
    }

    /// Flips a mapping between key and value; checks a scalar key for a repeat.
    mutating func asKeyOrValue(scalar: String?, line: Int, column: Int) throws(YAMLError) {
        guard let index = stack.indices.last, stack[index].isMapping else { return }
        if stack[index].expectingKey, let scalar {
            guard stack[index].keys.insert(scalar).inserted else {
                throw YAMLError(
                    .duplicateKey, "duplicate key \"\(UserText.excerpt(scalar, quoting: true))\": each key may appear once in a mapping",
                    key: scalar, line: line, column: column
                )
            }
        }
        stack[index].expectingKey.toggle()
    }

    mutating func add(_ count: Int, line: Int, column: Int) throws(YAMLError) {
        nodes += count
        guard nodes <= limits.maxNodes else {
            throw YAMLError(
                .tooManyNodes, "more than \(limits.maxNodes) nodes with aliases expanded; anchors and aliases may not multiply a document",
                line: line, column: column
            )
        }
    }

    mutating func define(_ anchor: UnsafeMutablePointer<yaml_char_t>?, size: Int, line: Int, column: Int) throws(YAMLError) {
        guard let name = Self.text(anchor) else { return }
        try defineNamed(name, size: size, line: line, column: column)
    }

    mutating func defineNamed(_ name: String, size: Int, line: Int, column: Int) throws(YAMLError) {
        anchorCount += 1
        guard anchorCount <= limits.maxAnchors else {
            throw YAMLError(.tooManyAnchors, "more than \(limits.maxAnchors) anchors", line: line, column: column)
        }
        anchors[name] = size
    }

    static func text(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }
}
