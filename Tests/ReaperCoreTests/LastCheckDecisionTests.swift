import Foundation
import ReaperCore
import Testing

/// Issue 21: the last check before a deletion is one pure function. These
/// walk it the way the reaper does: answer each `read`, ask again.
@Suite("Reconciler.lastCheck: the last check before a deletion")
struct LastCheckDecisionTests {
    let finished = Fixture.uid(1)
    let orphan = Fixture.uid(2)

    /// A node where the plan reaps the finished Job's volume and a confirmed orphan's.
    func node(scan: VolumeScan = Fixture.scan()) -> NodeFixture {
        var node = NodeFixture(uid: finished, pods: [Fixture.pod(finished)], scan: scan)
        node.addVolume(uid: orphan, scan: scan)
        return node
    }

    func planned(_ node: NodeFixture, _ uid: String) throws -> VolumeVerdict {
        let verdict = try node.verdict(Fixture.volumePath(uid, .emptyDir, "scratch"))
        try #require(verdict.verdict == .reap, "the plan reaps it: \(verdict.reasons)")
        return verdict
    }

    /// Answers the decision's reads from `node` (as it is now) until it decides.
    func decide(
        _ node: NodeFixture, planned: VolumeVerdict, liveness: CgroupLiveness = .notAlive, hostNamespace: Bool = true,
        access: [String: AccessRecord]? = [:], freeSpace: LastCheckInput.FreeSpaceReading? = nil,
        pressure: [PressureAssessment] = [], afterUnmount: VolumeScan? = nil
    ) -> (decision: LastCheckDecision, reads: [LastCheckDecision.Reading]) {
        var input = LastCheckInput(
            planned: planned, access: access, freeSpace: freeSpace, pressureFilesystems: pressure, policy: node.policy, now: Fixture.now
        )
        var reads: [LastCheckDecision.Reading] = []
        while true {
            let decision = Reconciler.lastCheck(input)
            guard case .read(let reading) = decision, reads.count < 10 else {
                if case .reap(let mounts) = decision, !mounts.isEmpty, let afterUnmount, !input.unmounted {
                    input.unmounted = true
                    let directory = node.directories.first { planned.path.hasPrefix($0.path + "/") }!
                    var volume = directory.volumes.first { $0.path == planned.path }!
                    volume.scan = afterUnmount
                    input.rescan = .init(volume: volume, directory: directory, podView: node.input.manifests)
                    continue
                }
                return (decision, reads)
            }
            reads.append(reading)
            switch reading {
            case .rescan:
                let directory = node.directories.first { planned.path.hasPrefix($0.path + "/") }!
                let volume = directory.volumes.first { $0.path == planned.path }!
                input.rescan = .init(volume: volume, directory: directory, podView: node.input.manifests)
            case .liveness: input.liveness = liveness
            case .mountNamespace: input.inHostMountNamespace = hostNamespace
            }
        }
    }

    @Test("nothing changed: the walk, then the cgroups, then reap with nothing to unmount")
    func unchanged() throws {
        let node = node()
        let result = decide(node, planned: try planned(node, orphan))
        #expect(result.decision == .reap(unmountFirst: []))
        #expect(result.reads == [.rescan, .liveness])
    }

    @Test("unreadable access times keep it before any walk")
    func accessUnreadable() throws {
        let node = node()
        let result = decide(node, planned: try planned(node, finished), access: nil)
        #expect(result.decision == .keep([.inconclusive], detail: "access times unreadable at the last check"))
        #expect(result.reads.isEmpty)
    }

    @Test("a pod source that turned unsynced after the plan keeps its orphans: pod-source-unsynced")
    func unsynced() throws {
        var node = node()
        let planned = try planned(node, orphan)
        node.manifestsSynced = false
        guard case .keep(let reasons, _) = decide(node, planned: planned).decision else {
            Issue.record("the orphan went on an unsynced view")
            return
        }
        #expect(reasons == [.podSourceUnsynced, .podStateChanged])
    }

    @Test("the pod listed again (Running) after the plan: pod-state-changed, no cgroup read")
    func listedAgain() throws {
        var node = node()
        let planned = try planned(node, orphan)
        node.pods.append(Fixture.pod(orphan, name: "back", phase: "Running", finishedAt: nil))
        let result = decide(node, planned: planned)
        #expect(result.decision == .keep([.podRunning, .podStateChanged], detail: "kept at the last check before deletion"))
        #expect(result.reads == [.rescan])
    }

    @Test("an access since the plan: accessed-during-reap")
    func accessed() throws {
        let node = node()
        let planned = try planned(node, finished)
        var fresh = node
        fresh.directories[0].volumes[0].scan = Fixture.scan(idle: 5)
        guard case .keep(let reasons, _) = decide(fresh, planned: planned).decision else {
            Issue.record("an accessed volume went")
            return
        }
        #expect(reasons.contains(.recentAccess) && reasons.contains(.accessedDuringReap))
    }

    @Test("the cgroups: alive keeps any pod, no kubelet tree keeps only an orphan")
    func liveness() throws {
        let node = node()
        let orphanVerdict = try planned(node, orphan), finishedVerdict = try planned(node, finished)
        #expect(decide(node, planned: finishedVerdict, liveness: .alive(cgroup: "/kubepods/podX")).decision
            == .keep([.podAlive], detail: "the pod's cgroup /kubepods/podX holds processes"))
        #expect(decide(node, planned: orphanVerdict, liveness: .inconclusive("EIO")).decision
            == .keep([.inconclusive], detail: "the pod's cgroup is unreadable: EIO"))
        #expect(decide(node, planned: orphanVerdict, liveness: .noKubeletTree("no kubepods")).decision
            == .keep([.livenessUnknown], detail: "no kubepods"))
        #expect(decide(node, planned: finishedVerdict, liveness: .noKubeletTree("no kubepods")).decision == .reap(unmountFirst: []))
    }

    @Test("opted-in mounts: unmounted deepest first from the host namespace only, and nothing may stay mounted")
    func mounts() throws {
        var node = node(scan: Fixture.scan(mounts: [
            MountInfo(mountPoint: Fixture.volumePath(Fixture.uid(1), .emptyDir, "scratch"), filesystemType: "tmpfs"),
            MountInfo(mountPoint: Fixture.volumePath(Fixture.uid(1), .emptyDir, "scratch") + "/inner", filesystemType: "tmpfs"),
        ]))
        node.policy.volumes.unmount = ["tmpfs"]
        let planned = try planned(node, finished)
        #expect(decide(node, planned: planned, hostNamespace: false).decision
            == .keep([.mounted], detail: "not in the host mount namespace: volumes.unmount refused"))
        let unmounted = decide(node, planned: planned, afterUnmount: Fixture.scan())
        #expect(unmounted.decision == .reap(unmountFirst: []))
        #expect(unmounted.reads == [.rescan, .liveness, .mountNamespace])
        guard case .reap(let order) = decide(node, planned: planned).decision else {
            Issue.record("no unmount")
            return
        }
        #expect(order.map(\.mountPoint).first?.hasSuffix("/inner") == true)
        let stillMounted = decide(node, planned: planned, afterUnmount: Fixture.scan(mounts: [MountInfo(mountPoint: planned.path, filesystemType: "nfs4")]))
        guard case .keep(let reasons, let detail) = stillMounted.decision else {
            Issue.record("deleted through a mount that stayed")
            return
        }
        #expect(reasons.contains(.mounted))
        #expect(detail == "kept after unmounting")
    }

    @Test("a disk-pressure reap: kept once its filesystem is back above the threshold, or when it cannot be measured")
    func pressure() throws {
        var node = node(scan: Fixture.scan(idle: 600))
        node.policy.pressure = Policy.Pressure()
        let usage = FilesystemUsage(path: "/var/lib/kubelet", totalBytes: 1000, availableBytes: 50, totalInodes: 100, availableInodes: 90, device: "8:1")
        let assessment = PressureAssessment(active: true, filesystem: usage, thresholdBytes: 100, thresholdInodes: nil, bytesNeeded: 50, inodesNeeded: 0)
        var planned = try node.verdict(Fixture.volumePath(finished, .emptyDir, "scratch"))
        planned.verdict = .reap
        planned.reasons = [.podTerminated, .diskPressure]
        var recovered = usage
        recovered.availableBytes = 200
        #expect(decide(node, planned: planned, freeSpace: .measured(recovered), pressure: [assessment]).decision
            == .keep([.recentAccess], detail: "free space on /var/lib/kubelet is back above the pressure threshold"))
        #expect(decide(node, planned: planned, freeSpace: .unmeasurable, pressure: [assessment]).decision
            == .keep([.inconclusive], detail: "the volume's filesystem cannot be measured as the plan measured it"))
        // Still short: judged by pressure.idleAfter, so ten idle minutes are enough.
        node.policy.pressure?.idleAfter = 300
        #expect(decide(node, planned: planned, freeSpace: .measured(usage), pressure: [assessment]).decision == .reap(unmountFirst: []))
        node.policy.pressure?.idleAfter = 3600
        guard case .keep(let reasons, _) = decide(node, planned: planned, freeSpace: .measured(usage), pressure: [assessment]).decision else {
            Issue.record("a pressure reap went before pressure.idleAfter")
            return
        }
        #expect(reasons.contains(.recentAccess))
    }
}
