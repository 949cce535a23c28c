import Foundation
import Glibc
import ReaperCore
import Testing
import TestSupport
@testable import ReaperAgent
@testable import VolumeWatcher

/// Issue 13, hole 6: an access lost in an inotify overflow must protect the
/// volume in the plan and at the last check of every deletion that follows.
@Suite("Overflow and the last check: the real controller, watcher and reap cycle", .timeLimit(.minutes(1)))
struct OverflowLastCheckTests {
    static let overflow = InotifyEvent(wd: -1, mask: UInt32(IN_Q_OVERFLOW))

    @Test("control: an idle volume of a Succeeded pod is reaped by the cycle")
    func idleVolumeIsReaped() async throws {
        let uid = AgentHarness.uid(1)
        let node = try AgentHarness("overflow-control", pods: [(uid, "Succeeded")])
        defer { node.remove() }
        let volume = try node.idleVolume(uid, "scratch")
        try await node.withWatcher {
            let result = try node.reapCycle()
            #expect(result.snapshot.plan.verdict(volume)?.verdict == .reap)
            #expect(result.report.outcome(volume)?.action == .reaped)
            #expect(!FileManager.default.fileExists(atPath: volume))
        }
    }

    @Test("an overflow after the plan (a read lost in it) keeps every volume of that cycle at its last check")
    func overflowAfterPlanKeeps() async throws {
        let uid = AgentHarness.uid(2)
        let node = try AgentHarness("overflow-last-check", pods: [(uid, "Succeeded")])
        defer { node.remove() }
        let first = try node.idleVolume(uid, "first")
        let second = try node.idleVolume(uid, "second")
        try await node.withWatcher {
            let watcher = node.watcher
            let result = try node.reapCycle { read in
                // The plan is made; then the kernel's queue overflows (the read of
                // a volume was among the events lost) before the first deletion.
                if read == 2 { watcher.handle([Self.overflow]) }
            }
            #expect(watcher.status.overflows == 1)
            for volume in [first, second] {
                #expect(result.snapshot.plan.verdict(volume)?.verdict == .reap, "idle at plan time")
                let outcome = try #require(result.report.outcome(volume))
                #expect(outcome.action == .keptAtLastCheck, "\(volume): \(outcome.action) \(outcome.reasons)")
                #expect(outcome.reasons.contains(.accessedDuringReap))
                #expect(FileManager.default.fileExists(atPath: volume + "/sub/log"))
            }
        }
    }

    @Test("an overflow before the cycle keeps the volume in the plan, with the overflow's time as its last access")
    func overflowBeforePlanKeeps() async throws {
        let uid = AgentHarness.uid(3)
        let node = try AgentHarness("overflow-plan", pods: [(uid, "Succeeded")])
        defer { node.remove() }
        let volume = try node.idleVolume(uid, "scratch")
        try await node.withWatcher {
            // The cycle's own flush has run; the overflow comes right after it.
            await node.controller.flushAccesses()
            let before = Date()
            node.watcher.handle([Self.overflow])
            let result = try node.reapCycle()
            let verdict = try #require(result.snapshot.plan.verdict(volume))
            #expect(verdict.verdict == .keep)
            #expect(verdict.reasons.contains(.recentAccess))
            #expect(verdict.lastAccessSource == .inotify)
            #expect((verdict.lastAccess ?? .distantPast) >= before.addingTimeInterval(-1))
            #expect(FileManager.default.fileExists(atPath: volume + "/data"))
        }
    }

    @Test("a lost signal counts for every path the reader asks about, also ones the watcher never knew")
    func lostSignalCoversUnknownPaths() async throws {
        let uid = AgentHarness.uid(4)
        let node = try AgentHarness("overflow-unknown", pods: [(uid, "Succeeded")])
        defer { node.remove() }
        try node.idleVolume(uid, "known")
        try await node.withWatcher {
            let unknown = node.pods + "/" + uid + "/volumes/kubernetes.io~empty-dir/never-watched"
            #expect(try node.controller.accesses.records(covering: [unknown], policy: node.policy)[unknown] == nil)
            let before = Date()
            node.watcher.handle([Self.overflow])
            let record = try #require(try node.controller.accesses.records(covering: [unknown], policy: node.policy)[unknown])
            #expect(record.lastAccess >= before.addingTimeInterval(-1))
            #expect(record.source == .inotify)
        }
    }
}
