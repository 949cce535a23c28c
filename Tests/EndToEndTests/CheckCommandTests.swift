import Foundation
import Testing
import TestSupport

/// `volume-reaper check` as a child process, on a healthy and a broken example node.
@Suite("volume-reaper check")
struct CheckCommandTests {
    func check(_ arguments: [String]) throws -> (status: Int32, lines: [String]) {
        let result = try ChildProcess.run(PackagePaths.binary, ["check"] + arguments)
        return (result.status, result.stdout.split(separator: "\n").map(String.init))
    }

    /// A kubeconfig whose server is `https://127.0.0.1:<port>` (nothing listens there).
    func closedPortKubeconfig(in directory: TemporaryDirectory, port: Int) throws -> String {
        let kubeconfig = directory.appending("kubelet.conf")
        try """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "https://127.0.0.1:\(port)"}}]
            users: [{name: u, user: {token: not-a-real-token}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            current-context: x
            """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        return kubeconfig
    }

    func line(_ lines: [String], _ item: String) -> String {
        lines.first { $0.dropFirst(5).hasPrefix(item + ":") } ?? "(no \(item) line in:\n\(lines.joined(separator: "\n")))"
    }

    @Test("a healthy node: every item ok or warn, the counts a user reads, exit 0")
    func healthyNode() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let state = node.directory.appending("state")
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let pods = try FileManager.default.contentsOfDirectory(atPath: node.kubeletRoot + "/pods")
            .filter { $0.count == 36 || $0.count == 32 }.count
        let (status, lines) = try check([
            "--kubelet-root", node.kubeletRoot, "--cgroup-root", node.cgroupRoot, "--manifests", node.manifests, "--policy", TestPolicies.singleSnapshot,
            "--state-dir", state, "--socket", node.directory.appending("api.sock"),
        ])
        #expect(status == 0, "\(lines.joined(separator: "\n"))")
        #expect(lines.count == 12)
        #expect(lines.allSatisfy { $0.hasPrefix("ok   ") || $0.hasPrefix("warn ") })
        #expect(line(lines, "kubelet root") == "ok   kubelet root: \(node.kubeletRoot): \(pods) pod directories")
        #expect(line(lines, "pod liveness") == "ok   pod liveness: kubelet pod cgroups found: \(node.cgroupRoot)/kubepods.slice")
        #expect(line(lines, "pod source").hasPrefix("ok   pod source: files \(node.manifests): "))
        #expect(line(lines, "pod source").hasSuffix(" pods"))
        #expect(line(lines, "inotify").contains(" directories to watch; max_user_watches "))
        #expect(line(lines, "state directory") == "ok   state directory: \(state) is writable")
        #expect(line(lines, "socket") == "ok   socket: \(node.directory.appending("api.sock")) is free")
        #expect(line(lines, "policy").hasPrefix("ok   policy: \(TestPolicies.singleSnapshot): valid: idle after "))
        #expect(line(lines, "mode").hasPrefix("ok   mode: reap: "), "no dryRun in the config: run reaps")
        if isRoot {
            #expect(line(lines, "file leases") == "ok   file leases: granted: a removal stops at a file another process holds open")
        }
        // The same counts `--plan` gives.
        let reaps = node.expectations.filter { $0.verdict == "reap" }.count
        #expect(line(lines, "plan").hasPrefix("ok   plan: \(node.expectations.count) volumes: \(reaps) to reap ("), "\(line(lines, "plan"))")
    }

    @Test("without CAP_LEASE (the unit's bounding set before leases): a warning naming the capability and where to add it",
          .enabled(if: isRoot, "needs root: setpriv drops a capability root has"))
    func noLeaseCapability() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let result = try ChildProcess.run("/usr/bin/setpriv", ["--bounding-set=-lease", PackagePaths.binary, "check",
            "--kubelet-root", node.kubeletRoot, "--manifests", node.manifests, "--policy", TestPolicies.singleSnapshot,
            "--state-dir", node.directory.appending("state"), "--socket", node.directory.appending("api.sock")])
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(line(lines, "file leases").hasPrefix("warn file leases: no CAP_LEASE: "), "\(result.stdout) \(result.stderr)")
        #expect(line(lines, "file leases").contains("add CAP_LEASE"))
    }

    @Test("a broken node: no kubelet root, an unreadable policy, an API server on a closed port: fail lines with fixes, exit 1")
    func brokenNode() throws {
        let directory = try TemporaryDirectory("check-broken")
        defer { directory.remove() }
        // A directory where the policy file should be: unreadable as a policy (root reads any mode).
        let policy = directory.appending("policy.yaml")
        try FileManager.default.createDirectory(atPath: policy, withIntermediateDirectories: false)
        let port = try MetricsListenerTests.freePort()
        let kubeconfig = try closedPortKubeconfig(in: directory, port: port)
        let config = directory.appending("config.yaml")
        try """
            kubeletRoot: \(directory.appending("no-kubelet"))
            policy: \(policy)
            stateDir: \(directory.appending("state"))
            socket: \(directory.appending("api.sock"))
            podSource:
              kind: apiserver
              kubeconfig: \(kubeconfig)
              nodeName: node-1
              requestTimeout: 5s
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let started = Date()
        let (status, lines) = try check(["--config", config])
        let elapsed = Date().timeIntervalSince(started)
        #expect(status == 1)
        #expect(line(lines, "kubelet root")
            == "fail kubelet root: \(directory.appending("no-kubelet")): no such directory -- fix: set kubeletRoot (--kubelet-root) to the kubelet's --root-dir")
        let podSource = line(lines, "pod source")
        #expect(podSource.hasPrefix("fail pod source: apiserver https://127.0.0.1:\(port)"), "\(podSource)")
        #expect(podSource.contains("-- fix: check the server in podSource.kubeconfig"), "\(podSource)")
        // Issue 19: one plain line, at once (it was NIO's "connection reset
        // (error set): Connection refused (errno: 111)" after requestTimeout).
        #expect(podSource.contains(": connection refused (nothing listens at that address and port) -- fix: "), "\(podSource)")
        for noise in ["errno", "error set", "connection reset", "NIOConnectionError", "IOError"] {
            #expect(!podSource.contains(noise), "\(podSource)")
        }
        #expect(elapsed < 4, "check took \(elapsed)s against a closed port (requestTimeout 5s)")
        let policyLine = line(lines, "policy")
        #expect(policyLine.hasPrefix("fail policy: \(policy): "), "\(policyLine)")
        #expect(policyLine.contains("-- fix: "))
        #expect(line(lines, "plan") == "fail plan: not built: the policy is invalid -- fix: fix the policy first")
        #expect(lines.allSatisfy { $0.split(separator: "\n").count == 1 && ($0.hasPrefix("ok ") || $0.hasPrefix("warn ") || $0.hasPrefix("fail ")) })
    }

    @Test("issue 19: logTarget stderr does not warn about journald; every broken policy section is a fail line; drop-ins are named")
    func polish() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let policy = node.directory.appending("policy.yaml")
        try """
            idle:
              after: soon
            limits:
              maxReapsPerCycle: many
            pods:
              excludeNamespaces: [kube-system]
            surprise: {}
            """.write(toFile: policy, atomically: true, encoding: .utf8)
        let config = node.directory.appending("config.yaml")
        try """
            kubeletRoot: \(node.kubeletRoot)
            manifests: \(node.manifests)
            policy: \(policy)
            stateDir: \(node.directory.appending("state"))
            socket: \(node.directory.appending("api.sock"))
            logTarget: stderr
            """.write(toFile: config, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: node.directory.appending("config.d"), withIntermediateDirectories: true)
        try "dryRun: true\n".write(toFile: node.directory.appending("config.d/10-observe.yaml"), atomically: true, encoding: .utf8)
        let (status, lines) = try check(["--config", config])
        #expect(status == 1)
        #expect(line(lines, "config") == "ok   config: \(config) with drop-ins \(node.directory.appending("config.d/10-observe.yaml")): valid")
        #expect(line(lines, "journald") == "ok   journald: not used: logTarget is stderr")
        let policyLines = lines.filter { $0.hasPrefix("fail policy: ") }
        #expect(policyLines.count == 3, "\(policyLines)")
        #expect(policyLines.contains { $0.contains(": idle.after: ") }, "\(policyLines)")
        #expect(policyLines.contains { $0.contains(": limits.maxReapsPerCycle: ") }, "\(policyLines)")
        #expect(policyLines.contains { $0.contains("surprise") }, "\(policyLines)")
        #expect(line(lines, "mode").hasPrefix("ok   mode: observe: "))
    }
}
