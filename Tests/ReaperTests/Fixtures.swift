import Foundation
import Logging
import NodeDiscovery
import Reaper
import ReaperCore
import SystemCalls
import Testing
import TestSupport

/// A failed setup step, with the command and what it said.
struct SetupError: Error, CustomStringConvertible {
    var description: String
}

/// Runs a shell command for setup; throws with its stderr when it fails.
@discardableResult
func sh(_ command: String) throws -> String {
    let result = try ChildProcess.shell(command)
    guard result.status == 0 else {
        throw SetupError(description: "`\(command)` exited \(result.status): \(result.stderr)")
    }
    return result.stdout
}

/// Quotes a path for a shell command line.
func q(_ path: String) -> String { "'" + path.replacingOccurrences(of: "'", with: "'\\''") + "'" }

func exists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

/// Every entry under `path` (mounts included, symlinks not followed): name,
/// type, size, symlink target, mtime, and a hash of every regular file.
/// Equal fingerprints mean nothing in the tree changed, byte for byte.
func fingerprint(_ path: String) throws -> String {
    try sh("""
        cd \(q(path)) && find . -printf '%p|%y|%s|%l|%T@\\n' | LC_ALL=C sort \
        && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
        """)
}

/// Whether `/proc/self/mountinfo` lists a mount at exactly `path`.
func isMountPoint(_ path: String) throws -> Bool {
    try MountTable.read().mounts.contains { $0.mountPoint == path }
}

/// Waits up to `seconds` for `condition`.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// How many of this process's descriptors are open on `tree` or inside it.
/// Only those count: other tests run in parallel in this process and open
/// their own.
func descriptorsOpen(under tree: String) -> Int {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return fds.filter { fd in
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd)) ?? ""
        return target == tree || target.hasPrefix(tree + "/")
    }.count
}

/// Whether some other open file description holds a flock on `path`.
func isFlockHeld(_ path: String) -> Bool {
    guard let fd = try? Syscall.openDirectory(nil, path) else { return false }
    defer { Syscall.close(fd) }
    return (try? Syscall.tryLockExclusive(fd, path: path)) == false
}

/// A child process that runs until stopped (a writer, a lock or file holder).
final class Background {
    let process = Process()

    /// Starts `bash -c command`.
    init(_ command: String) throws {
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", command]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// SIGKILL: children of the test runner inherit a signal mask that blocks
    /// SIGTERM, so `terminate()` would leave them running.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }

    deinit { stop() }
}

let testLogger = Logger(label: "volume-reaper.tests")

/// `volumes.unmount` acts only in the host's mount namespace (an unmount in a
/// private one would leave the host's mount over what is then deleted): ours
/// must be `/proc/1/ns/mnt`, and that must be readable.
let inHostMountNamespace: Bool = {
    guard let mine = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/mnt"),
          let host = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/1/ns/mnt") else { return false }
    return mine == host
}()

/// A kubelet tree built by hand in a temp dir: pods, volumes, an outside
/// directory for symlink targets, and the manifests as an in-memory snapshot.
final class TestNode {
    let directory: TemporaryDirectory
    var root: String { directory.appending("kubelet") }
    var outside: String { directory.appending("outside") }
    private(set) var pods: [Pod] = []
    /// The defaults, but one snapshot confirms an orphan: these tests are
    /// about the reaper, and orphan confirmation across snapshots is the
    /// reconciler's (ReaperCoreTests) and the agent's (EndToEndTests).
    var policy: Policy = {
        var policy = Policy.defaults
        policy.orphans.confirmAfter = 0
        return policy
    }()
    var mountInfoPath = "/proc/self/mountinfo"
    /// Three hours ago: well past idle.after.
    let old = Date().addingTimeInterval(-3 * 3600)

    init(_ label: String) throws {
        directory = try TemporaryDirectory(label)
        try FileManager.default.createDirectory(atPath: root + "/pods", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.appending("cgroup/kubepods.slice"), withIntermediateDirectories: true)
    }

    func remove() { directory.remove() }

    static func uid(_ number: Int) -> String { String(format: "5e1f0000-0000-4000-8000-%012d", number) }

    func podDirectory(_ uid: String) -> String { root + "/pods/" + uid }

    /// A Succeeded Job pod; `finishedAt` nil leaves idleness to the mtimes.
    @discardableResult
    func terminatedPod(_ number: Int, finishedAt: Date? = Date().addingTimeInterval(-2 * 3600)) -> String {
        let uid = Self.uid(number)
        pods.append(Pod(
            uid: uid, name: "job-\(number)", namespace: "batch", phase: "Succeeded",
            owners: [OwnerReference(kind: "Job", name: "job")], lastContainerFinishedAt: finishedAt
        ))
        return uid
    }

    @discardableResult
    func runningPod(_ number: Int) -> String {
        let uid = Self.uid(number)
        pods.append(Pod(uid: uid, name: "web-\(number)", namespace: "shop", phase: "Running", owners: [OwnerReference(kind: "ReplicaSet", name: "web")]))
        try? FileManager.default.createDirectory(atPath: podDirectory(uid) + "/volumes", withIntermediateDirectories: true)
        return uid
    }

    /// `<root>/pods/<uid>/volumes/<plugin>/<name>`, created.
    @discardableResult
    func volume(_ uid: String, _ name: String, plugin: String = "kubernetes.io~empty-dir") throws -> String {
        let path = podDirectory(uid) + "/volumes/" + plugin + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Files, nested directories and a FIFO.
    func fill(_ path: String) throws {
        try sh("""
            mkdir -p \(q(path))/sub/deeper && head -c 65536 /dev/urandom > \(q(path))/data.bin \
            && echo 'log line' > \(q(path))/sub/app.log && echo nested > \(q(path))/sub/deeper/state \
            && mkfifo \(q(path))/sub/pipe
            """)
    }

    /// Sets every timestamp under `path` (default: the whole node) `seconds` back.
    func age(_ path: String? = nil, secondsAgo: Int = 3 * 3600) throws {
        let stamp = Int(Date().timeIntervalSince1970) - secondsAgo
        try sh("find \(q(path ?? directory.path)) -exec touch -h -d @\(stamp) {} +")
    }

    /// The manifests as just refreshed.
    func manifests(refreshedAt: Date = Date()) -> PodSnapshot {
        PodSnapshot(path: directory.appending("manifests"), files: [directory.appending("manifests/pods.json")], refreshedAt: refreshedAt, errors: [], pods: pods)
    }

    func plan(now: Date = Date()) throws -> Plan {
        let inventory = try NodeDiscoverer(kubeletRoot: root, mountInfoPath: mountInfoPath).discover(logger: testLogger)
        return Reconciler.plan(ReconcileInput(inventory: inventory, manifests: manifests(), access: [:], policy: policy, now: now))
    }

    /// An empty kubelet pod cgroup tree: nothing runs (without a tree every orphan is kept).
    var cgroupRoot: String { directory.appending("cgroup") }

    var reaper: PlanExecutor {
        var reaper = PlanExecutor(kubeletRoot: root, policy: policy, mountInfoPath: mountInfoPath)
        reaper.podCgroups = PodCgroups(root: cgroupRoot, procRoot: directory.appending("proc"))
        return reaper
    }

    func execute(_ plan: Plan, dryRun: Bool = false) -> ReapReport {
        // A change made by the test a moment before counts as use if it is
        // stamped after the last check began: let a file-clock tick pass.
        usleep(20_000)
        return reaper.execute(plan: plan, currentPodView: { manifests() }, access: { [:] }, dryRun: dryRun, logger: testLogger)
    }

    /// A `/proc/self/mountinfo` copy that hides every mount under this node,
    /// so only `statx` can find them.
    func mountInfoHidingNodeMounts() throws -> String {
        let path = directory.appending("mountinfo")
        let text = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        let kept = text.split(separator: "\n").filter { !$0.contains(directory.path) }
        try (kept.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

extension ReapReport {
    func outcome(_ path: String) -> ReapOutcome? { outcomes.first { $0.verdict.path == path } }
}

extension Plan {
    func verdict(_ path: String) -> VolumeVerdict? { volumes.first { $0.path == path } }
}
