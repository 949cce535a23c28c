import Foundation
import ReaperCore
import Testing
import TestSupport

/// Issue 11 on a real small filesystem as the kubelet root (root only): an
/// ext4 image on a loop device where the kernel allows it, and a tmpfs with
/// `size=`, each filled to ~92%, with `volume-reaper run` as a child process.
@Suite("Disk pressure mode", .serialized)
struct PressureDaemonTests {
    static let canMount = getuid() == 0
    static let journald = FileManager.default.isExecutableFile(atPath: "/usr/bin/journalctl")
        && FileManager.default.fileExists(atPath: "/run/systemd/journal/socket")

    /// The small filesystem under test.
    enum SmallFilesystem: String, CustomStringConvertible, CaseIterable, Sendable {
        case tmpfs
        /// An ext4 image mounted through a loop device.
        case ext4
        var description: String { self == .tmpfs ? "tmpfs" : "ext4 on a loop device" }

        /// Why this machine cannot mount it; nil when it can.
        static func unavailable(_ kind: SmallFilesystem) -> String? {
            guard PressureDaemonTests.canMount else { return "needs root to mount" }
            guard kind == .ext4 else { return nil }
            guard FileManager.default.fileExists(atPath: "/dev/loop-control") else { return "no /dev/loop-control: the kernel offers no loop devices" }
            guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/mkfs.ext4") || FileManager.default.isExecutableFile(atPath: "/sbin/mkfs.ext4") else {
                return "mkfs.ext4 missing (e2fsprogs)"
            }
            return nil
        }

        /// Mounts a fresh filesystem of `bytes` at `mountPoint`; an ext4 image lives in `directory`.
        func mount(at mountPoint: String, bytes: Int, directory: TemporaryDirectory) throws {
            let result: ProcessResult
            switch self {
            case .tmpfs:
                result = try ChildProcess.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", mountPoint])
            case .ext4:
                let image = directory.appending((mountPoint as NSString).lastPathComponent + ".ext4")
                guard FileManager.default.createFile(atPath: image, contents: nil),
                      truncate(image, off_t(bytes)) == 0 else { throw ExampleNodeError(message: "cannot make \(image)") }
                // No reserved blocks: the space a test fills is all there is.
                let made = try ChildProcess.run("/usr/bin/env", ["PATH=/usr/sbin:/sbin:/usr/bin:/bin", "mkfs.ext4", "-q", "-F", "-m", "0", image])
                guard made.status == 0 else { throw ExampleNodeError(message: "mkfs.ext4: \(made.stderr)") }
                result = try ChildProcess.run("/usr/bin/mount", ["-t", "ext4", "-o", "loop", image, mountPoint])
            }
            guard result.status == 0 else { throw ExampleNodeError(message: "mount \(self): \(result.stderr)") }
        }
    }

    /// A small filesystem mounted as the kubelet root with pods' volumes,
    /// manifests and a kubelet config.
    struct PressureNode {
        let directory: TemporaryDirectory
        var kubeletRoot: String { directory.appending("kubelet") }
        var manifests: String { directory.appending("manifests") }
        var kubeletConfig: String { directory.appending("kubelet-config.yaml") }
        var finished: [String] = []
        var running: [String] = []
        /// Mount points to unmount at the end, innermost first.
        var mounts: [String] = []
        var manifestItems: [String] = []
        let tenMinutesAgo = Date().addingTimeInterval(-600)

        static let volumeBytes = 1536 * 1024
        static let filesystemBytes = 32 << 20

        /// `finishedJobs` Succeeded Job pods (finished and idle 10 minutes)
        /// and `runningPods` Running pods, whose volumes fill the rest to ~92%
        /// (`fill` false: left as they are).
        init(finishedJobs: Int, runningPods: Int, filesystem: SmallFilesystem = .tmpfs, bytes: Int = filesystemBytes, fill: Bool = true) throws {
            directory = try TemporaryDirectory()
            try FileManager.default.createDirectory(atPath: directory.appending("kubelet"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory.appending("manifests"), withIntermediateDirectories: true)
            try filesystem.mount(at: directory.appending("kubelet"), bytes: bytes, directory: directory)
            mounts.append(directory.appending("kubelet"))
            for _ in 0..<finishedJobs { finished += try addJob(volumes: 1) }
            for _ in 0..<runningPods { running.append(try addRunningPod()) }
            if fill { try fillRunningPod(of: kubeletRoot, toFreePercent: 8) }
            try writeManifests()
            // The kubelet evicts at 9% free: pressure begins at 14% (5 points of margin; not the 15% fallback).
            try "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nevictionHard:\n  nodefs.available: \"9%\"\n  nodefs.inodesFree: \"5%\"\n"
                .write(toFile: kubeletConfig, atomically: true, encoding: .utf8)
        }

        /// `<root>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>` holding `bytes`.
        func volume(_ uid: String, name: String = "scratch", bytes: Int) throws -> String {
            let path = "\(kubeletRoot)/pods/\(uid)/volumes/kubernetes.io~empty-dir/\(name)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try Data(repeating: 0x5a, count: bytes).write(to: URL(fileURLWithPath: path + "/data"))
            return path
        }

        /// A Succeeded Job pod, finished ten minutes ago, with `volumes` volumes; `uid` given: its directory exists.
        mutating func addJob(volumes: Int, uid: String = UUID().uuidString.lowercased()) throws -> [String] {
            let index = manifestItems.count
            let paths = try (0..<volumes).map { try volume(uid, name: "scratch-\($0)", bytes: Self.volumeBytes) }
            manifestItems.append("""
                {"metadata": {"uid": "\(uid)", "name": "job-\(index)", "namespace": "batch", "ownerReferences": [{"kind": "Job", "name": "job-\(index)"}]},
                 "status": {"phase": "Succeeded", "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 0, "finishedAt": "\(RFC3339.format(tenMinutesAgo))"}}}]}}
                """)
            return paths
        }

        /// A Running pod with one 1 MiB volume.
        mutating func addRunningPod(uid: String = UUID().uuidString.lowercased()) throws -> String {
            let index = manifestItems.count
            manifestItems.append("""
                {"metadata": {"uid": "\(uid)", "name": "web-\(index)", "namespace": "apps"}, "status": {"phase": "Running"}}
                """)
            return try volume(uid, bytes: 1 << 20)
        }

        /// Grows the running pod's volume on `filesystem` until `percent` of it is free.
        func fillRunningPod(of filesystem: String, toFreePercent percent: Double) throws {
            let usage = try Self.usage(filesystem)
            let target = UInt64(Double(usage.totalBytes) * percent / 100)
            let device = try FileManager.default.attributesOfItem(atPath: filesystem)[.systemNumber] as? Int
            guard usage.availableBytes > target,
                  let pod = running.first(where: { (try? FileManager.default.attributesOfItem(atPath: $0)[.systemNumber] as? Int) == device }) else { return }
            try Data(repeating: 0x33, count: Int(usage.availableBytes - target)).write(to: URL(fileURLWithPath: pod + "/filler"))
            sync()
        }

        /// The manifests, and every volume untouched for ten minutes (the
        /// manifests: half a minute, so they are fresh and settled).
        func writeManifests() throws {
            try "{\"kind\": \"PodList\", \"apiVersion\": \"v1\", \"items\": [\(manifestItems.joined(separator: ",\n"))]}"
                .write(toFile: directory.appending("manifests/pods.json"), atomically: true, encoding: .utf8)
            _ = try ChildProcess.run("/usr/bin/find", [directory.appending("kubelet/pods"), "-exec", "touch", "-h", "-d", "@\(Int(tenMinutesAgo.timeIntervalSince1970))", "{}", "+"])
            _ = try ChildProcess.run("/usr/bin/touch", ["-d", "@\(Int(Date().timeIntervalSince1970) - 30)", directory.appending("manifests/pods.json")])
        }

        static func usage(_ path: String) throws -> (totalBytes: UInt64, availableBytes: UInt64) {
            var result = statvfs()
            guard statvfs(path, &result) == 0 else { throw ExampleNodeError(message: "statvfs \(path) failed") }
            return (UInt64(result.f_blocks) * UInt64(result.f_frsize), UInt64(result.f_bavail) * UInt64(result.f_frsize))
        }

        func freePercent(_ path: String) -> Double {
            guard let usage = try? Self.usage(path) else { return 0 }
            return Double(usage.availableBytes) * 100 / Double(usage.totalBytes)
        }

        var freePercent: Double { freePercent(kubeletRoot) }

        func remove() {
            for mount in mounts.reversed() { _ = try? ChildProcess.run("/usr/bin/umount", [mount]) }
            directory.remove()
        }
    }

    /// Starts `volume-reaper run` on the node with a pressure policy.
    func start(
        _ node: PressureNode, logTarget: String, reconcileInterval: String = "1s", checkInterval: String = "10s"
    ) throws -> (daemon: BackgroundProcess, socket: String) {
        let policy = node.directory.appending("policy.yaml")
        try "orphans:\n  confirmAfter: 0s\npressure:\n  idleAfter: 5m\n  checkInterval: \(checkInterval)\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let socket = node.directory.appending("run/api.sock")
        let config = node.directory.appending("config.yaml")
        try FileManager.default.createDirectory(atPath: node.directory.appending("cgroup/kubepods.slice"), withIntermediateDirectories: true)
        try """
            kubeletRoot: \(node.kubeletRoot)
            cgroupRoot: \(node.directory.appending("cgroup"))
            kubeletConfig: \(node.kubeletConfig)
            manifests: \(node.manifests)
            policy: \(policy)
            stateDir: \(node.directory.appending("state"))
            socket: \(socket)
            reconcileInterval: \(reconcileInterval)
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
        "tmpfs 92% full: pressure reaps finished Jobs' volumes until above the threshold, and stops; running pods untouched; journald has reasons and free space",
        .enabled(if: canMount, "needs root to mount a tmpfs as the kubelet root"),
        .enabled(if: journald, "no journald: /run/systemd/journal/socket or journalctl missing")
    )
    func reapsUntilAboveThresholdOnTmpfs() async throws {
        try await reapsUntilAboveThreshold(on: .tmpfs)
    }

    @Test(
        "ext4 on a loop device 92% full: the same",
        .enabled(if: SmallFilesystem.unavailable(.ext4) == nil, "needs root, /dev/loop-control and mkfs.ext4 to mount an ext4 image as the kubelet root"),
        .enabled(if: journald, "no journald: /run/systemd/journal/socket or journalctl missing")
    )
    func reapsUntilAboveThresholdOnExt4() async throws {
        try await reapsUntilAboveThreshold(on: .ext4)
    }

    func reapsUntilAboveThreshold(on filesystem: SmallFilesystem) async throws {
        let node = try PressureNode(finishedJobs: 6, runningPods: 2, filesystem: filesystem)
        defer { node.remove() }
        #expect(node.freePercent < 9, "filled to ~92%")
        let (daemon, socket) = try start(node, logTarget: "journald")
        defer { daemon.stop() }
        let recovered = await waitUntil(timeout: 30) { node.freePercent >= 14 }
        #expect(recovered, "free space back above 14%: \(node.freePercent)%; log:\n\(daemon.log)")
        // A cycle that measured the recovered space: nothing more is needed.
        // Still in pressure below 14% + 5% hysteresis (tmpfs: 17.4%); out of
        // it above (ext4, whose directories and extents free more: 19.9%).
        var pressure: [String: Any] = [:]
        let settled = await waitUntil(timeout: 20) {
            pressure = try health(socket)?["pressure"] as? [String: Any] ?? [:]
            let free = (pressure["filesystem"] as? [String: Any])?["availableBytes"] as? Int ?? 0
            return free >= pressure["thresholdBytes"] as? Int ?? .max
        }
        #expect(settled, "\(pressure)")
        let stillInPressure = node.freePercent < 19
        #expect(pressure["active"] as? Bool == stillInPressure, "\(node.freePercent)% free: \(pressure)")
        let total = try PressureNode.usage(node.kubeletRoot).totalBytes
        #expect(pressure["thresholdBytes"] as? Int == Int((Double(total) * 0.14).rounded(.up)), "the kubelet's 9% plus 5 points: \(pressure)")
        try await Task.sleep(for: .seconds(2))
        let gone = node.finished.filter { !FileManager.default.fileExists(atPath: $0) }
        // 8% free, 14% wanted: 6% of 32 MiB (ext4: of some 29 MiB) is under 2 MiB, two 1.5 MiB volumes.
        #expect(gone.count == 2, "reaped \(gone.count) of \(node.finished.count)")
        // And no further: one volume fewer would have left it below 14%.
        let volumePercent = Double(PressureNode.volumeBytes) * 100 / Double(total)
        #expect(node.freePercent - volumePercent < 14, "\(node.freePercent)% free after \(gone.count) reaps")
        for path in node.running { #expect(FileManager.default.fileExists(atPath: path + "/data"), "running pod's volume \(path)") }
        let metrics = try curl(socket, "/metrics").body
        #expect(metrics.contains("volume_reaper_disk_pressure \(stillInPressure ? 1 : 0)"), "\(metrics)")
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
            #expect(entry["FILESYSTEM"] == node.kubeletRoot, "\(entry)")
        }
        let began = try journalEntries(pid: daemon.pid).filter { $0["MESSAGE_ID"] == "c63f9cac57f04e6aa3dc1e2d9817b3a9" }
        #expect(began.count == 1, "one 'entering pressure mode' entry: \(began)")
        #expect(began.first?["FILESYSTEM"] == node.kubeletRoot)
        #expect(began.first?["THRESHOLD_SOURCE"] == "kubelet config + margin")
        let ended = try journalEntries(pid: daemon.pid).filter { $0["MESSAGE_ID"] == "8351cbfd5a4e46078e327fe3a92f8111" }
        #expect(ended.count == (stillInPressure ? 0 : 1), "'disk pressure over' entries at \(node.freePercent)% free: \(ended)")
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

    @Test(
        "an emptyDir filesystem elsewhere (pod directories on their own small disk) in pressure: only its finished Job volumes go, as many as needed; the roomy kubelet root's stay",
        .enabled(if: canMount, "needs root to mount tmpfs and bind mounts"),
        .enabled(if: journald, "no journald: /run/systemd/journal/socket or journalctl missing")
    )
    func pressureElsewhere() async throws {
        // The kubelet root: 64 MiB, mostly free, with a finished Job idle 10 minutes.
        var node = try PressureNode(finishedJobs: 1, runningPods: 0, bytes: 64 << 20, fill: false)
        defer { node.remove() }
        let onRoot = node.finished
        // A 16 MiB disk holding two pod directories, bind-mounted into pods/:
        // a finished Job with three volumes and a running pod that fills it to 8% free.
        let disk = node.directory.appending("pods-disk")
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        try SmallFilesystem.tmpfs.mount(at: disk, bytes: 16 << 20, directory: node.directory)
        node.mounts.insert(disk, at: 0)
        let jobUID = UUID().uuidString.lowercased(), webUID = UUID().uuidString.lowercased()
        for uid in [jobUID, webUID] {
            let target = "\(node.kubeletRoot)/pods/\(uid)"
            try FileManager.default.createDirectory(atPath: disk + "/" + uid, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            let bound = try ChildProcess.run("/usr/bin/mount", ["--bind", disk + "/" + uid, target])
            guard bound.status == 0 else { throw ExampleNodeError(message: "bind mount: \(bound.stderr)") }
            node.mounts.append(target)
        }
        let onDisk = try node.addJob(volumes: 3, uid: jobUID)
        node.running.append(try node.addRunningPod(uid: webUID))
        try node.fillRunningPod(of: disk, toFreePercent: 8)
        try node.writeManifests()
        #expect(node.freePercent(disk) < 9 && node.freePercent > 80)

        let (daemon, socket) = try start(node, logTarget: "journald")
        defer { daemon.stop() }
        let recovered = await waitUntil(timeout: 30) { node.freePercent(disk) >= 14 }
        #expect(recovered, "the pods disk back above 14%: \(node.freePercent(disk))%; log:\n\(daemon.log)")
        try await Task.sleep(for: .seconds(3))
        // 8% free, 14% wanted: 6% of 16 MiB is 0.96 MiB, one 1.5 MiB volume.
        let gone = onDisk.filter { !FileManager.default.fileExists(atPath: $0) }
        #expect(gone.count == 1, "reaped \(gone.count) of \(onDisk.count) on the pods disk")
        for path in onRoot { #expect(FileManager.default.fileExists(atPath: path + "/data"), "the kubelet root is roomy: \(path) stays") }
        for path in node.running { #expect(FileManager.default.fileExists(atPath: path + "/data"), "running pod's volume \(path)") }

        let pressure = try health(socket)?["pressure"] as? [String: Any] ?? [:]
        let elsewhere = pressure["elsewhere"] as? [[String: Any]] ?? []
        #expect(elsewhere.count == 1, "\(pressure)")
        let filesystem = elsewhere.first?["filesystem"] as? [String: Any] ?? [:]
        #expect(filesystem["path"] as? String == "\(node.kubeletRoot)/pods/\(jobUID)" || filesystem["path"] as? String == "\(node.kubeletRoot)/pods/\(webUID)", "named by its mount point: \(filesystem)")
        #expect(elsewhere.first?["active"] as? Bool == true, "below 14% + 5% hysteresis: still in pressure")
        let metrics = try curl(socket, "/metrics").body
        #expect(metrics.contains("volume_reaper_other_filesystem_disk_pressure{filesystem=\""), "\(metrics)")
        let plan = try ChildProcess.run(PackagePaths.binary, ["status", "--socket", socket])
        #expect(plan.status == 0)

        let reaps = try journalEntries(pid: daemon.pid).filter { $0["REASON"]?.contains("disk-pressure") == true }
        #expect(reaps.count == 1)
        #expect(reaps.first?["VOLUME_PATH"] == gone.first)
        #expect(reaps.first?["FILESYSTEM"] == filesystem["path"] as? String)
        let began = try journalEntries(pid: daemon.pid).filter { $0["MESSAGE_ID"] == "c63f9cac57f04e6aa3dc1e2d9817b3a9" }
        #expect(began.map { $0["FILESYSTEM"] } == [filesystem["path"] as? String], "pressure began on the pods disk only")
    }

    @Test(
        "a crossing wakes the daemon: with reconcileInterval 10m, filling the disk after start is answered within a few checkIntervals",
        .enabled(if: canMount, "needs root to mount a tmpfs as the kubelet root")
    )
    func crossingWakesTheDaemon() async throws {
        let node = try PressureNode(finishedJobs: 6, runningPods: 2, fill: false)
        defer { node.remove() }
        let (daemon, socket) = try start(node, logTarget: "stderr", reconcileInterval: "10m", checkInterval: "1s")
        defer { daemon.stop() }
        let calm = await waitUntil(timeout: 30) {
            (try? health(socket)?["pressure"] as? [String: Any])?["active"] as? Bool == false
        }
        #expect(calm, "the first cycle, with room to spare: \(daemon.log)")
        try node.fillRunningPod(of: node.kubeletRoot, toFreePercent: 8)
        let filled = Date()
        let recovered = await waitUntil(timeout: 20) { node.freePercent >= 14 }
        #expect(recovered, "recovered \(Date().timeIntervalSince(filled)) s after filling, log:\n\(daemon.log)")
        // The cycle logs its trigger when it ends, after its reaps freed the space.
        let byTheCheck = await waitUntil(timeout: 10) { daemon.log.contains("trigger=disk-pressure") }
        #expect(byTheCheck, "the cycle that reaped was started by the check: \(daemon.log)")
        for path in node.running { #expect(FileManager.default.fileExists(atPath: path + "/data")) }
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
