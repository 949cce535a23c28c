import Foundation
import Logging
import PodSources
import Testing

/// Issue 22: a plan that waits for a manifest still settling says why, once,
/// so seconds of waiting are never taken for a slow scan.
@Suite("FilesPodSource: the settle wait is logged")
struct FilesPodSourceTests {
    @Test("a manifest written moments ago is waited for, with one info line naming it; a settled one is not")
    func settleWaitIsLogged() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("files-source-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("pods.json").path
        try Data(#"{"kind": "PodList", "apiVersion": "v1", "items": []}"#.utf8).write(to: URL(fileURLWithPath: file))
        let capture = LogCapture()
        let source = FilesPodSource(path: file, settleTime: 0.5, logger: capture.logger)

        let started = Date()
        let snapshot = source.currentSnapshot()
        #expect(snapshot.errors.isEmpty, "\(snapshot.errors)")
        #expect(Date().timeIntervalSince(started) >= 0.3)
        let waits = capture.text.split(separator: "\n").filter { $0.contains("waiting for a manifest changed moments ago to settle") }
        #expect(waits.count == 1, "\(capture.text)")
        #expect(waits.first?.hasPrefix("info ") == true && waits.first?.contains("path=\(file)") == true, "\(capture.text)")

        // Settled now: read again (a new source), no wait and no line.
        let later = LogCapture()
        _ = FilesPodSource(path: file, settleTime: 0.5, logger: later.logger).currentSnapshot()
        #expect(!later.text.contains("waiting for a manifest"), "\(later.text)")
    }
}
