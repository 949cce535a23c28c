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
/// - a kubelet `--cgroup-root` adds a level, e.g. `kubelet.slice/kubelet-kubepods.slice`;
/// - a kubelet in a container has its tree below the container's cgroup (`docker/<id>/kubepods.slice`).
/// Where the trees are is found by `KubeletCgroupTrees`.
public final class PodCgroups: Sendable {
    /// What a pod's cgroups say (the judging lives in ReaperCore).
    public typealias Liveness = CgroupLiveness

    /// The last search for the kubelet's trees: what the metric and
    /// `/healthz` report.
    public struct TreeStatus: Sendable, Hashable {
        public var trees: [String]
        /// Why none was found (nil: found, or unreadable: see `unreadable`).
        public var problem: String?
        /// The cgroup root could not be read: every pod is inconclusive.
        public var unreadable: String?
        public var found: Bool { !trees.isEmpty }
    }

    /// Where the cgroup file systems are mounted (`/sys/fs/cgroup`).
    public let root: String
    /// Where /proc is mounted: the kubelet process is looked up there.
    public let procRoot: String
    /// The kubelet config's cgroup settings, when it could be read.
    public let kubelet: KubeletCgroupSettings
    private let lastStatus = Mutex<TreeStatus?>(nil)
    /// The last search, and when: the last check of every volume asks, and
    /// trees stay for the kubelet's life. Reused for 10 s either way, which
    /// errs safe: a tree gone since then makes its pods inconclusive, a tree
    /// that appeared since then only keeps orphans a little longer.
    private let cached = Mutex<(result: KubeletCgroupTrees.Result, at: ContinuousClock.Instant)?>(nil)
    private static let cacheFor: Duration = .seconds(10)

    public init(root: String = "/sys/fs/cgroup", procRoot: String = "/proc", kubelet: KubeletCgroupSettings = KubeletCgroupSettings()) {
        self.root = Self.trimmed(root)
        self.procRoot = Self.trimmed(procRoot)
        self.kubelet = kubelet
    }

    private static func trimmed(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    /// The last search's outcome; nil before the first question.
    public var treeStatus: TreeStatus? { lastStatus.withLock { $0 } }

    // MARK: Questions

    /// One pod, read fresh: the reaper asks this right before deleting.
    public func liveness(ofPod uid: String, logger: Logger) -> Liveness {
        let trees: [String]
        switch currentTrees(logger: logger) {
        case .failure(let error): return .inconclusive("\(error)")
        case .success(let found) where found.trees.isEmpty: return .noKubeletTree(found.problem ?? "no kubelet pod cgroup tree under \(root)")
        case .success(let found): trees = found.trees
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

    /// Many pods at once, for a plan: one walk of the kubelet trees. With no
    /// tree found on a node with pods, `treeMissing` says why.
    public func survey(pods uids: some Sequence<String>, logger: Logger) -> PodLiveness {
        let wanted = Dictionary(uids.map { (Self.normalized($0), $0) }, uniquingKeysWith: { first, _ in first })
        var result = PodLiveness()
        let trees: [String]
        switch currentTrees(logger: logger) {
        case .failure(let error):
            logger.warning("pod cgroups unreadable: every pod is kept as inconclusive", metadata: ["cgroup_root": "\(root)", "error": "\(error)"])
            result.inconclusive = Set(wanted.values)
            return result
        case .success(let found) where found.trees.isEmpty:
            if !wanted.isEmpty { result.treeMissing = found.problem ?? "no kubelet pod cgroup tree under \(root)" }
            return result
        case .success(let found):
            trees = found.trees
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

    // MARK: Finding the trees

    /// The kubelet's pod trees (see `KubeletCgroupTrees`); logs when they go
    /// missing or are found again.
    /// The trees as of now: a cached search whose tree has gone since (a
    /// kubelet restarted under another slice, a sandbox removed) is searched
    /// again at once, instead of making every pod inconclusive until the
    /// cache expires.
    func currentTrees(logger: Logger) -> Result<KubeletCgroupTrees.Result, SystemCallError> {
        let first = findTrees(logger: logger)
        guard case .success(let found) = first, found.trees.contains(where: { (try? Syscall.statx(nil, $0)) == nil }) else { return first }
        cached.withLock { $0 = nil }
        return findTrees(logger: logger)
    }

    func findTrees(logger: Logger) -> Result<KubeletCgroupTrees.Result, SystemCallError> {
        if let cached = cached.withLock({ $0 }), ContinuousClock.now - cached.at < Self.cacheFor {
            return .success(cached.result)
        }
        let result: Result<KubeletCgroupTrees.Result, SystemCallError>
        do {
            result = .success(try KubeletCgroupTrees(root: root, procRoot: procRoot, settings: kubelet).find())
        } catch {
            result = .failure(error)
        }
        let status: TreeStatus
        switch result {
        case .success(let found):
            status = TreeStatus(trees: found.trees, problem: found.problem)
            cached.withLock { $0 = (found, ContinuousClock.now) }
        case .failure(let error):
            status = TreeStatus(trees: [], problem: nil, unreadable: "\(error)")
        }
        let previous = lastStatus.withLock { last in
            defer { last = status }
            return last
        }
        if status.problem != nil, previous?.problem == nil {
            logger.warning(
                "no kubelet pod cgroup tree found: orphans are kept (liveness-unknown) until one is; terminated pods the view lists still go",
                metadata: ["cgroup_root": "\(root)", "problem": "\(status.problem ?? "")"]
            )
        } else if status.found, previous?.found != true {
            logger.info("kubelet pod cgroup trees found", metadata: ["cgroup_root": "\(root)", "trees": "\(status.trees.joined(separator: ","))"])
        }
        return result
    }

    /// The trees, for tests and `check`.
    func kubeletTrees() throws(SystemCallError) -> [String] {
        try KubeletCgroupTrees(root: root, procRoot: procRoot, settings: kubelet).find().trees
    }

    static func isKubeletTreeName(_ name: String) -> Bool {
        name == "kubepods" || name == "kubepods.slice" || name.hasSuffix("-kubepods.slice")
    }

    /// Pod cgroups directly in `tree` (Guaranteed) or in a QoS class below it,
    /// by normalized UID.
    func podCgroups(in tree: String) throws(SystemCallError) -> [String: [String]] {
        var found: [String: [String]] = [:]
        for name in try KubeletCgroupTrees.subdirectories(of: tree) {
            let path = tree + "/" + name
            if let uid = Self.podUID(cgroupName: name) {
                found[uid, default: []].append(path)
                continue
            }
            let children: [String]
            do throws(SystemCallError) {
                children = try KubeletCgroupTrees.subdirectories(of: path)
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
    private static func populatedV1(_ directory: FileDescriptor, path: String, depth: Int) throws -> Liveness {
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
            switch Result(catching: { () throws(SystemCallError) in try Syscall.openDirectory(directory, entry.name) }) {
            case .success(let opened): child = opened
            case .failure(let error) where error.isVanished: continue
            case .failure(let error): throw error
            }
            defer { Syscall.close(child) }
            let liveness = try populatedV1(child, path: childPath, depth: depth + 1)
            if liveness != .notAlive { return liveness }
        }
        return .notAlive
    }

    /// The start of a small file (nil when it does not exist): enough to tell
    /// whether `cgroup.procs` lists a pid, and all of `cgroup.events`. Opened
    /// non-blocking and read only when a regular file: a FIFO planted in a
    /// cgroup would otherwise block the plan for good.
    private static func readSmallFile(_ name: String, in directory: FileDescriptor, path: String) throws(CgroupFileError) -> String? {
        do {
            let bytes = try RegularFileReader.readStart(name, relativeTo: directory, maxBytes: 512)
            return String(decoding: bytes, as: UTF8.self)
        } catch {
            if case .system(let failure) = error, failure.isVanished { return nil }
            throw CgroupFileError(description: "\(path)/\(name): \(error)")
        }
    }
}

/// A cgroup file that could not be read as one: the pod is inconclusive.
struct CgroupFileError: Error, CustomStringConvertible {
    var description: String
}
