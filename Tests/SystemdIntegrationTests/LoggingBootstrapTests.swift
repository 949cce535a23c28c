#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import SystemdIntegration
import Testing

@Suite("LoggingBootstrap")
struct LoggingBootstrapTests {
    @Test("auto picks journald only when the path is a socket")
    func autoTarget() throws {
        let dir = try TempDirectory()
        let socketPath = dir.path + "/journal.sock"
        let listener = try Socket(domain: AF_UNIX, type: Int32(SOCK_DGRAM.rawValue))
        try listener.bind(unix: socketPath)
        let filePath = dir.path + "/not-a-socket"
        close(try check("open", open(filePath, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)))

        #expect(LoggingBootstrap(target: .auto, journalSocketPath: socketPath).resolvedTarget() == .journald)
        #expect(LoggingBootstrap(target: .auto, journalSocketPath: filePath).resolvedTarget() == .stderr)
        #expect(LoggingBootstrap(target: .auto, journalSocketPath: dir.path + "/missing").resolvedTarget() == .stderr)
        #expect(LoggingBootstrap(target: .journald, journalSocketPath: dir.path + "/missing").resolvedTarget() == .journald)
        #expect(LoggingBootstrap(target: .stderr, journalSocketPath: socketPath).resolvedTarget() == .stderr)
    }

    @Test("the factory makes handlers of the resolved kind with the configured settings")
    func factory() throws {
        let dir = try TempDirectory()
        let socketPath = dir.path + "/journal.sock"
        let listener = try Socket(domain: AF_UNIX, type: Int32(SOCK_DGRAM.rawValue))
        try listener.bind(unix: socketPath)

        let journald = LoggingBootstrap(
            target: .auto, identifier: "vr-x", logLevel: .debug, journalSocketPath: socketPath
        ).factory()("label.a", nil)
        let journaldHandler = try #require(journald as? JournaldLogHandler)
        #expect(journaldHandler.syslogIdentifier == "vr-x")
        #expect(journaldHandler.label == "label.a")
        #expect(journaldHandler.logLevel == .debug)

        let stderr = LoggingBootstrap(target: .auto, logLevel: .warning, journalSocketPath: dir.path + "/none")
            .makeLogHandler(label: "label.b")
        let stderrHandler = try #require(stderr as? StderrLogHandler)
        #expect(stderrHandler.identifier == "volume-reaper")
        #expect(stderrHandler.logLevel == .warning)

        #expect(LoggingBootstrap(target: .stderr).makeLogHandler(label: "c") is StderrLogHandler)
        #expect(LoggingBootstrap(target: .journald).makeLogHandler(label: "c") is JournaldLogHandler)
        #expect(LogTarget(rawValue: "auto") == .auto)
    }
}
