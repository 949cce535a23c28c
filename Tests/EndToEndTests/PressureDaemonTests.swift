import Foundation
import ReaperCore
import Testing
import TestSupport

/// Issue 11 on a real small filesystem: a tmpfs with `size=` as the kubelet
/// root (root only), filled to ~92%, and `volume-reaper run` as a child process.
@Suite("Disk pressure mode", .serialized)
struct PressureDaemonTests {
    static let canMount = getuid() == 0
    static let journald = FileManager.default.isExecutableFile(atPath: "/usr/bin/journalctl")
        && FileManager.default.fileExists(atPath: "/run/systemd/journal/socket")

    /// A mounted tmpfs kubelet root with pods' volumes, manifests and a kubelet config.
    struct PressureNode {
        let directory: TemporaryDirectory
        var kubeletRoot: String { directory.appending("kubelet") }
        var manifests: String { directory.appending("manifests") }
        var kubeletConfig: String { directory.appending("kubelet-config.yaml") }
        var finished: [String] = []
        var running: [String] = []

        static let volumeBytes = 1536 * 1024
        static let tmpfsBytes = 32 << 20

        /// `finishedJobs` Succeeded Job pods (finished and idle 10 minutes)
        /// and `runningPods` Running pods, whose volumes fill the rest to ~92%.
        init(finishedJobs: Int, runningPods: Int) throws {
            directory = try TemporaryDirectory()
            try FileManager.default.createDirectory(atPath: directory.appending("kubelet"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory.appending("manifests"), withIntermediateDirectories: true)
            let mount = try ChildProcess.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(Self.tmpfsBytes)", "tmpfs", directory.appending("kubelet")])
            guard mount.status == 0 else { throw ExampleNodeError(message: "mount tmpfs: \(mount.stderr)") }
            let tenMinutesAgo = Date().addingTimeInterval(-600)
            var items: [String] = []
            func volume(_ uid: String, bytes: Int) throws -> String {
                let path = "\(directory.appending("kubelet"))/pods/\(uid)/volumes/kubernetes.io~empty-dir/scratch"
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                try Data(repeating: 0x5a, count: bytes).write(to: URL(fileURLWithPath: path + "/data"))
                return path
            }
            for index in 0..<finishedJobs {
                let uid = UUID().uuidString.lowercased()
                finished.append(try volume(uid, bytes: Self.volumeBytes))
                items.append("""
                    {"metadata": {"uid": "\(uid)", "name": "job-\(index)", "namespace": "batch", "ownerReferences": [{"kind": "Job", "name": "job-\(index)"}]},
                     "status": {"phase": "Succeeded", "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 0, "finishedAt": "\(RFC3339.format(tenMinutesAgo))"}}}]}}
                    """)
            }
            var runningUIDs: [String] = []
            for index in 0..<runningPods {
                let uid = UUID().uuidString.lowercased()
                runningUIDs.append(uid)
                running.append(try volume(uid, bytes: 1 << 20))
                items.append("""
                    {"metadata": {"uid": "\(uid)", "name": "web-\(index)", "namespace": "apps"}, "status": {"phase": "Running"}}
                    """)
            }
            // Fill a running pod's volume until 8% is free.
            let usage = try Self.usage(directory.appending("kubelet"))
            let target = UInt64(Double(usage.totalBytes) * 0.08)
            if usage.availableBytes > target, let first = running.first {
                try Data(repeating: 0x33, count: Int(usage.availableBytes - target)).write(to: URL(fileURLWithPath: first + "/filler"))
            }
            try "{\"kind\": \"PodList\", \"apiVersion\": \"v1\", \"items\": [\(items.joined(separator: ",\n"))]}"
                .write(toFile: directory.appending("manifests/pods.json"), atomically: true, encoding: .utf8)
            // The kubelet evicts at 9% free: pressure begins at 14% (5 points of margin; not the 15% fallback).
            try "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nevictionHard:\n  nodefs.available: \"9%\"\n  nodefs.inodesFree: \"5%\"\n"
                .write(toFile: kubeletConfig, atomically: true, encoding: .utf8)
            // Nothing touched for ten minutes (the manifests: half a minute, so they are fresh and settled).
            _ = try ChildProcess.run("/usr/bin/find", [directory.appending("kubelet/pods"), "-exec", "touch", "-h", "-d", "@\(Int(tenMinutesAgo.timeIntervalSince1970))", "{}", "+"])
            _ = try ChildProcess.run("/usr/bin/touch", ["-d", "@\(Int(Date().timeIntervalSince1970) - 30)", directory.appending("manifests/pods.json")])
        }

        static func usage(_ path: String) throws -> (totalBytes: UInt64, availableBytes: UInt64) {
            var result = statvfs()
            guard statvfs(path, &result) == 0 else { throw ExampleNodeError(message: "statvfs \(path) failed") }
            return (UInt64(result.f_blocks) * UInt64(result.f_frsize), UInt64(result.f_bavail) * UInt64(result.f_frsize))
        }

        var freePercent: Double {
            guard let usage = try? Self.usage(kubeletRoot) else { return 0 }
            return Double(usage.availableBytes) * 100 / Double(usage.totalBytes)
        }

        func remove() {
            _ = try? ChildProcess.run("/usr/bin/umount", [kubeletRoot])
            directory.remove()
        }
    }

    /// Starts `volume-reaper run` on the node with a pressure policy.
    func start(_ node: PressureNode, logTarget: String) throws -> (daemon: BackgroundProcess, socket: String) {
        let policy = node.directory.appending("policy.yaml")
        try "orphans:\n  confirmAfter: 0s\npressure:\n  idleAfter: 5m\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let socket = node.directory.appending("run/api.sock")
        let config = node.directory.appending("config.yaml")
        try """
            kubeletRoot: \(node.kubeletRoot)
            kubeletConfig: \(node.kubeletConfig)
            manifests: \(node.manifests)
            policy: \(policy)
            stateDir: \(node.directory.appending("state"))
            socket: \(socket)
            reconcileInterval: 1s
            flushInterval: 500ms
            logTarget: \(logTarget)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try BackgroundProcess(PackagePaths.binary, ["run", "--config", config], log: node.directory.appending("daemon.log"))
        return (daemon, socket)
    }

    func health(_ socket: String) throws -> [String: Any]? {
        let answer = try curl(socket, "/healthz")
        return try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
    }

    @Test(
        "92% full: pressure reaps finished Jobs' volumes, biggest first, until above the threshold, and stops; running pods untouched; journald has reasons and free space",
        .enabled(if: canMount, "needs root to mount a tmpfs as the kubelet root"),
        .enabled(if: journald, "no journald: /run/systemd/journal/socket or journalctl missing")
    )
    func reapsUntilAboveThreshold() async throws {
        let node = try PressureNode(finishedJobs: 6, runningPods: 2)
        defer { node.remove() }
        #expect(node.freePercent < 9, "filled to ~92%")
        let (daemon, socket) = try start(node, logTarget: "journald")
        defer { daemon.stop() }
        let recovered = await waitUntil(timeout: 30) { node.freePercent >= 14 }
        #expect(recovered, "free space back above 14%: \(node.freePercent)%; log:\n\(daemon.log)")
        // A few more cycles: still in pressure (below 14% + 5% hysteresis) but nothing more is needed.
        var pressure: [String: Any] = [:]
        let settled = await waitUntil(timeout: 20) {
            pressure = try health(socket)?["pressure"] as? [String: Any] ?? [:]
            return pressure["active"] as? Bool == true
        }
        #expect(settled)
        let total = try PressureNode.usage(node.kubeletRoot).totalBytes
        #expect(pressure["thresholdBytes"] as? Int == Int((Double(total) * 0.14).rounded(.up)), "the kubelet's 9% plus 5 points: \(pressure)")
        try await Task.sleep(for: .seconds(2))
        let gone = node.finished.filter { !FileManager.default.fileExists(atPath: $0) }
        // 8% free, 14% wanted: 6% of 32 MiB is 1.92 MiB, two 1.5 MiB volumes.
        #expect(gone.count == 2, "reaped \(gone.count) of \(node.finished.count)")
        #expect(node.freePercent < 19)
        for path in node.running { #expect(FileManager.default.fileExists(atPath: path + "/data"), "running pod's volume \(path)") }
        let metrics = try curl(socket, "/metrics").body
        #expect(metrics.contains("volume_reaper_disk_pressure 1"), "\(metrics)")
        #expect(metrics.contains("volume_reaper_disk_pressure_nothing_to_reap 0"), "\(metrics)")

        let entries = await waitUntil(timeout: 10) { try journalEntries(pid: daemon.pid).filter { $0["REASON"]?.contains("disk-pressure") == true }.count >= 2 }
        #expect(entries, "journald entries with REASON disk-pressure")
        let reaps = try journalEntries(pid: daemon.pid).filter { $0["REASON"]?.contains("disk-pressure") == true }
        #expect(reaps.count == 2)
        for entry in reaps {
            #expect(entry["REASON"] == "pod-terminated,disk-pressure")
            let before = UInt64(entry["FREE_BYTES_BEFORE"] ?? "") ?? 0, after = UInt64(entry["FREE_BYTES_AFTER"] ?? "") ?? 0
            #expect(before > 0 && after > before, "\(entry)")
            #expect(gone.contains(entry["VOLUME_PATH"] ?? ""))
        }
    }

    @Test(
        "only running pods' data: in pressure, nothing reaped, status and metric say there is nothing to reap",
        .enabled(if: canMount, "needs root to mount a tmpfs as the kubelet root")
    )
    func nothingToReap() async throws {
        let node = try PressureNode(finishedJobs: 0, runningPods: 3)
        defer { node.remove() }
        let (daemon, socket) = try start(node, logTarget: "stderr")
        defer { daemon.stop() }
        let inPressure = await waitUntil(timeout: 30) {
            guard let pressure = try? health(socket)?["pressure"] as? [String: Any] else { return false }
            return pressure["nothingToReap"] as? Bool == true
        }
        #expect(inPressure, "log:\n\(daemon.log)")
        let metrics = try curl(socket, "/metrics").body
        #expect(metrics.contains("volume_reaper_disk_pressure 1"), "\(metrics)")
        #expect(metrics.contains("volume_reaper_disk_pressure_nothing_to_reap 1"), "\(metrics)")
        #expect(daemon.log.contains("disk pressure with nothing to reap"))
        for path in node.running { #expect(FileManager.default.fileExists(atPath: path + "/data")) }
        #expect(node.freePercent < 9)
        // The forecast over the socket: nothing now, nothing later (running pods have no reapableAt).
        let chart = try ChildProcess.run(PackagePaths.binary, ["forecast", "--within", "2h", "--socket", socket])
        #expect(chart.status == 0, "\(chart.stderr)")
        #expect(chart.stdout.hasPrefix("reclaimable now: 0 B (0 volumes)"), "\(chart.stdout)")
        #expect(chart.stdout.contains("+1h..2h"), "\(chart.stdout)")
        let refused = try ChildProcess.run(PackagePaths.binary, ["forecast", "--within", "soon", "--socket", socket])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("400") && refused.stderr.contains("soon"), "\(refused.stderr)")
    }

    /// `journalctl _PID=<pid> -o json`, each entry's fields as text.
    func journalEntries(pid: Int32) throws -> [[String: String]] {
        let result = try ChildProcess.run("/usr/bin/journalctl", ["_PID=\(pid)", "-o", "json", "--no-pager", "--all"])
        func text(_ value: Any) -> String? {
            if let string = value as? String { return string }
            if let bytes = value as? [Int] { return String(decoding: bytes.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self) }
            return nil
        }
        return result.stdout.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?.compactMapValues(text)
        }
    }
}
