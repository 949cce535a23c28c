#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A private subtree on the machine's real cgroup file system, laid out like a
/// kubelet's pod tree, for the liveness tests: the agent's cgroup root points
/// at `root`, and processes moved into a pod's container cgroup are real.
public final class CgroupSandbox: Sendable {
    public enum Version: String, Sendable, CaseIterable, CustomStringConvertible {
        /// The unified hierarchy (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid hosts).
        case v2
        /// A v1 controller hierarchy (`/sys/fs/cgroup/pids`).
        case v1
        public var description: String { rawValue }
    }

    public enum Driver: String, Sendable, CaseIterable, CustomStringConvertible {
        case systemd, cgroupfs
        public var description: String { rawValue }
    }

    /// The agent's cgroup root, `<hierarchy>/vr-test-<random>/isolated/root`: a real cgroup
    /// this sandbox made, removed leaf-first by `remove()`. (A real v1 host has
    /// `<controller>/kubepods` under `/sys/fs/cgroup`; here the tree starts at
    /// the root, and the v1 files are what is tested.)
    public let root: String
    /// `<hierarchy>/vr-test-<random>`, what `remove()` removes.
    let top: String
    public let version: Version

    /// The hierarchy to use for `version`, or why there is none.
    public static func hierarchy(_ version: Version) -> Result<String, SandboxUnavailable> {
        guard getuid() == 0 else { return .failure(SandboxUnavailable("needs root to create cgroups")) }
        switch version {
        case .v2:
            for candidate in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] where mountType(candidate) == "cgroup2" {
                return .success(candidate)
            }
            return .failure(SandboxUnavailable("no cgroup2 hierarchy mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified"))
        case .v1:
            for controller in ["pids", "memory", "systemd"] {
                let candidate = "/sys/fs/cgroup/" + controller
                if mountType(candidate) == "cgroup" { return .success(candidate) }
            }
            return .failure(SandboxUnavailable("no cgroup v1 hierarchy (pids, memory, systemd) under /sys/fs/cgroup"))
        }
    }

    /// Makes the sandbox; throws `SandboxUnavailable` when the machine cannot.
    public init(_ version: Version) throws {
        let hierarchy = try Self.hierarchy(version).get()
        let cgroup = hierarchy + "/vr-test-" + UUID().uuidString.prefix(8).lowercased()
        // The pod tree sits deeper than the agent's search from the default
        // root (three levels), so other tests' agents on this machine, which
        // use /sys/fs/cgroup, never see this sandbox's live pods.
        for directory in [cgroup, cgroup + "/isolated", cgroup + "/isolated/root"] {
            guard mkdir(directory, 0o755) == 0 else {
                throw SandboxUnavailable("cannot create a cgroup at \(directory): \(String(cString: strerror(errno)))")
            }
        }
        self.version = version
        top = cgroup
        root = cgroup + "/isolated/root"
    }

    /// `uid` as systemd escapes it in unit names.
    public static func escaped(_ uid: String) -> String { uid.replacingOccurrences(of: "-", with: "_") }

    /// Creates the pod's cgroup and one container cgroup in it, as the kubelet
    /// lays them out for `driver` (BestEffort QoS unless `guaranteed`);
    /// returns the container cgroup (a real directory, through no symlink).
    @discardableResult
    public func makePod(_ uid: String, driver: Driver, guaranteed: Bool = false) throws -> String {
        let relative: String
        switch (driver, guaranteed) {
        case (.systemd, false):
            relative = "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(Self.escaped(uid)).slice/cri-containerd-0123abcd.scope"
        case (.systemd, true):
            relative = "kubepods.slice/kubepods-pod\(Self.escaped(uid)).slice/cri-containerd-0123abcd.scope"
        case (.cgroupfs, false):
            relative = "kubepods/besteffort/pod\(uid)/0123abcd"
        case (.cgroupfs, true):
            relative = "kubepods/pod\(uid)/0123abcd"
        }
        var path = root
        for component in relative.split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o755) != 0, errno != EEXIST {
                throw SandboxUnavailable("mkdir \(path): \(String(cString: strerror(errno)))")
            }
        }
        return path
    }

    /// Moves `pid` into `cgroup` (writes it to `cgroup.procs`).
    public func move(_ pid: pid_t, into cgroup: String) throws {
        try Data("\(pid)\n".utf8).write(to: URL(fileURLWithPath: cgroup + "/cgroup.procs"))
    }

    /// Removes every cgroup below and the sandbox itself, leaf-first (cgroups
    /// go with rmdir only, and only once empty).
    public func remove() {
        _ = try? ChildProcess.shell("find '\(top)' -depth -type d -exec rmdir {} \\; 2>/dev/null")
    }

    /// The type of the file system mounted exactly at `path` (`/proc/self/mounts`).
    private static func mountType(_ path: String) -> String? {
        guard let table = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return nil }
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 2, fields[1] == path { return String(fields[2]) }
        }
        return nil
    }
}

public struct SandboxUnavailable: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A child that sleeps until killed: a process to put in a pod's cgroup.
public final class Sleeper: @unchecked Sendable {
    public let process = Process()
    public var pid: pid_t { process.processIdentifier }

    public init() throws {
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["300"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// SIGKILL (test runners may block SIGTERM in their children), then reaped.
    public func kill() {
        guard process.isRunning else { return }
        _ = Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { kill() }
}
