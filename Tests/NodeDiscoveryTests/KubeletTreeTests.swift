import Foundation
import Logging
@testable import NodeDiscovery
import ReaperCore
import Testing
import TestSupport

/// Issue 18, items 6 and 13, on fake cgroup trees in temp directories (plain
/// directories and files laid out as cgroupfs shows them): the kubelet's pod
/// tree is found wherever the node puts it, a tree that cannot be found keeps
/// orphans, and a FIFO where a cgroup file should be never blocks.
@Suite("Pod cgroups: the kubelet's tree, found or fail closed", .timeLimit(.minutes(1)))
struct KubeletTreeTests {
    static let uid = "7c0ffee0-1234-4abc-8def-0123456789ab"
    static let logger: Logger = {
        var logger = Logger(label: "kubelet-tree-test")
        logger.logLevel = .critical
        return logger
    }()

    /// Makes `relative` (directories) below `root` and writes `files` into its last directory.
    static func make(_ root: String, _ relative: String, files: [String: String] = [:]) throws {
        let path = root + "/" + relative
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, text) in files {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path + "/" + name))
        }
    }

    static var escaped: String { CgroupSandbox.escaped(uid) }

    @Test("a tree four levels below the root (nested under docker/<id>/) is found: a pod with a process there is alive", arguments: [
        // cgroup v2 on a hybrid host, systemd driver: `populated 1` in cgroup.events.
        "unified/docker/0f1e2d3c/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(escaped).slice",
        // cgroup v1, cgroupfs driver: a pid in cgroup.procs.
        "memory/docker/0f1e2d3c/kubepods/besteffort/pod\(uid)",
        // Deeper still: a kind node in a docker-in-docker CI runner.
        "unified/system.slice/docker-0f1e.scope/docker/4b5a/kubepods.slice/kubepods-pod\(escaped).slice",
    ])
    func deepTree(_ relative: String) throws {
        let directory = try TemporaryDirectory("kubepods-deep")
        defer { directory.remove() }
        let v1 = relative.hasPrefix("memory/")
        try Self.make(directory.path, relative, files: v1 ? ["cgroup.procs": "4242\n"] : ["cgroup.events": "populated 1\nfrozen 0\n"])
        let cgroups = PodCgroups(root: directory.path)
        guard case .alive = cgroups.liveness(ofPod: Self.uid, logger: Self.logger) else {
            Issue.record("a live pod four levels down must be alive, got \(cgroups.liveness(ofPod: Self.uid, logger: Self.logger))")
            return
        }
        let survey = cgroups.survey(pods: [Self.uid], logger: Self.logger)
        #expect(survey.alive == [Self.uid])
        #expect(survey.treeMissing == nil)
    }

    @Test("no kubelet tree under the root (a wrong cgroupRoot, or none at all): the survey says why, and orphans are kept as liveness-unknown")
    func wrongRoot() throws {
        let directory = try TemporaryDirectory("kubepods-none")
        defer { directory.remove() }
        try Self.make(directory.path, "unified/system.slice/containerd.service", files: ["cgroup.events": "populated 1\n"])
        for root in [directory.path, directory.appending("missing")] {
            let survey = PodCgroups(root: root).survey(pods: [Self.uid], logger: Self.logger)
            let why = try #require(survey.treeMissing, "no tree under \(root): the survey must say so")
            #expect(why.contains(root), "the reason names the root searched: \(why)")
            #expect(!why.contains("\n"))
            #expect(survey.keepReasons(for: Self.uid, orphan: true) == [.livenessUnknown])
            // A pod the view lists as terminated is judged by the view (the documented decision).
            #expect(survey.keepReasons(for: Self.uid, orphan: false) == [])
        }
        // No pod directories: nothing to keep, nothing missing.
        #expect(PodCgroups(root: directory.path).survey(pods: [], logger: Self.logger).treeMissing == nil)
    }

    @Test("a FIFO named cgroup.events or cgroup.procs in a pod cgroup: the survey returns at once, the pod kept as inconclusive",
          arguments: ["cgroup.events", "cgroup.procs"])
    func fifoInPodCgroup(_ name: String) throws {
        let directory = try TemporaryDirectory("kubepods-fifo")
        defer { directory.remove() }
        let pod = directory.appending("kubepods/besteffort/pod\(Self.uid)")
        try FileManager.default.createDirectory(atPath: pod, withIntermediateDirectories: true)
        let fifos = try PlantedFIFOs([pod + "/" + name])
        defer { fifos.close() }
        let cgroups = PodCgroups(root: directory.path)
        let logger = Self.logger
        let survey = finishing(within: 5, unblock: fifos.release) { cgroups.survey(pods: [Self.uid], logger: logger) }
        #expect(survey == PodLiveness(inconclusive: [Self.uid]), "the survey must return promptly and keep the pod")
        let liveness = finishing(within: 5, unblock: fifos.release) { cgroups.liveness(ofPod: Self.uid, logger: logger) }
        guard case .inconclusive(let detail)? = liveness else {
            Issue.record("the last check's liveness must be inconclusive at once, got \(String(describing: liveness))")
            return
        }
        #expect(detail.contains("FIFO"), "\(detail)")
        #expect(fifos.intact)
    }

    // MARK: From what the node says

    /// A /proc with a process named `kubelet` in `cgroup` (the file's text),
    /// beside another process; `comm` of a third is a FIFO (never opened).
    static func fakeProc(_ directory: TemporaryDirectory, kubeletCgroup: String) throws -> (proc: String, fifos: PlantedFIFOs) {
        let proc = directory.appending("proc")
        try make(proc, "4242", files: ["comm": "kubelet\n", "cgroup": kubeletCgroup])
        try make(proc, "1", files: ["comm": "systemd\n", "cgroup": "0::/init.scope\n"])
        try make(proc, "77")
        return (proc, try PlantedFIFOs([proc + "/77/comm"]))
    }

    @Test("the kubelet config's driver and cgroupRoot name the tree", arguments: [
        ("systemd", "/", "kubepods.slice"),
        ("systemd", "/kubelet.slice", "kubelet.slice/kubelet-kubepods.slice"),
        ("cgroupfs", "/", "kubepods"),
        ("cgroupfs", "/kubelet", "kubelet/kubepods"),
    ])
    func expectedNames(_ driver: String, _ cgroupRoot: String, _ tree: String) {
        let trees = KubeletCgroupTrees(root: "/x", procRoot: "/y", settings: KubeletCgroupSettings(driver: driver, cgroupRoot: cgroupRoot))
        #expect(trees.expectedTreePaths().first == tree)
        #expect(trees.expectedTreePaths().contains("kubepods.slice") && trees.expectedTreePaths().contains("kubepods"))
    }

    @Test("systemd and cgroupfs layouts under a containerized kubelet, found from /proc/<kubelet>/cgroup: a live pod is alive", arguments: [
        ("systemd", "/kubelet.slice", "0::/docker/4b5a/system.slice/kubelet.service\n",
         "unified/docker/4b5a/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod\(escaped).slice"),
        ("cgroupfs", "/", "12:memory:/docker/4b5a/kubelet\n0::/docker/4b5a/kubelet\n",
         "memory/docker/4b5a/kubepods/burstable/pod\(uid)"),
    ])
    func fromKubeletProcess(_ driver: String, _ cgroupRoot: String, _ procCgroup: String, _ pod: String) throws {
        let directory = try TemporaryDirectory("kubepods-proc")
        defer { directory.remove() }
        let root = directory.appending("cgroup")
        let v1 = pod.hasPrefix("memory/")
        try Self.make(root, pod, files: v1 ? ["cgroup.procs": "4242\n"] : ["cgroup.events": "populated 1\n"])
        let (proc, fifos) = try Self.fakeProc(directory, kubeletCgroup: procCgroup)
        defer { fifos.close() }
        let settings = KubeletCgroupSettings(driver: driver, cgroupRoot: cgroupRoot)
        let finder = KubeletCgroupTrees(root: root, procRoot: proc, settings: settings)
        let kubelets = try #require(finishing(within: 5, unblock: fifos.release) { finder.kubeletCgroupPaths() })
        #expect(kubelets.paths.contains("/docker/4b5a/" + (driver == "systemd" ? "system.slice/kubelet.service" : "kubelet")))
        let tree = root + "/" + pod.components(separatedBy: "/").prefix(while: { !$0.hasPrefix("kubelet-kubepods-") && !$0.hasPrefix("burstable") }).joined(separator: "/")
        #expect(finder.candidates(kubelets: kubelets.paths).contains { root + "/" + (v1 ? "memory/" : "unified/") + $0 == tree }, "\(tree)")
        let cgroups = PodCgroups(root: root, procRoot: proc, kubelet: settings)
        #expect(cgroups.survey(pods: [Self.uid], logger: Self.logger) == PodLiveness(alive: [Self.uid]))
    }

    @Test("a tree deeper than the fallback search goes is still found beside the kubelet's own cgroup")
    func beyondTheSearch() throws {
        let directory = try TemporaryDirectory("kubepods-beyond")
        defer { directory.remove() }
        let root = directory.appending("cgroup")
        let nest = (1...KubeletCgroupTrees.searchDepth).map { "n\($0)" }.joined(separator: "/")
        try Self.make(root, nest + "/kubepods.slice/kubepods-pod\(Self.escaped).slice", files: ["cgroup.events": "populated 1\n"])
        try Self.make(root, nest + "/system.slice/kubelet.service")
        let (proc, fifos) = try Self.fakeProc(directory, kubeletCgroup: "0::/\(nest)/system.slice/kubelet.service\n")
        defer { fifos.close() }
        #expect(PodCgroups(root: root, procRoot: directory.appending("no-proc")).survey(pods: [Self.uid], logger: Self.logger).treeMissing != nil,
                "the search alone does not go that deep")
        let survey = PodCgroups(root: root, procRoot: proc).survey(pods: [Self.uid], logger: Self.logger)
        #expect(survey == PodLiveness(alive: [Self.uid]))
    }
}
