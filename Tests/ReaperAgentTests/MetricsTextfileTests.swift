#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Prometheus
import SocketAPI
import Testing
import TestSupport
@testable import ReaperAgent

/// Issue 18, item 8: anyone who can write to the node_exporter collector
/// directory can plant files there. Whatever sits at the names the
/// temporary file could have, the textfile is written, and nothing planted is
/// opened, followed or replaced.
@Suite("metrics.textfile: planted FIFOs and symlinks never wedge the write")
struct MetricsTextfileTests {
    @Test("FIFOs and symlinks at every name the old scheme used and at guessed names: the write completes, nothing planted is touched")
    func plantedNames() throws {
        let directory = try TemporaryDirectory("textfile-planted")
        defer { directory.remove() }
        let target = directory.appending("volume_reaper.prom")
        let outside = directory.appending("outside")
        try Data("keep me\n".utf8).write(to: URL(fileURLWithPath: outside))
        // The old name was `.<name>.<pid>.tmp`, for this process's pid (the
        // writer runs in it here); nearby pids and plausible fixed names too.
        let pid = Int(getpid())
        let fifoNames = (pid - 2...pid + 2).map { ".volume_reaper.prom.\($0).tmp" } + [".volume_reaper.prom.tmp", "volume_reaper.prom.tmp"]
        let fifos = try PlantedFIFOs(fifoNames.map(directory.appending))
        defer { fifos.close() }
        let links = [".volume_reaper.prom.tmp~", ".volume_reaper.prom.0.tmp"].map(directory.appending)
        for link in links { try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: outside) }

        let registry = PrometheusCollectorRegistry()
        let gauge = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "volume_reaper_test_gauge", unitName: "", helpText: "A test gauge."))
        gauge.set(Int64(7))
        let textfile = MetricsTextfile(path: target, metrics: AgentMetricsRecorder(registry: registry))
        let result = finishing(within: 5, unblock: fifos.release) { () -> String? in
            do { try textfile.write(); return nil } catch { return "\(error)" }
        }
        guard let result else {
            Issue.record("the textfile write blocked on a planted FIFO")
            return
        }
        #expect(result == nil, "the write failed: \(result ?? "")")
        let written = try String(contentsOfFile: target, encoding: .utf8)
        #expect(written.contains("volume_reaper_test_gauge 7"))
        var status = stat()
        #expect(lstat(target, &status) == 0 && status.st_mode & S_IFMT == S_IFREG)
        #expect(fifos.intact)
        #expect(try String(contentsOfFile: outside, encoding: .utf8) == "keep me\n")
        for link in links { #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == outside) }
        // No temporary file is left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !fifoNames.contains($0) }
        #expect(Set(left) == Set(["volume_reaper.prom", "outside"] + links.map { URL(fileURLWithPath: $0).lastPathComponent }))

        // And again over the existing file (the rename replaces it).
        gauge.set(Int64(8))
        let again = finishing(within: 5, unblock: fifos.release) { () -> String? in
            do { try textfile.write(); return nil } catch { return "\(error)" }
        }
        #expect(again == .some(nil))
        #expect(try String(contentsOfFile: target, encoding: .utf8).contains("volume_reaper_test_gauge 8"))
    }
}
