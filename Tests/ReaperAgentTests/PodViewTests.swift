import Foundation
import Logging
import ReaperAgent
import ReaperCore
import Synchronization
import Testing
import TestSupport

/// Issue 13 hole 2: the manifests were read once per cycle. A pod written
/// into them as Running (an atomic write) after the first of 13 volumes was
/// deleted still had its volume reaped, and its whole pod directory removed.
@Suite("ReapCycle: the pod view at each last check")
struct PodViewTests {
    static let logger = Logger(label: "pod-view-tests")

    static func uid(_ number: Int) -> String { String(format: "5e1f0000-0000-4000-8000-%012d", number) }

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Orphan sightings from "earlier runs": the orphan is confirmed.
    final class Sightings: OrphanObservationLog {
        let stored: [String: OrphanObservation]
        init(_ stored: [String: OrphanObservation]) { self.stored = stored }
        func orphanObservations() throws -> [String: OrphanObservation] { stored }
        func recordOrphanObservations(_ update: OrphanObservationUpdate) throws {}
    }

    static func podJSON(_ uid: String, name: String, phase: String) -> String {
        """
        {"kind": "Pod", "metadata": {"name": "\(name)", "namespace": "batch", "uid": "\(uid)"},
         "status": {"phase": "\(phase)", "containerStatuses": [{"name": "c", "state": {"terminated": {"finishedAt": "2020-01-01T00:00:00Z"}}}]}}
        """
    }

    /// Writes the pod list atomically (a temporary file, then rename), as the README asks writers to.
    static func writeManifests(_ directory: String, pods: [String]) throws {
        let text = "{\"kind\": \"List\", \"items\": [\n" + pods.joined(separator: ",\n") + "\n]}\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: directory + "/.pods.json.tmp"))
        guard rename(directory + "/.pods.json.tmp", directory + "/pods.json") == 0 else { throw POSIXError(.EIO) }
    }

    @Test("a pod listed as Running after the first of 13 deletions keeps its volume and its pod directory")
    func podListedMidCycle() throws {
        let node = try TemporaryDirectory("pod-view")
        defer { node.remove() }
        let root = node.appending("kubelet"), manifests = node.appending("manifests")
        let late = Self.uid(13)
        // An empty kubelet pod cgroup tree: without one the orphan is kept (liveness-unknown).
        var setup = "set -e; mkdir -p \(manifests) \(node.appending("state")) \(node.appending("cgroup/kubepods.slice"))\n"
        for number in 1...13 {
            let volume = "\(root)/pods/\(Self.uid(number))/volumes/kubernetes.io~empty-dir/data"
            // The late pod's volume is the least idle: it comes last.
            let age = number == 13 ? "2 hours ago" : "3 hours ago"
            setup += "mkdir -p \(volume) && echo payload > \(volume)/file && find \(volume) -exec touch -d '\(age)' {} +\n"
        }
        let setupResult = try ChildProcess.shell(setup)
        try #require(setupResult.status == 0, "\(setupResult.stderr)")
        let finished = (1...12).map { Self.podJSON(Self.uid($0), name: "job-\($0)", phase: "Succeeded") }
        try Self.writeManifests(manifests, pods: finished)
        Thread.sleep(forTimeInterval: 0.3)

        var configuration = AgentConfiguration()
        configuration.kubeletRoot = root
        configuration.manifests = manifests
        configuration.stateDir = node.appending("state")
        configuration.cgroupRoot = node.appending("cgroup")
        configuration.procRoot = node.appending("proc")
        var builder = PlanBuilder(configuration: configuration, policy: .defaults, manifestSettleTime: 0.2)
        builder.bootClock = { BootInstant(bootID: "boot-1", seconds: 10_000) }
        // The access store is read once for the plan, then before each volume:
        // the third read comes after the first deletion.
        let reads = Counter()
        let access: @Sendable ([String]) throws -> [String: AccessRecord] = { _ in
            if reads.value.add(1, ordering: .sequentiallyConsistent).newValue == 3 {
                try Self.writeManifests(manifests, pods: finished + [Self.podJSON(late, name: "late", phase: "Running")])
            }
            return [:]
        }
        let sightings = Sightings([late: OrphanObservation(
            podUID: late, firstMissingAt: Date().addingTimeInterval(-3600), firstMissingBoot: BootInstant(bootID: "boot-1", seconds: 6400),
            snapshotFingerprint: "an earlier write"
        )])
        let result = try ReapCycle(builder: builder, dryRun: false).run(access: access, observations: sightings, logger: Self.logger)

        let lateVolume = "\(root)/pods/\(late)/volumes/kubernetes.io~empty-dir/data"
        let planned = try #require(result.snapshot.plan.volumes.first { $0.path == lateVolume })
        try #require(planned.verdict == .reap && planned.orphan, "the plan reaps the confirmed orphan: \(planned.reasons)")
        #expect(reads.value.load(ordering: .sequentiallyConsistent) >= 3, "the manifests were rewritten mid-cycle")
        #expect(result.report.reaped.count == 12)
        let outcome = try #require(result.report.outcomes.first { $0.verdict.path == lateVolume })
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons.contains(.podRunning))
        #expect(FileManager.default.fileExists(atPath: lateVolume + "/file"))
        #expect(FileManager.default.fileExists(atPath: "\(root)/pods/\(late)"))
        #expect(result.report.podDirectories.allSatisfy { !$0.removed })
    }
}
