import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fresh directory from `mkdtemp`, removed by `remove()`.
struct TempDirectory {
    let path: String

    init() throws {
        let template = (NSTemporaryDirectory() as NSString).appendingPathComponent("access-store-tests-XXXXXX")
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        path = String(cString: made)
    }

    func appending(_ component: String) -> String { path + "/" + component }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// The names in the directory, sorted.
    func entries() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: path).sorted() }
}

/// One log call a `RecordingHandler` saw.
struct LogEntry: Sendable {
    var level: Logger.Level
    var message: String
    var metadata: [String: String]
}

/// Collects log entries so tests can check what was logged.
final class LogRecorder: Sendable {
    private let storage = Mutex<[LogEntry]>([])

    var entries: [LogEntry] { storage.withLock { $0 } }

    func append(_ entry: LogEntry) { storage.withLock { $0.append(entry) } }

    var logger: Logger {
        var logger = Logger(label: "access-store-tests") { _ in RecordingHandler(recorder: self) }
        logger.logLevel = .trace
        return logger
    }

    func entries(at level: Logger.Level) -> [LogEntry] { entries.filter { $0.level == level } }
}

struct RecordingHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        recorder.append(LogEntry(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
    }
}

/// A moment in whole seconds (round-trips through the store exactly).
func at(_ seconds: Int) -> Date { Date(timeIntervalSince1970: 1_700_000_000 + TimeInterval(seconds)) }

/// A clock tests can move.
final class TestClock: Sendable {
    private let now: Mutex<Date>
    init(_ date: Date) { now = Mutex(date) }
    func set(_ date: Date) { now.withLock { $0 = date } }
    var date: Date { now.withLock { $0 } }
    var function: @Sendable () -> Date { { self.date } }
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func fileSize(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
}

