#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import ReaperCore
import Synchronization
import SystemCalls
import SystemPackage

/// Asks the kernel whether a pod still runs: the kubelet puts every pod in a
/// cgroup named after its UID, and a cgroup with processes in it, or in any
/// container cgroup below it, is a live pod whatever the manifests say.
///
/// Layouts (cgroup v2 at the root, v1 under each controller, hybrid under
/// `unified`):
/// - systemd driver: `kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_with_underscores>.slice`,
///   `kubepods.slice/kubepods-pod<uid>.slice` (Guaranteed);
/// - cgroupfs driver: `kubepods/<qos>/pod<uid>`, `kubepods/pod<uid>`;
/// - a kubelet `--cgroup-root` adds a level, e.g. `kubelet.slice/kubelet-kubepods.slice`.
public final class PodCgroups: Sendable {
    public enum Liveness: Sendable, Hashable {
        /// A cgroup of the pod holds processes.
        case alive(cgroup: String)
        /// No cgroup of the pod, or only empty ones.
        case notAlive
        /// A cgroup file could not be read.
        case inconclusive(String)
        /// No kubelet cgroup tree under the root: nothing to say.
        case noKubeletTree
    }

    /// Where the cgroup file systems are mounted (`/sys/fs/cgroup`).
    public let root: String
    private let missingTreeReported = Atomic<Bool>(false)

    public init(root: String = "/sys/fs/cgroup") {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    // MARK: Questions

    /// One pod, read fresh: the reaper asks this right before deleting.
    public func liveness(ofPod uid: String, logger: Logger) -> Liveness {
        let trees: [String]
        do {
            trees = try kubeletTrees()
        } catch {
            return .inconclusive("\(error)")
        }
        guard !trees.isEmpty else {
            reportMissingTree(logger: logger)
            return .noKubeletTree
        }
        let wanted = Self.normalized(uid)
        var inconclusive: String?
        for tree in trees {
            let cgroups: [String: [String]]
            do {
                cgroups = try podCgroups(in: tree)
            } catch {
                inconclusive = inconclusive ?? "\(error)"
                continue
            }
            for cgroup in cgroups[wanted] ?? [] {
                switch Self.populated(cgroup) {
                case .alive: return .alive(cgroup: cgroup)
                case .inconclusive(let detail): inconclusive = inconclusive ?? detail
                case .notAlive, .noKubeletTree: continue
                }
            }
        }
        return inconclusive.map { .inconclusive($0) } ?? .notAlive
    }

    /// Many pods at once, for a plan: one walk of the kubelet trees.
    public func survey(pods uids: some Sequence<String>, logger: Logger) -> PodLiveness {
        let wanted = Dictionary(uids.map { (Self.normalized($0), $0) }, uniquingKeysWith: { first, _ in first })
        var result = PodLiveness()
        let trees: [String]
        do {
            trees = try kubeletTrees()
        } catch {
            logger.warning("pod cgroups unreadable: every pod is kept as inconclusive", metadata: ["cgroup_root": "\(root)", "error": "\(error)"])
            result.inconclusive = Set(wanted.values)
            return result
        }
        guard !trees.isEmpty else {
            reportMissingTree(logger: logger)
            return result
        }
        for tree in trees {
            let cgroups: [String: [String]]
            do {
                cgroups = try podCgroups(in: tree)
            } catch {
                logger.warning("a kubelet cgroup tree is unreadable: every pod is kept as inconclusive", metadata: ["cgroup": "\(tree)", "error": "\(error)"])
                result.inconclusive.formUnion(wanted.values)
                continue
            }
            for (uid, paths) in cgroups {
                guard let original = wanted[uid], !result.alive.contains(original) else { continue }
                for path in paths {
                    switch Self.populated(path) {
                    case .alive:
                        result.alive.insert(original)
                    case .inconclusive(let detail):
                        logger.warning("a pod cgroup is unreadable: its volumes are kept", metadata: ["cgroup": "\(path)", "error": "\(detail)"])
                        result.inconclusive.insert(original)
                    case .notAlive, .noKubeletTree:
                        break
                    }
                }
            }
        }
        result.inconclusive.subtract(result.alive)
        return result
    }

    private func reportMissingTree(logger: Logger) {
        guard missingTreeReported.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        logger.notice(
            "no kubelet cgroup tree found: the pod liveness cross-check is off, the other rules decide",
            metadata: ["cgroup_root": "\(root)"]
        )
    }

    // MARK: Finding the trees

    /// The kubelet's pod trees within three levels of the root, not following
    /// symlinks (v1's `cpu -> cpu,cpuacct`). A missing root has none; an
    /// unreadable root throws; unreadable directories below it are skipped.
    func kubeletTrees() throws(SystemCallError) -> [String] {
        var trees: [String] = []
        var level: [String] = [root]
        for depth in 1...3 {
            var next: [String] = []
            for directory in level {
                let children: [String]
                do throws(SystemCallError) {
                    children = try Self.subdirectories(of: directory)
                } catch where depth > 1 || error.isVanished {
                    continue
                }
                for name in children {
                    let path = directory + "/" + name
                    if Self.isKubeletTreeName(name) { trees.append(path) } else { next.append(path) }
                }
            }
            level = next
        }
        return trees
    }

    static func isKubeletTreeName(_ name: String) -> Bool {
        name == "kubepods" || name == "kubepods.slice" || name.hasSuffix("-kubepods.slice")
    }

    /// Pod cgroups directly in `tree` (Guaranteed) or in a QoS class below it,
    /// by normalized UID.
    func podCgroups(in tree: String) throws(SystemCallError) -> [String: [String]] {
        var found: [String: [String]] = [:]
        for name in try Self.subdirectories(of: tree) {
            let path = tree + "/" + name
            if let uid = Self.podUID(cgroupName: name) {
                found[uid, default: []].append(path)
                continue
            }
            let children: [String]
            do throws(SystemCallError) {
                children = try Self.subdirectories(of: path)
            } catch where error.isVanished {
                continue
            }
            for child in children {
                if let uid = Self.podUID(cgroupName: child) { found[uid, default: []].append(path + "/" + child) }
            }
        }
        return found
    }

    /// The pod UID a cgroup directory is named after, normalized; nil if it names no pod.
    static func podUID(cgroupName name: String) -> String? {
        if name.hasSuffix(".slice") {
            // systemd: `<prefix>-pod<uid_with_underscores>.slice`.
            guard let marker = name.range(of: "-pod", options: .backwards) else { return nil }
            let uid = name[marker.upperBound..<name.index(name.endIndex, offsetBy: -6)]
            return uid.isEmpty ? nil : normalized(String(uid))
        }
        // cgroupfs: `pod<uid>`.
        guard name.hasPrefix("pod"), name.utf8.count > 3 else { return nil }
        return normalized(String(name.dropFirst(3)))
    }

    /// systemd escapes `-` in unit names as `_`: compare in one form.
    static func normalized(_ uid: String) -> String {
        uid.replacingOccurrences(of: "_", with: "-").lowercased()
    }

    // MARK: Reading a cgroup

    /// Whether `cgroup` or any cgroup below it holds a process. cgroup v2 says
    /// so for the whole subtree in `cgroup.events` (`populated 1`); v1 has no
    /// such file, so each `cgroup.procs` is read, depth-first. A cgroup that
    /// vanished meanwhile is empty.
    static func populated(_ cgroup: String) -> Liveness {
        let directory: FileDescriptor
        do throws(SystemCallError) {
            directory = try Syscall.openDirectory(nil, cgroup)
        } catch {
            return error.isVanished ? .notAlive : .inconclusive("\(error)")
        }
        defer { Syscall.close(directory) }
        do {
            if let events = try readSmallFile("cgroup.events", in: directory, path: cgroup) {
                for line in events.split(separator: "\n") where line.hasPrefix("populated ") {
                    return line == "populated 0" ? .notAlive : .alive(cgroup: cgroup)
                }
                return .inconclusive("\(cgroup)/cgroup.events: no populated line")
            }
            return try populatedV1(directory, path: cgroup, depth: 0)
        } catch {
            return .inconclusive("\(error)")
        }
    }

    /// cgroup v1: any pid in `cgroup.procs` here or below.
    private static func populatedV1(_ directory: FileDescriptor, path: String, depth: Int) throws(SystemCallError) -> Liveness {
        guard let procs = try readSmallFile("cgroup.procs", in: directory, path: path) else {
            // Gone since it was listed: removed, so empty. Still there without
            // the file: not a cgroup, and nothing can be said.
            return (try? Syscall.statx(nil, path)) == nil ? .notAlive : .inconclusive("\(path): no cgroup.procs")
        }
        if procs.contains(where: \.isNumber) { return .alive(cgroup: path) }
        guard depth < 16 else { return .inconclusive("\(path): cgroups nested deeper than 16 levels") }
        for entry in try Syscall.readDirectory(directory, path: path) where entry.type == .directory {
            let childPath = path + "/" + entry.name.description
            let child: FileDescriptor
            do throws(SystemCallError) {
                child = try Syscall.openDirectory(directory, entry.name)
            } catch where error.isVanished {
                continue
            }
            defer { Syscall.close(child) }
            let liveness = try populatedV1(child, path: childPath, depth: depth + 1)
            if liveness != .notAlive { return liveness }
        }
        return .notAlive
    }

    /// The start of a small file (nil when it does not exist): enough to tell
    /// whether `cgroup.procs` lists a pid, and all of `cgroup.events`.
    private static func readSmallFile(_ name: String, in directory: FileDescriptor, path: String) throws(SystemCallError) -> String? {
        let fd: FileDescriptor
        do throws(SystemCallError) {
            fd = try Syscall.openAt(directory, name, flags: O_RDONLY | O_NOFOLLOW)
        } catch where error.isVanished {
            return nil
        }
        defer { Syscall.close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 1)
        defer { buffer.deallocate() }
        let count = try Syscall.read(fd, into: buffer, path: path + "/" + name)
        return String(decoding: UnsafeRawBufferPointer(rebasing: buffer[..<count]), as: UTF8.self)
    }

    /// Names of the real directories in `path` (symlinks are not followed).
    private static func subdirectories(of path: String) throws(SystemCallError) -> [String] {
        let fd = try Syscall.openDirectory(nil, path)
        defer { Syscall.close(fd) }
        var names: [String] = []
        for entry in try Syscall.readDirectory(fd, path: path) {
            switch entry.type {
            // A name that is not UTF-8 names no kubelet cgroup.
            case .directory: if let name = entry.name.string { names.append(name) }
            case .unknown:
                if let name = entry.name.string, (try? Syscall.statx(fd, entry.name))?.isDirectory == true { names.append(name) }
            default: continue
            }
        }
        return names
    }
}
