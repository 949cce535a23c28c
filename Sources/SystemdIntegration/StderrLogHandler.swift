#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// A readable swift-log backend for when there is no journal (a laptop, a
/// container): one line per entry on stderr,
/// `2026-11-29T07:30:00Z warning volume-reaper: message key=value key2="a b"`.
/// Timestamps are UTC so lines from different nodes compare directly; metadata
/// is sorted so lines diff well. A value type, as swift-log requires.
public struct StderrLogHandler: LogHandler {
    /// The swift-log label this handler was made for (not printed: the
    /// identifier names the program, as syslog does).
    public let label: String
    /// The name printed before the message.
    public var identifier: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata
    public var metadataProvider: Logger.MetadataProvider?

    public init(
        label: String,
        identifier: String = JournaldLogHandler.defaultIdentifier,
        logLevel: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.identifier = identifier
        self.logLevel = logLevel
        self.metadata = [:]
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    /// Writes the line with a single `write(2)` so concurrent entries do not interleave.
    public func log(event: LogEvent) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let line = self.formattedLine(for: event, secondsSinceEpoch: Int(now.tv_sec)) + "\n"
        let bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                return  // nowhere left to report a failing stderr
            }
            offset += written
        }
    }

    /// The line for `event` at the given time, without the newline. Separate
    /// from ``log(event:)`` so the format can be checked without a clock.
    public func formattedLine(for event: LogEvent, secondsSinceEpoch: Int) -> String {
        var line = Self.timestamp(secondsSinceEpoch) + " " + event.level.rawValue + " "
            + self.identifier + ": " + event.message.description
        let metadata = MetadataRendering.merge(
            base: self.metadata,
            provider: self.metadataProvider,
            explicit: event.metadata,
            error: event.error
        )
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            line += " " + key + "=" + Self.quotedIfNeeded(MetadataRendering.text(value))
        }
        return line
    }

    /// RFC 3339 in UTC with second precision, e.g. `2026-11-29T07:30:00Z`.
    static func timestamp(_ secondsSinceEpoch: Int) -> String {
        var seconds = time_t(secondsSinceEpoch)
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return "\(secondsSinceEpoch)" }
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
    }

    /// Values stay bare unless a reader could mis-split them: empty, or with
    /// whitespace, quotes, `=` or control characters; then JSON-quoted.
    static func quotedIfNeeded(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains { scalar in
            scalar == " " || scalar == "\"" || scalar == "=" || scalar == "\\"
                || scalar.value < 0x20 || scalar.value == 0x7F || scalar.properties.isWhitespace
        }
        return needsQuotes ? MetadataRendering.quoted(value) : value
    }
}
