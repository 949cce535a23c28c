import Foundation
import Logging
@testable import NodeDiscovery
import ReaperCore
import Testing
import TestSupport

/// The liveness cross-check against real cgroups: slices made on the machine's
/// cgroup file system, a sleeping process moved into a pod's container cgroup.
@Suite("Pod cgroups: is the pod alive?", .timeLimit(.minutes(1)))
struct PodCgroupsTests {
    static let uid = "7c0ffee0-1234-4abc-8def-0123456789ab"
    static let logger: Logger = {
        var logger = Logger(label: "pod-cgroups-test")
        logger.logLevel = .critical
        return logger
    }()

    struct Layout: Sendable, CustomTestStringConvertible {
        var version: CgroupSandbox.Version
        var driver: CgroupSandbox.Driver
        var guaranteed: Bool
        var testDescription: String { "\(version) \(driver)\(guaranteed ? " guaranteed" : " besteffort")" }
    }

    static let layouts: [Layout] = CgroupSandbox.Version.allCases.flatMap { version in
        CgroupSandbox.Driver.allCases.flatMap { driver in [false, true].map { Layout(version: version, driver: driver, guaranteed: $0) } }
    }

    /// The sandbox, or nil with the reason printed (not root, no such hierarchy).
    static func sandbox(_ version: CgroupSandbox.Version) throws -> CgroupSandbox? {
        do {
            return try CgroupSandbox(version)
        } catch let unavailable as SandboxUnavailable {
            print("skipped: cgroup \(version) liveness test: \(unavailable)")
            return nil
        }
    }

    @Test("empty pod cgroup: not alive; a process in its container cgroup: alive; killed: not alive", arguments: layouts)
    func realProcess(_ layout: Layout) throws {
        guard let sandbox = try Self.sandbox(layout.version) else { return }
        defer { sandbox.remove() }
        let container = try sandbox.makePod(Self.uid, driver: layout.driver, guaranteed: layout.guaranteed)
        let other = "11111111-2222-4333-8444-555555555555"
        try sandbox.makePod(other, driver: layout.driver)
        let cgroups = PodCgroups(root: sandbox.root)

        #expect(cgroups.liveness(ofPod: Self.uid, logger: Self.logger) == .notAlive)
        #expect(cgroups.survey(pods: [Self.uid, other], logger: Self.logger) == PodLiveness())

        let sleeper = try Sleeper()
        defer { sleeper.kill() }
        try sandbox.move(sleeper.pid, into: container)
        guard case .alive = cgroups.liveness(ofPod: Self.uid, logger: Self.logger) else {
            Issue.record("a pod with a process in its container cgroup is alive: \(cgroups.liveness(ofPod: Self.uid, logger: Self.logger))")
            return
        }
        #expect(cgroups.liveness(ofPod: other, logger: Self.logger) == .notAlive)
        #expect(cgroups.survey(pods: [Self.uid, other], logger: Self.logger) == PodLiveness(alive: [Self.uid]))

        sleeper.kill()
        #expect(cgroups.liveness(ofPod: Self.uid, logger: Self.logger) == .notAlive)
        #expect(cgroups.survey(pods: [Self.uid], logger: Self.logger).alive.isEmpty)
    }

    @Test("a static pod's cgroup is named by its config hash")
    func staticPod() throws {
        guard let sandbox = try Self.sandbox(.v2) ?? Self.sandbox(.v1) else { return }
        defer { sandbox.remove() }
        let hash = "0123456789abcdef0123456789abcdef"
        let container = try sandbox.makePod(hash, driver: .systemd, guaranteed: true)
        let sleeper = try Sleeper()
        defer { sleeper.kill() }
        try sandbox.move(sleeper.pid, into: container)
        #expect(PodCgroups(root: sandbox.root).survey(pods: [hash], logger: Self.logger).alive == [hash])
    }

    @Test("no kubelet tree under the root: the last check says so (an orphan is kept), the survey says why")
    func noTree() throws {
        let directory = try TemporaryDirectory("no-kubepods")
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.appending("system.slice/a.service"), withIntermediateDirectories: true)
        for root in [directory.path, directory.appending("missing")] {
            let cgroups = PodCgroups(root: root, procRoot: directory.appending("no-proc"))
            guard case .noKubeletTree(let why) = cgroups.liveness(ofPod: Self.uid, logger: Self.logger) else {
                Issue.record("expected noKubeletTree, got \(cgroups.liveness(ofPod: Self.uid, logger: Self.logger))")
                continue
            }
            #expect(why.contains(root))
            let survey = cgroups.survey(pods: [Self.uid], logger: Self.logger)
            #expect(survey.alive.isEmpty && survey.inconclusive.isEmpty && survey.treeMissing == why)
        }
    }

    @Test("the tree is found where v1 controllers, hybrid hosts and a kubelet --cgroup-root put it")
    func treeLocations() throws {
        let directory = try TemporaryDirectory("kubepods-layouts")
        defer { directory.remove() }
        for tree in ["pids/kubepods.slice", "memory/kubepods", "unified/kubelet.slice/kubelet-kubepods.slice", "kubepods.slice"] {
            try FileManager.default.createDirectory(atPath: directory.appending(tree), withIntermediateDirectories: true)
        }
        // v1 hosts link `cpu -> cpu,cpuacct`: a symlink is never followed (no tree found twice).
        try FileManager.default.createSymbolicLink(atPath: directory.appending("cpu"), withDestinationPath: directory.appending("pids"))
        let found = Set(try PodCgroups(root: directory.path).kubeletTrees())
        #expect(found == Set(["pids/kubepods.slice", "memory/kubepods", "unified/kubelet.slice/kubelet-kubepods.slice", "kubepods.slice"].map(directory.appending)))
    }

    @Test("pod UIDs are read from both drivers' names; other cgroups name no pod")
    func names() {
        #expect(PodCgroups.podUID(cgroupName: "kubepods-burstable-pod7c0ffee0_1234_4abc_8def_0123456789ab.slice") == Self.uid)
        #expect(PodCgroups.podUID(cgroupName: "kubepods-pod7c0ffee0_1234_4abc_8def_0123456789ab.slice") == Self.uid)
        #expect(PodCgroups.podUID(cgroupName: "pod7c0ffee0-1234-4abc-8def-0123456789ab") == Self.uid)
        #expect(PodCgroups.podUID(cgroupName: "kubepods-besteffort.slice") == nil)
        #expect(PodCgroups.podUID(cgroupName: "burstable") == nil)
        #expect(PodCgroups.podUID(cgroupName: "cri-containerd-0123.scope") == nil)
    }

    @Test("an unreadable cgroup file is inconclusive, never 'not alive'")
    func unreadable() throws {
        // Root reads any file, so the file is made unreadable as a file: a directory.
        let directory = try TemporaryDirectory("cgroup-unreadable")
        defer { directory.remove() }
        let pod = directory.appending("kubepods/besteffort/pod\(Self.uid)")
        try FileManager.default.createDirectory(atPath: pod + "/cgroup.procs", withIntermediateDirectories: true)
        let cgroups = PodCgroups(root: directory.path)
        guard case .inconclusive = cgroups.liveness(ofPod: Self.uid, logger: Self.logger) else {
            Issue.record("expected inconclusive, got \(cgroups.liveness(ofPod: Self.uid, logger: Self.logger))")
            return
        }
        #expect(cgroups.survey(pods: [Self.uid], logger: Self.logger) == PodLiveness(inconclusive: [Self.uid]))
        #expect(PodLiveness(inconclusive: [Self.uid]).keepReasons(for: Self.uid, orphan: false) == [.inconclusive])
    }
}
