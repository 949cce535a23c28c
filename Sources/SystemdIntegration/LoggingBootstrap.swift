#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// Where log entries go.
public enum LogTarget: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Structured entries to journald (`sd_journal_sendv`).
    case journald
    /// Readable lines on stderr.
    case stderr
    /// journald when its socket exists (running under systemd), else stderr.
    case auto

    public var description: String { self.rawValue }
}

/// Chooses and makes the log handler once for the whole process.
///
/// `LoggingSystem.bootstrap` may be called only once per process, so the
/// executable builds one `LoggingBootstrap` from its options and calls
/// ``bootstrap()`` (or passes ``factory()`` to `LoggingSystem.bootstrap`
/// itself). `.auto` is resolved once, when the factory is made, so every
/// logger of the process writes to the same place.
public struct LoggingBootstrap: Sendable {
    /// journald's native-protocol socket; its existence means journald runs.
    public static let defaultJournalSocketPath = "/run/systemd/journal/socket"

    public var target: LogTarget
    /// `SYSLOG_IDENTIFIER` for journald, the program name for stderr.
    public var identifier: String
    /// The level every new logger starts with.
    public var logLevel: Logger.Level
    /// Where `.auto` looks for journald; tests point it elsewhere.
    public var journalSocketPath: String

    public init(
        target: LogTarget = .auto,
        identifier: String = JournaldLogHandler.defaultIdentifier,
        logLevel: Logger.Level = .info,
        journalSocketPath: String = LoggingBootstrap.defaultJournalSocketPath
    ) {
        self.target = target
        self.identifier = identifier
        self.logLevel = logLevel
        self.journalSocketPath = journalSocketPath
    }

    /// `.journald` or `.stderr`: what `.auto` means on this machine right now.
    public func resolvedTarget() -> LogTarget {
        switch self.target {
        case .journald, .stderr: self.target
        case .auto: Self.isSocket(atPath: self.journalSocketPath) ? .journald : .stderr
        }
    }

    /// A handler for one logger, for the resolved target.
    public func makeLogHandler(
        label: String,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) -> any LogHandler {
        Self.makeHandler(
            target: self.resolvedTarget(),
            label: label,
            identifier: self.identifier,
            logLevel: self.logLevel,
            metadataProvider: metadataProvider
        )
    }

    /// The factory for `LoggingSystem.bootstrap`, with the target resolved now.
    public func factory() -> @Sendable (String, Logger.MetadataProvider?) -> any LogHandler {
        let target = self.resolvedTarget()
        let identifier = self.identifier
        let logLevel = self.logLevel
        return { label, provider in
            Self.makeHandler(
                target: target,
                label: label,
                identifier: identifier,
                logLevel: logLevel,
                metadataProvider: provider
            )
        }
    }

    /// Calls `LoggingSystem.bootstrap` with ``factory()``. Call once per process.
    /// Returns the resolved target so the caller can log where logs go.
    @discardableResult
    public func bootstrap(metadataProvider: Logger.MetadataProvider? = nil) -> LogTarget {
        let target = self.resolvedTarget()
        LoggingSystem.bootstrap(self.factory(), metadataProvider: metadataProvider)
        return target
    }

    /// True if `path` exists and is a socket (not a leftover regular file).
    public static func isSocket(atPath path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFSOCK
    }

    private static func makeHandler(
        target: LogTarget,
        label: String,
        identifier: String,
        logLevel: Logger.Level,
        metadataProvider: Logger.MetadataProvider?
    ) -> any LogHandler {
        switch target {
        case .journald:
            JournaldLogHandler(
                label: label,
                syslogIdentifier: identifier,
                logLevel: logLevel,
                metadataProvider: metadataProvider
            )
        case .stderr, .auto:
            StderrLogHandler(label: label, identifier: identifier, logLevel: logLevel, metadataProvider: metadataProvider)
        }
    }
}
