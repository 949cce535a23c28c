import AccessStore
import Foundation
import Logging
import ReaperAgent
import ReaperCore
import Testing
import TestSupport

/// Issue 18, item 5: NTP stepping the wall clock (at boot, when kubelets also
/// answer partially) shrank the confirmation window: two snapshots 2 s apart
/// across a 40 s step confirmed an orphan under `confirmAfter: 30s`. Three
/// real passes (real manifest files, a real access store for the sightings),
/// the wall clock stepped between the first two, the boot clock not.
@Suite("PlanBuilder: orphan confirmation across a wall-clock step")
struct WallClockStepTests {
    static let logger = Logger(label: "wall-clock-step-tests")
    static let orphan = PodViewTests.uid(51)
    static let running = PodViewTests.uid(52)

    @Test("40 s on the wall but 2 s on the boot clock is unconfirmed; 31 s on the boot clock confirms")
    func wallClockStep() throws {
        let node = try TemporaryDirectory("wall-clock-step")
        defer { node.remove() }
        let root = node.appending("kubelet"), manifests = node.appending("manifests")
        let orphanVolume = "\(root)/pods/\(Self.orphan)/volumes/kubernetes.io~empty-dir/data"
        var setup = "set -e; mkdir -p \(manifests) \(node.appending("state"))\n"
        for uid in [Self.orphan, Self.running] {
            let volume = "\(root)/pods/\(uid)/volumes/kubernetes.io~empty-dir/data"
            setup += "mkdir -p \(volume) && echo payload > \(volume)/file && find \(volume) -exec touch -d '3 hours ago' {} +\n"
        }
        let made = try ChildProcess.shell(setup)
        try #require(made.status == 0, "\(made.stderr)")
        let listed = [PodViewTests.podJSON(Self.running, name: "web", phase: "Running")]

        var configuration = AgentConfiguration()
        configuration.kubeletRoot = root
        configuration.manifests = manifests
        configuration.stateDir = node.appending("state")
        configuration.cgroupRoot = node.appending("cgroup")
        try FileManager.default.createDirectory(atPath: configuration.cgroupRoot + "/kubepods.slice", withIntermediateDirectories: true)
        var policy = Policy.defaults
        policy.orphans.confirmAfter = 30
        let store = try AccessStore(directory: configuration.stateDir, logger: Self.logger)
        let bootID = "0b0a0000-0000-4000-8000-00000000c10c"

        func pass(wall: Date, boot: TimeInterval) throws -> VolumeVerdict {
            var builder = PlanBuilder(configuration: configuration, policy: policy, manifestSettleTime: 0.2)
            builder.bootClock = { BootInstant(bootID: bootID, seconds: boot) }
            let snapshot = try builder.build(accessFor: { _ in [:] }, observations: store, logger: Self.logger, clock: { wall })
            return try #require(snapshot.plan.volumes.first { $0.path == orphanVolume })
        }

        // Write 1: the first sighting.
        try PodViewTests.writeManifests(manifests, pods: listed)
        Thread.sleep(forTimeInterval: 0.3)
        let start = Date()
        let first = try pass(wall: start, boot: 1000)
        #expect(first.verdict == .keep && first.reasons == [.orphanUnconfirmed], "\(first.reasons)")
        // Write 2, another content of the view; NTP stepped the clock 40 s
        // forward meanwhile, while 2 s passed.
        try PodViewTests.writeManifests(manifests, pods: listed + [PodViewTests.podJSON(PodViewTests.uid(53), name: "new", phase: "Pending")])
        Thread.sleep(forTimeInterval: 0.3)
        let second = try pass(wall: start.addingTimeInterval(40), boot: 1002)
        #expect(second.verdict == .keep && second.reasons == [.orphanUnconfirmed], "a wall-clock step confirmed the orphan: \(second.reasons)")
        // 31 s later on the boot clock: confirmed, and reaped.
        let third = try pass(wall: start.addingTimeInterval(71), boot: 1031)
        #expect(third.verdict == .reap && third.reasons == [.orphan, .idle], "\(third.reasons)")
    }
}
