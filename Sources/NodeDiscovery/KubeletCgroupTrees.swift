import ReaperCore
import SystemCalls
import SystemPackage

/// What the kubelet's config file says about its cgroups: `cgroupDriver`
/// (`systemd` or `cgroupfs`) and `cgroupRoot` (default `/`). nil: not set,
/// or the file could not be read.
public struct KubeletCgroupSettings: Sendable, Hashable {
    public var driver: String?
    public var cgroupRoot: String?

    public init(driver: String? = nil, cgroupRoot: String? = nil) {
        self.driver = driver
        self.cgroupRoot = cgroupRoot
    }
}

/// The kubelet's pod cgroup trees under a cgroup root, found from what the
/// node says rather than guessed by depth (issue 18, item 6):
/// 1. the kubelet config's `cgroupDriver` and `cgroupRoot` name the tree
///    (`kubepods.slice`, `kubelet.slice/kubelet-kubepods.slice`, `kubepods`);
/// 2. `/proc/<pid>/cgroup` of every process named `kubelet` says where it
///    runs: its tree sits beside it, under one of its ancestors (a kubelet in
///    a container has its own root, e.g. `docker/<id>/`), or is on its path;
/// 3. as a fallback, a search of the whole root (no depth limit, bounded in
///    directories) for the systemd and cgroupfs tree names.
/// Every tree found by any of these counts: more trees can only keep more pods.
struct KubeletCgroupTrees: Sendable {
    /// What one search found, and, when nothing, a one-line why.
    struct Result: Sendable, Hashable {
        var trees: [String]
        var problem: String?
    }

    /// The fallback search stops after this many directories (a v1 host has
    /// a dozen hierarchies of a few hundred units each; pod trees are not entered).
    static let searchBudget = 50_000
    /// Nor does it go deeper than this below the root.
    static let searchDepth = 16

    let root: String
    let procRoot: String
    let settings: KubeletCgroupSettings

    /// Every tree found. An unreadable root throws; a missing one has none.
    func find() throws(SystemCallError) -> Result {
        let hierarchies: [String]
        do {
            hierarchies = [root] + (try Self.subdirectories(of: root)).map { root + "/" + $0 }
        } catch where error.isVanished {
            return Result(trees: [], problem: "no kubelet pod cgroup tree: cgroupRoot \(root) does not exist")
        }
        let kubelets = kubeletCgroupPaths()
        var trees: [String] = []
        var seen: Set<String> = []
        func add(_ tree: String) {
            if seen.insert(tree).inserted { trees.append(tree) }
        }
        for candidate in candidates(kubelets: kubelets.paths) {
            for hierarchy in hierarchies {
                let path = hierarchy + "/" + candidate
                if (try? Syscall.statx(nil, path))?.isDirectory == true { add(path) }
            }
        }
        let search = try searched()
        search.trees.forEach(add)
        guard trees.isEmpty else { return Result(trees: trees, problem: nil) }
        let expected = expectedTreePaths().joined(separator: ", ")
        var why = "no kubelet pod cgroup tree (\(expected)) under cgroupRoot \(root)"
        why += search.complete ? " (\(search.visited) directories searched)" : " (the search stopped at \(Self.searchBudget) directories or \(Self.searchDepth) levels)"
        why += "; " + kubelets.summary
        why += "; kubelet config: cgroupDriver \(settings.driver ?? "unknown"), cgroupRoot \(settings.cgroupRoot ?? "unknown")"
        return Result(trees: [], problem: UserText.excerpt(why, limit: 600))
    }

    // MARK: From the kubelet config and process

    /// The tree's path below a hierarchy as the config names it: the systemd
    /// driver turns cgroup names into nested slices (`/kubelet.slice` +
    /// `kubepods` -> `kubelet.slice/kubelet-kubepods.slice`), cgroupfs joins them.
    func expectedTreePaths() -> [String] {
        let rootNames = (settings.cgroupRoot ?? "/").split(separator: "/").map(String.init).filter { $0 != "." && $0 != ".." }
        var paths: [String] = []
        switch settings.driver {
        case "systemd": paths.append(Self.systemdPath(rootNames + ["kubepods"]))
        case "cgroupfs": paths.append((rootNames + ["kubepods"]).joined(separator: "/"))
        default: paths += [Self.systemdPath(rootNames + ["kubepods"]), (rootNames + ["kubepods"]).joined(separator: "/")]
        }
        // The defaults too: a config that cannot be read must not hide them.
        for path in ["kubepods.slice", "kubepods"] where !paths.contains(path) { paths.append(path) }
        return paths
    }

    static func systemdPath(_ names: [String]) -> String {
        var parent = ""
        var slices: [String] = []
        for name in names {
            var unit = name.hasSuffix(".slice") ? String(name.dropLast(6)) : name
            if !parent.isEmpty, unit.hasPrefix(parent + "-") { unit = String(unit.dropFirst(parent.count + 1)) }
            unit = parent.isEmpty ? unit : parent + "-" + unit
            slices.append(unit + ".slice")
            parent = unit
        }
        return slices.joined(separator: "/")
    }

    /// Relative paths to try under each hierarchy: a tree named on a
    /// kubelet's own path, and the expected tree under each of its ancestors
    /// (deepest first) and under the hierarchy itself.
    func candidates(kubelets: [String]) -> [String] {
        let expected = expectedTreePaths()
        var result: [String] = []
        for path in kubelets + ["/"] {
            let components = path.split(separator: "/").map(String.init).filter { $0 != "." && $0 != ".." }
            if let index = components.firstIndex(where: PodCgroups.isKubeletTreeName) {
                result.append(components[...index].joined(separator: "/"))
            }
            for depth in stride(from: components.count, through: 0, by: -1) {
                let base = components[..<depth].joined(separator: "/")
                result += expected.map { base.isEmpty ? $0 : base + "/" + $0 }
            }
        }
        var seen: Set<String> = []
        return result.filter { seen.insert($0).inserted }
    }

    /// The cgroup paths of the processes named `kubelet` (every hierarchy's
    /// line of `/proc/<pid>/cgroup`), and a summary for messages. Files are
    /// read non-blocking and only when regular: /proc is not ours.
    func kubeletCgroupPaths() -> (paths: [String], summary: String) {
        let proc: FileDescriptor
        do {
            proc = try Syscall.openDirectory(nil, procRoot)
        } catch {
            return ([], "\(procRoot) unreadable (\(error.errno)): no kubelet process found")
        }
        defer { Syscall.close(proc) }
        guard let entries = try? Syscall.readDirectory(proc, path: procRoot) else {
            return ([], "\(procRoot) unreadable: no kubelet process found")
        }
        var paths: [String] = []
        var pids: [String] = []
        for entry in entries {
            guard let pid = entry.name.string, !pid.isEmpty, pid.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let comm = try? RegularFileReader.readStart(pid + "/comm", relativeTo: proc, maxBytes: 64),
                  ["kubelet\n", "kubelet"].contains(String(decoding: comm, as: UTF8.self)),
                  let cgroup = try? RegularFileReader.readStart(pid + "/cgroup", relativeTo: proc, maxBytes: 64 * 1024) else { continue }
            pids.append(pid)
            // `hierarchy-id:controllers:path`, one line per hierarchy.
            for line in String(decoding: cgroup, as: UTF8.self).split(separator: "\n") {
                let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                if fields.count == 3, fields[2].hasPrefix("/"), !paths.contains(String(fields[2])) { paths.append(String(fields[2])) }
            }
        }
        if pids.isEmpty { return ([], "no process named kubelet under \(procRoot)") }
        return (paths, "kubelet pid \(pids.joined(separator: ",")) in \(paths.joined(separator: ","))")
    }

    // MARK: The fallback search

    /// Breadth-first below the root, not following symlinks (v1's `cpu ->
    /// cpu,cpuacct`), not entering a tree found; unreadable directories below
    /// the root are skipped.
    func searched() throws(SystemCallError) -> (trees: [String], visited: Int, complete: Bool) {
        var trees: [String] = []
        var level: [String] = [root]
        var visited = 0
        for depth in 1...Self.searchDepth {
            var next: [String] = []
            for directory in level {
                guard visited < Self.searchBudget else { return (trees, visited, false) }
                visited += 1
                let children: [String]
                do throws(SystemCallError) {
                    children = try Self.subdirectories(of: directory)
                } catch where depth > 1 || error.isVanished {
                    continue
                }
                for name in children {
                    let path = directory + "/" + name
                    if PodCgroups.isKubeletTreeName(name) { trees.append(path) } else { next.append(path) }
                }
            }
            if next.isEmpty { return (trees, visited, true) }
            level = next
        }
        return (trees, visited, false)
    }

    /// Names of the real directories in `path` (symlinks are not followed).
    static func subdirectories(of path: String) throws(SystemCallError) -> [String] {
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
