#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd
import Logging

/// One journal field as it is sent: `NAME=value`.
public struct JournalField: Sendable, Hashable, CustomStringConvertible {
    /// A valid journal field name (`[A-Z0-9_]`, not starting with `_` or a digit).
    public var name: String
    /// Any text; newlines and `=` are fine (sendv uses the length-prefixed native protocol).
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    public var description: String { "\(self.name)=\(self.value)" }
}

/// A swift-log backend that writes structured entries to journald.
///
/// Each metadata key becomes its own journal field (see ``journalFieldName(_:)``),
/// so operators can filter with `journalctl VOLUME_PATH=...` instead of grepping
/// text. Entries go through `sd_journal_sendv` (the variadic `sd_journal_send`
/// cannot be called from Swift). A value type, as swift-log requires: copying a
/// `Logger` and changing its level or metadata never affects the original.
public struct JournaldLogHandler: LogHandler {
    /// The `SYSLOG_IDENTIFIER` used unless another is given (design §6).
    public static let defaultIdentifier = "volume-reaper"

    /// The swift-log label this handler was made for; sent as `LOGGER_LABEL`
    /// so entries of one subsystem can be selected.
    public let label: String
    /// Sent as `SYSLOG_IDENTIFIER`, what `journalctl -t` matches.
    public var syslogIdentifier: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata
    public var metadataProvider: Logger.MetadataProvider?

    /// Fields this handler sets itself; metadata mapping to one of these names
    /// is sent as `META_<NAME>` instead, so it can neither forge nor duplicate them.
    static let ownFields: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "LOGGER_LABEL",
    ]

    /// - Parameters:
    ///   - label: the swift-log label (sent as `LOGGER_LABEL`).
    ///   - syslogIdentifier: sent as `SYSLOG_IDENTIFIER`; tests use a unique one.
    ///   - logLevel: the minimum level; `Logger` filters on it.
    ///   - metadataProvider: defaults to the one given to `LoggingSystem.bootstrap`.
    public init(
        label: String,
        syslogIdentifier: String = JournaldLogHandler.defaultIdentifier,
        logLevel: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.syslogIdentifier = syslogIdentifier
        self.logLevel = logLevel
        self.metadata = [:]
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    /// Sends the entry; if journald refuses it (no socket, message too big),
    /// the entry goes to stderr instead of being lost.
    public func log(event: LogEvent) {
        let fields = self.fields(for: event)
        let result = Self.send(fields)
        if result < 0 {
            var fallback = StderrLogHandler(label: self.label, identifier: self.syslogIdentifier)
            fallback.metadata = self.metadata
            fallback.metadataProvider = self.metadataProvider
            var event = event
            event.metadata = (event.metadata ?? [:]).merging(
                ["journald_error": "\(String(cString: strerror(-result)))"]
            ) { old, _ in old }
            fallback.log(event: event)
        }
    }

    /// The fields one event becomes, in the order they are sent: the handler's
    /// own fields first, then metadata sorted by key. Public so callers and
    /// tests can see exactly what journald receives.
    public func fields(for event: LogEvent) -> [JournalField] {
        var fields: [JournalField] = [
            JournalField(name: "MESSAGE", value: event.message.description),
            JournalField(name: "PRIORITY", value: String(Self.syslogPriority(event.level))),
            JournalField(name: "SYSLOG_IDENTIFIER", value: self.syslogIdentifier),
            JournalField(name: "CODE_FILE", value: event.file),
            JournalField(name: "CODE_LINE", value: String(event.line)),
            JournalField(name: "CODE_FUNC", value: event.function),
        ]
        if !self.label.isEmpty {
            fields.append(JournalField(name: "LOGGER_LABEL", value: self.label))
        }
        let metadata = MetadataRendering.merge(
            base: self.metadata,
            provider: self.metadataProvider,
            explicit: event.metadata,
            error: event.error
        )
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            guard var name = Self.journalFieldName(key) else { continue }
            if Self.ownFields.contains(name) {
                name = "META_" + name
            }
            fields.append(JournalField(name: name, value: MetadataRendering.text(value)))
        }
        return fields
    }

    /// Maps a swift-log metadata key to a journal field name, or `nil` if
    /// nothing usable is left. Journald accepts only `[A-Z0-9_]`, refuses
    /// client fields starting with `_` (trusted fields) and names over 64
    /// bytes, and a name must not start with a digit. So: upper-case ASCII
    /// letters, every other character becomes `_`, leading `_` are stripped,
    /// a leading digit gets the prefix `F_`, and the result is cut to 64.
    /// `message_id` thereby becomes `MESSAGE_ID`, the catalog key.
    public static func journalFieldName(_ key: String) -> String? {
        var name = ""
        name.reserveCapacity(key.utf8.count)
        for scalar in key.unicodeScalars {
            switch scalar {
            case "A"..."Z", "0"..."9", "_": name.unicodeScalars.append(scalar)
            case "a"..."z": name.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
            default: name.unicodeScalars.append("_")
            }
        }
        let stripped = name.drop { $0 == "_" }
        guard let first = stripped.first else { return nil }
        let prefixed = first.isNumber ? "F_" + stripped : String(stripped)
        return String(prefixed.prefix(64))
    }

    /// swift-log level to syslog priority (`PRIORITY`), as `journalctl -p` filters.
    public static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Writes the fields with one `sd_journal_sendv` call; returns its result
    /// (0 or a negative errno). One contiguous buffer holds every
    /// `NAME=value`, and the iovecs point into it.
    static func send(_ fields: [JournalField]) -> Int32 {
        var buffer: [UInt8] = []
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(fields.count)
        for field in fields {
            let start = buffer.count
            buffer.append(contentsOf: field.name.utf8)
            buffer.append(UInt8(ascii: "="))
            buffer.append(contentsOf: field.value.utf8)
            ranges.append(start..<buffer.count)
        }
        return buffer.withUnsafeMutableBytes { bytes -> Int32 in
            let iovecs = ranges.map { range in
                iovec(iov_base: bytes.baseAddress! + range.lowerBound, iov_len: range.count)
            }
            return iovecs.withUnsafeBufferPointer { vector in
                sd_journal_sendv(vector.baseAddress, Int32(vector.count))
            }
        }
    }
}
