import Foundation
import Logging
import Reaper
import ReaperAgent
import ReaperCore
import Synchronization
import SystemdIntegration
import Testing

/// Captures what a logger was given.
final class CapturedEntries: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }
    let entries = Mutex<[Entry]>([])
}

struct CapturingHandler: LogHandler {
    let sink: CapturedEntries
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        sink.entries.withLock { $0.append(.init(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" })) }
    }
}

@Suite("ReapEventLog: partial reaps")
struct ReapEventLogTests {
    static let verdict = VolumeVerdict(
        path: "/var/lib/kubelet/pods/5e1f0000-0000-4000-8000-000000000001/volumes/kubernetes.io~empty-dir/scratch",
        podUID: "5e1f0000-0000-4000-8000-000000000001", namespace: "batch", pod: "job-1", podPhase: "Succeeded", orphan: false,
        plugin: PluginName("kubernetes.io~empty-dir"), name: "scratch", verdict: .keep, reasons: [.accessedDuringReap],
        lastAccess: nil, lastAccessSource: nil, idleSeconds: 7200, bytes: 0, files: 0, mounted: false, mounts: []
    )

    func record(_ report: ReapReport, repeats: RepeatedOutcomes? = nil) -> [CapturedEntries.Entry] {
        let sink = CapturedEntries()
        let logger = Logger(label: "test") { _ in CapturingHandler(sink: sink) }
        let plan = Plan(
            generatedAt: Date(), kubeletRoot: "/var/lib/kubelet",
            manifests: ManifestSummary(path: "/m", refreshedAt: Date(), complete: true, errors: [], files: 1, pods: 1),
            alerts: [], volumes: [Self.verdict], orphanPodDirectories: []
        )
        ReapEventLog(logger: logger, repeats: repeats).record(report, plan: plan)
        return sink.entries.withLock { $0 }
    }

    @Test("hole 9: a removal stopped part way is logged under the failure MESSAGE_ID with the files and bytes already gone")
    func partialVolume() throws {
        var stats = RemovalStats()
        stats.filesRemoved = 45_000
        stats.bytesFreed = 184_320_000
        let outcome = ReapOutcome(verdict: Self.verdict, action: .partiallyReaped, reasons: [.mounted], detail: "is a mount point", stats: stats, unmounted: [])
        let entries = record(ReapReport(outcomes: [outcome], podDirectories: [], dryRun: false))
        let entry = try #require(entries.first)
        #expect(entry.metadata["message_id"] == MessageID.reapFailed.rawValue)
        #expect(entry.metadata["message_id"] != MessageID.volumeKeptAtLastCheck.rawValue)
        #expect(entry.level == .error)
        #expect(entry.metadata["files_removed"] == "45000")
        #expect(entry.metadata["bytes_freed"] == "184320000")
        #expect(entry.metadata["reason"] == "mounted")
        #expect(ReapReport(outcomes: [outcome], podDirectories: [], dryRun: false).bytesFreed == 184_320_000)
    }

    @Test("hole 9: an orphan pod directory stopped part way is a failure too, not a keep")
    func partialPodDirectory() throws {
        var stats = RemovalStats()
        stats.filesRemoved = 2
        let directory = PodDirectoryOutcome(
            path: "/var/lib/kubelet/pods/5e1f0000-0000-4000-8000-000000000007", removed: false,
            detail: "changed after the last check began: in use", stats: stats, reasons: [.accessedDuringReap]
        )
        let entries = record(ReapReport(outcomes: [], podDirectories: [directory], dryRun: false))
        let entry = try #require(entries.first)
        #expect(entry.metadata["message_id"] == MessageID.reapFailed.rawValue)
        #expect(entry.metadata["files_removed"] == "2")
        #expect(entry.metadata["reason"] == "accessed-during-reap")
    }

    @Test("the daemon logs a would-reap or a refusal by limits when it changes, not again every cycle; reaps always")
    func repeatsAreLoggedOnce() {
        let repeats = RepeatedOutcomes()
        func outcome(_ action: ReapOutcome.Action, _ reasons: [Reason]) -> ReapOutcome {
            ReapOutcome(verdict: Self.verdict, action: action, reasons: reasons, detail: nil, stats: RemovalStats(), unmounted: [])
        }
        let wouldReap = ReapReport(outcomes: [outcome(.wouldReap, [.podTerminated, .idle])], podDirectories: [], dryRun: true)
        #expect(record(wouldReap, repeats: repeats).count == 1)
        #expect(record(wouldReap, repeats: repeats).isEmpty, "the same would-reap was logged again")
        let refused = ReapReport(outcomes: [outcome(.refusedByLimits, [.limitMaxReaps])], podDirectories: [], dryRun: true)
        #expect(record(refused, repeats: repeats).count == 1)
        #expect(record(refused, repeats: repeats).isEmpty)
        // Back to a would-reap: a change, logged again.
        #expect(record(wouldReap, repeats: repeats).count == 1)
        let reaped = ReapReport(outcomes: [outcome(.reaped, [.podTerminated, .idle])], podDirectories: [], dryRun: false)
        #expect(record(reaped, repeats: repeats).count == 1)
        #expect(record(reaped, repeats: repeats).count == 1)
        // One-shot runs (no memory) log every entry.
        #expect(record(wouldReap).count == 1 && record(wouldReap).count == 1)
    }

    @Test("issue 19: MESSAGE names what went (type, volume, pod, bytes, idle), not one fixed text; the fields stay")
    func messageNamesTheVolume() throws {
        var stats = RemovalStats()
        stats.bytesFreed = 12_897_485  // 12.3 MiB
        stats.filesRemoved = 3
        func outcome(_ action: ReapOutcome.Action, verdict: VolumeVerdict = Self.verdict, reasons: [Reason] = [.podTerminated, .idle]) -> ReapOutcome {
            ReapOutcome(verdict: verdict, action: action, reasons: reasons, detail: nil, stats: stats, unmounted: [])
        }
        let reaped = try #require(record(ReapReport(outcomes: [outcome(.reaped)], podDirectories: [], dryRun: false)).first)
        #expect(reaped.message == "reaped emptyDir scratch of pod batch/job-1 (12.3 MiB, idle 2h)")
        #expect(reaped.metadata["pod_name"] == "job-1" && reaped.metadata["volume_name"] == "scratch")
        #expect(reaped.metadata["bytes_freed"] == "12897485")
        #expect(reaped.metadata["message_id"] == MessageID.volumeReaped.rawValue)

        var planned = Self.verdict
        planned.bytes = 2048
        let would = try #require(record(ReapReport(outcomes: [outcome(.wouldReap, verdict: planned)], podDirectories: [], dryRun: true)).first)
        #expect(would.message == "would reap emptyDir scratch of pod batch/job-1 (2.0 KiB, idle 2h; dry run)")

        var orphan = Self.verdict
        orphan.pod = nil
        orphan.namespace = nil
        orphan.plugin = PluginName("kubernetes.io~configmap")
        orphan.name = "conf\nfake"
        let kept = try #require(record(ReapReport(outcomes: [outcome(.keptAtLastCheck, verdict: orphan, reasons: [.accessedDuringReap])], podDirectories: [], dryRun: false)).first)
        #expect(kept.message == "kept configMap conf\\nfake of orphan pod 5e1f0000-0000-4000-8000-000000000001 at the last check before deletion (accessed-during-reap)")
        #expect(!kept.message.contains("\n"), "a name cannot split the line")

        // Eleven reaps are eleven different lines.
        let many = (1...11).map { number in
            var verdict = Self.verdict
            verdict.pod = "job-\(number)"
            return outcome(.reaped, verdict: verdict)
        }
        let messages = record(ReapReport(outcomes: many, podDirectories: [], dryRun: false)).map(\.message)
        #expect(Set(messages).count == 11)
    }
}
