import Foundation
import ReaperCore
import Testing
import TestSupport

/// `idle.requireObservation`: the daemon marks each volume observed once per
/// run (not every cycle), and again when a volume at the same path comes back.
@Suite("volume-reaper run: requireObservation", .serialized)
struct ObservationDaemonTests {
    @Test("a volume becomes reapable once watched for idle.after; removed and made again, it is watched afresh and becomes reapable again")
    func observedOnceAndAgain() async throws {
        let directory = try TemporaryDirectory("observation")
        defer { directory.remove() }
        let uid = "5e1f0000-0000-4000-8000-00000000a001"
        let volume = directory.appending("kubelet/pods/\(uid)/volumes/kubernetes.io~empty-dir/cache")
        func makeVolume() throws {
            try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
            try Data("x\n".utf8).write(to: URL(fileURLWithPath: volume + "/data"))
            _ = try ChildProcess.run("/usr/bin/touch", ["-d", "-3 hours", volume + "/data", volume])
        }
        try makeVolume()
        try FileManager.default.createDirectory(atPath: directory.appending("manifests"), withIntermediateDirectories: true)
        try Data("""
            {"kind": "PodList", "apiVersion": "v1", "items": [{"metadata": {"uid": "\(uid)", "name": "job-a001", "namespace": "batch",
              "ownerReferences": [{"kind": "Job", "name": "job", "apiVersion": "batch/v1", "uid": "x"}]}, "status": {"phase": "Succeeded"}}]}
            """.utf8).write(to: URL(fileURLWithPath: directory.appending("manifests/pods.json")))
        _ = try ChildProcess.run("/usr/bin/touch", ["-d", "-1 minute", directory.appending("manifests/pods.json")])
        let shipped = try String(contentsOf: PackagePaths.root.appendingPathComponent("policies/default.yaml"), encoding: .utf8)
        let policy = directory.appending("policy.yaml")
        try shipped.replacingOccurrences(of: "  requireObservation: false", with: "  requireObservation: true")
            .replacingOccurrences(of: "\n  after: 30m", with: "\n  after: 3s")
            .write(toFile: policy, atomically: true, encoding: .utf8)
        let socket = directory.appending("api.sock")
        try """
            kubeletRoot: \(directory.appending("kubelet"))
            manifests: \(directory.appending("manifests"))
            policy: \(policy)
            stateDir: \(directory.appending("state"))
            socket: \(socket)
            reconcileInterval: 1s
            flushInterval: 500ms
            logTarget: stderr
            """.write(toFile: directory.appending("config.yaml"), atomically: true, encoding: .utf8)
        let daemon = try BackgroundProcess(
            PackagePaths.binary, ["run", "--plan", "--config", directory.appending("config.yaml")], log: directory.appending("daemon.log")
        )
        defer { daemon.stop(signal: SIGKILL) }
        func verdict() -> VolumeVerdict? {
            guard let (status, body) = try? curl(socket, "/v1/plan"), status == 200,
                  let plan = try? Plan.decoder().decode(Plan.self, from: Data(body.utf8)) else { return nil }
            return plan.volumes.first { $0.path == volume }
        }
        #expect(await waitUntil(timeout: 30) { verdict()?.verdict == .reap }, "never reapable: \(verdict()?.reasons ?? []) \(daemon.log)")
        // Gone for a cycle (its row forgotten), then made again at the same
        // path: it is marked observed afresh, not left unobserved forever.
        try FileManager.default.removeItem(atPath: volume)
        #expect(await waitUntil(timeout: 15) { verdict() == nil })
        try makeVolume()
        #expect(await waitUntil(timeout: 30) { verdict()?.verdict == .reap }, "not watched afresh: \(verdict()?.reasons ?? [])")
        // Gone and made again at once, between two cycles: the same.
        try FileManager.default.removeItem(atPath: volume)
        try makeVolume()
        #expect(await waitUntil(timeout: 30) { verdict()?.verdict == .reap }, "not watched afresh: \(verdict()?.reasons ?? [])")
    }
}
