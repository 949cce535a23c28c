import Foundation
import Logging
import SystemdIntegration
import Testing

/// journald is running on developer machines and in CI; elsewhere the
/// end-to-end test reports itself skipped with this reason.
let journaldAvailable =
    LoggingBootstrap.isSocket(atPath: LoggingBootstrap.defaultJournalSocketPath)
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/journalctl")

@Suite("JournaldLogHandler")
struct JournaldLogHandlerTests {
    @Test("is a value: changing a copy leaves the original alone")
    func valueSemantics() {
        var original = JournaldLogHandler(label: "a", syslogIdentifier: "one", logLevel: .debug)
        original[metadataKey: "only-on"] = "first"
        var copy = original
        copy.logLevel = .error
        copy[metadataKey: "only-on"] = "second"
        copy.metadata["extra"] = "x"
        copy.syslogIdentifier = "two"

        #expect(original.logLevel == .debug)
        #expect(original[metadataKey: "only-on"] == "first")
        #expect(original.metadata["extra"] == nil)
        #expect(original.syslogIdentifier == "one")
        #expect(copy.logLevel == .error)
        #expect(copy[metadataKey: "only-on"] == "second")

        // The same through Logger, as swift-log's own contract test does it.
        var logger1 = Logger(label: "first") { JournaldLogHandler(label: $0) }
        logger1.logLevel = .debug
        logger1[metadataKey: "only-on"] = "first"
        var logger2 = logger1
        logger2.logLevel = .error
        logger2[metadataKey: "only-on"] = "second"
        #expect(logger1.logLevel == .debug)
        #expect(logger2.logLevel == .error)
        #expect(logger1[metadataKey: "only-on"] == "first")
        #expect(logger2[metadataKey: "only-on"] == "second")
    }

    @Test(
        "an entry reaches journald with its fields",
        .enabled(if: journaldAvailable, "no journald: /run/systemd/journal/socket or /usr/bin/journalctl missing"),
        .timeLimit(.minutes(1))
    )
    func endToEnd() async throws {
        let identifier = uniqueName("vr-test")
        let marker = uniqueName("marker")
        var logger = Logger(label: "volume-reaper.test") { label in
            JournaldLogHandler(label: label, syslogIdentifier: identifier, logLevel: .debug)
        }
        logger[metadataKey: "pod_uid"] = "0b6e1d2c-1111-4a3b-9c8d-0123456789ab"
        logger.warning(
            "would reap \(marker)",
            metadata: MessageID.volumeWouldReap.metadata.merging([
                "volume_path": "/var/lib/kubelet/pods/0b6e1d2c/volumes/kubernetes.io~empty-dir/scratch",
                "reason": "first line\nsecond=line",
                "idle_seconds": "5400",
            ]) { a, _ in a }
        )

        var entry: [String: String]?
        let deadline = ContinuousClock.now + .seconds(5)
        while entry == nil, ContinuousClock.now < deadline {
            entry = try journalEntries(identifier: identifier).first { $0["MESSAGE"]?.contains(marker) == true }
            if entry == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        let fields = try #require(entry, "no journal entry with SYSLOG_IDENTIFIER=\(identifier) within 5 s")
        #expect(fields["MESSAGE"] == "would reap \(marker)")
        #expect(fields["PRIORITY"] == "4")
        #expect(fields["SYSLOG_IDENTIFIER"] == identifier)
        #expect(fields["MESSAGE_ID"] == MessageID.volumeWouldReap.rawValue)
        #expect(fields["VOLUME_PATH"] == "/var/lib/kubelet/pods/0b6e1d2c/volumes/kubernetes.io~empty-dir/scratch")
        #expect(fields["POD_UID"] == "0b6e1d2c-1111-4a3b-9c8d-0123456789ab")
        #expect(fields["REASON"] == "first line\nsecond=line")
        #expect(fields["IDLE_SECONDS"] == "5400")
        #expect(fields["CODE_FILE"]?.hasSuffix("JournaldLogHandlerTests.swift") == true)
        #expect(fields["CODE_FUNC"] == "endToEnd()")
        #expect(Int(fields["CODE_LINE"] ?? "") != nil)
        #expect(fields["LOGGER_LABEL"] == "volume-reaper.test")
        #expect(fields["_PID"] == String(getpid()))
    }

    /// Runs `journalctl SYSLOG_IDENTIFIER=... -o json` and decodes each entry;
    /// binary or non-printable values come as byte arrays, repeated fields as
    /// arrays of values (the first is kept).
    private func journalEntries(identifier: String) throws -> [[String: String]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/journalctl")
        process.arguments = ["SYSLOG_IDENTIFIER=\(identifier)", "-o", "json", "--no-pager", "--all"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()

        func text(_ value: Any) -> String? {
            if let string = value as? String { return string }
            if let bytes = value as? [Int] { return String(decoding: bytes.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self) }
            if let values = value as? [Any], let first = values.first { return text(first) }
            return nil
        }
        return try String(decoding: data, as: UTF8.self)
            .split(separator: "\n")
            .compactMap { line in
                guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    return nil
                }
                return object.compactMapValues(text)
            }
    }
}
