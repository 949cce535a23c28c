import Foundation
import ReaperCore
import Testing
import TestSupport

/// Observe and reap mode (issue 9, safe first install): the config's `dryRun`
/// starts the daemon deleting nothing, one edit plus SIGHUP (`systemctl
/// reload`) turns deletion on, a config that no longer loads turns it off,
/// and `--once` refuses a config that says observe.
@Suite("observe mode", .serialized)
struct ModeTests {
    static let policy = TestPolicies.singleSnapshot

    func writeConfig(_ path: String, node: ExampleNode, dryRun: String) throws {
        try """
            kubeletRoot: \(node.kubeletRoot)
            cgroupRoot: \(node.cgroupRoot)
            manifests: \(node.manifests)
            policy: \(Self.policy)
            stateDir: \(node.directory.appending("state"))
            socket: \(node.directory.appending("run/api.sock"))
            reconcileInterval: 1s
            flushInterval: 500ms
            logTarget: stderr
            dryRun: \(dryRun)
            """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    func dryRun(_ socket: String) throws -> Bool? {
        let (_, body) = try curl(socket, "/healthz")
        return (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["dryRun"] as? Bool
    }

    @Test("dryRun: true deletes nothing; dryRun: false plus SIGHUP reaps; a broken config plus SIGHUP observes again")
    func reloadSwitchesMode() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let config = node.directory.appending("config.yaml")
        let socket = node.directory.appending("run/api.sock")
        try writeConfig(config, node: node, dryRun: "true")
        let reap = try #require(node.expectations.first { $0.verdict == "reap" })
        let notify = try NotifySocket(path: node.directory.appending("notify.sock"))
        let daemon = try BackgroundProcess(
            PackagePaths.binary, ["run", "--config", config],
            environment: ["NOTIFY_SOCKET": notify.path], log: node.directory.appending("daemon.log")
        )
        defer { daemon.stop(signal: SIGKILL) }
        try #require(notify.waitFor("READY=1", timeout: 60) != nil, "\(daemon.log)")
        #expect(try eventually(timeout: 60) { try curl(socket, "/healthz").status == 200 }, "\(daemon.log)")
        #expect(try dryRun(socket) == true)
        // Several cycles in observe mode: the reap verdict is logged, not acted on.
        #expect(eventually(timeout: 20) { daemon.log.components(separatedBy: "reconciled").count > 3 }, "\(daemon.log)")
        #expect(exists(reap.path), "observe mode deleted \(reap.path)")
        let observed = daemon.log.split(separator: "\n").filter { $0.contains("reconciled") }
        #expect(!observed.isEmpty && observed.allSatisfy { $0.contains("mode=observe") }, "\(observed)")

        // The one edit and a reload.
        try writeConfig(config, node: node, dryRun: "false")
        kill(daemon.pid, SIGHUP)
        #expect(notify.waitFor("RELOADING=1", timeout: 20) != nil)
        #expect(try eventually(timeout: 20) { try dryRun(socket) == false })
        #expect(eventually(timeout: 20) { !exists(reap.path) }, "not reaped after the reload: \(daemon.log)")
        #expect(daemon.log.contains("mode changed"))
        #expect(eventually(timeout: 20) {
            daemon.log.split(separator: "\n").contains { $0.contains("reconciled") && $0.contains("mode=reap") }
        }, "\(daemon.log)")

        // A config that no longer loads: observe until it does.
        try "dryRun: perhaps\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        #expect(try eventually(timeout: 20) { try dryRun(socket) == true }, "\(daemon.log)")
        #expect(daemon.log.contains("config reload failed"))
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("run --plan stays a dry run when a reload reads dryRun: false")
    func planFlagWins() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let config = node.directory.appending("config.yaml")
        let socket = node.directory.appending("run/api.sock")
        try writeConfig(config, node: node, dryRun: "false")
        let reap = try #require(node.expectations.first { $0.verdict == "reap" })
        let notify = try NotifySocket(path: node.directory.appending("notify.sock"))
        let daemon = try BackgroundProcess(
            PackagePaths.binary, ["run", "--plan", "--config", config],
            environment: ["NOTIFY_SOCKET": notify.path], log: node.directory.appending("daemon.log")
        )
        defer { daemon.stop(signal: SIGKILL) }
        try #require(notify.waitFor("READY=1", timeout: 60) != nil, "\(daemon.log)")
        #expect(try eventually(timeout: 60) { try curl(socket, "/healthz").status == 200 })
        kill(daemon.pid, SIGHUP)
        #expect(notify.waitFor("RELOADING=1", timeout: 20) != nil)
        #expect(eventually(timeout: 20) { daemon.log.contains("trigger=reload") }, "\(daemon.log)")
        #expect(try dryRun(socket) == true)
        #expect(exists(reap.path))
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("--once refuses a config with dryRun: true in one line and deletes nothing")
    func onceRefusesObserveConfig() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let config = node.directory.appending("config.yaml")
        try writeConfig(config, node: node, dryRun: "true")
        let before = try ChildProcess.run("/usr/bin/find", [node.kubeletRoot, "-printf", "%p %s\n"]).stdout
        let result = try ChildProcess.run(PackagePaths.binary, ["--once", "--config", config])
        #expect(result.status == 1)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(config) && result.stderr.contains("dryRun: true"), "\(result.stderr)")
        #expect(try ChildProcess.run("/usr/bin/find", [node.kubeletRoot, "-printf", "%p %s\n"]).stdout == before)
        // --plan with the same config is the dry run it asks for.
        #expect(try ChildProcess.run(PackagePaths.binary, ["--plan", "--config", config]).status == 0)
    }
}
