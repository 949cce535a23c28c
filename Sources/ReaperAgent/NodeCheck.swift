import Foundation
import Logging
import PodSources
import PolicyFile
import Reaper
import ReaperCore
import SocketAPI
import SystemCalls
import SystemdIntegration
import VolumeWatcher

/// One line of `volume-reaper check`: ok, warn or fail, what was checked,
/// what was found and, unless ok, the fix.
public struct CheckLine: Sendable, Hashable, CustomStringConvertible {
    public enum Status: String, Sendable, Hashable {
        case ok, warn, fail
    }

    public var status: Status
    public var item: String
    public var finding: String
    public var fix: String?

    public init(_ status: Status, _ item: String, _ finding: String, fix: String? = nil) {
        self.status = status
        self.item = item
        self.finding = finding
        self.fix = fix
    }

    public var description: String {
        let padded = status.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0)
        let line = "\(padded)\(item): \(UserText.excerpt(finding, limit: 400))"
        guard let fix, status != .ok else { return line }
        return line + " -- fix: " + fix
    }
}

/// `volume-reaper check`: what an SRE asks of a new node before starting the
/// agent. Reads only; the pod source is asked once, as `--plan` asks it.
public struct NodeCheck: Sendable {
    public var configuration: AgentConfiguration
    /// Where the config came from, for the fixes (`--config FILE` or the flags).
    public var configSource: String
    public var journalSocketPath = LoggingBootstrap.defaultJournalSocketPath
    public var inotifyLimitsDirectory = "/proc/sys/fs/inotify"

    public init(configuration: AgentConfiguration, configSource: String) {
        self.configuration = configuration
        self.configSource = configSource
    }

    public func run(logger: Logger) async -> [CheckLine] {
        // Every item reads files or waits for a child: on the blocking executor.
        let work = BlockingWork(label: "volume-reaper.check")
        let lines = await work.run { [self] in [kubeletRoot(), podLiveness(logger: logger)] }
        let pods = await PodSourceFactory.oneShot(configuration.podSourceSettings, logger: logger)
        return lines + (await work.run { [self] in blockingItems(pods: pods, logger: logger) })
    }

    private func blockingItems(pods: any PodSource, logger: Logger) -> [CheckLine] {
        var lines: [CheckLine] = []
        lines.append(podSource(pods))
        lines.append(inotifyBudget())
        lines.append(journald())
        lines.append(stateDirectory())
        lines.append(apiSocket())
        let policy: Policy?
        switch loadPolicy() {
        case .success(let (loaded, source)):
            policy = loaded
            lines.append(CheckLine(.ok, "policy", "\(source): valid: \(PolicyDescription.lines(loaded).first ?? "")"))
        case .failure(let error):
            policy = nil
            // Every section's problem at once, not one fix-and-rerun per problem.
            let problems = error.code == .cannotRead ? [error] : PolicyLoader.problems(path: error.file)
            for problem in problems.isEmpty ? [error] : problems {
                lines.append(CheckLine(.fail, "policy", "\(problem)", fix: "correct the field named (volume-reaper policy check FILE), or point policy (--policy) at a valid file"))
            }
        }
        lines.append(unmount(policy))
        lines.append(fileLeases())
        lines.append(mode())
        lines.append(plan(policy: policy, pods: pods, logger: logger))
        return lines
    }

    // MARK: The items

    func kubeletRoot() -> CheckLine {
        let root = configuration.kubeletRoot
        guard let status = try? Syscall.statx(nil, root), status.isDirectory else {
            return CheckLine(.fail, "kubelet root", "\(root): no such directory",
                             fix: "set kubeletRoot (--kubelet-root) to the kubelet's --root-dir")
        }
        let podsPath = root + "/pods"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: podsPath) else {
            return CheckLine(.warn, "kubelet root", "\(root): \(podsPath) is missing or unreadable (no pod has run here yet?)",
                             fix: "check that \(root) is the kubelet's --root-dir; run check as root")
        }
        let count = names.filter { PodDirectoryKind(directoryName: $0) != nil }.count
        return CheckLine(.ok, "kubelet root", "\(root): \(count) pod directories")
    }

    /// Whether the kubelet's pod cgroups can be found: without them nothing
    /// says whether an orphan's pod still runs, and every orphan is kept.
    func podLiveness(logger: Logger) -> CheckLine {
        let cgroups = configuration.podCgroups()
        let pods = ((try? FileManager.default.contentsOfDirectory(atPath: configuration.kubeletRoot + "/pods")) ?? [])
            .filter { PodDirectoryKind(directoryName: $0) != nil }
        let survey = cgroups.survey(pods: pods, logger: logger)
        let fix = "set cgroupRoot (--cgroup-root) to where the host's cgroup file systems are mounted (in a container, mount the host's /sys/fs/cgroup) and kubeletConfig to the kubelet's config file"
        if let unreadable = cgroups.treeStatus?.unreadable {
            return CheckLine(.fail, "pod liveness", "\(configuration.cgroupRoot) unreadable: \(unreadable) (every pod would be kept as inconclusive)", fix: fix)
        }
        if let why = survey.treeMissing {
            return CheckLine(.fail, "pod liveness", "\(why): every orphan would be kept (liveness-unknown)", fix: fix)
        }
        guard let trees = cgroups.treeStatus?.trees, !trees.isEmpty else {
            return CheckLine(.warn, "pod liveness", "\(cgroups.treeStatus?.problem ?? "no kubelet pod cgroup tree") (no pod directories yet)", fix: fix)
        }
        let more = trees.count > 3 ? ", ... (\(trees.count) in all)" : ""
        return CheckLine(.ok, "pod liveness", "kubelet pod cgroups found: \(trees.prefix(3).joined(separator: ", "))\(more)")
    }

    func podSource(_ pods: any PodSource) -> CheckLine {
        // The snapshot first: the files source's status tells of its last read.
        let snapshot = pods.currentSnapshot()
        let status = pods.status()
        let name = "\(status.kind.rawValue) \(status.endpoint)"
        if status.kind == .files {
            if let error = snapshot.errors.first {
                return CheckLine(.fail, "pod source", "\(name): \(error.file): \(error.message) (orphans would be kept)",
                                 fix: "make the manifests (--manifests) readable pod documents, or use podSource.kind apiserver")
            }
            if snapshot.files.isEmpty {
                return CheckLine(.warn, "pod source", "\(name): no manifest files: no orphan can be judged",
                                 fix: "write the node's pods there (kubectl get pods -o json), or use podSource.kind apiserver")
            }
            return CheckLine(.ok, "pod source", "\(name): \(snapshot.files.count) files list \(snapshot.pods.count) pods")
        }
        guard status.state == .synced else {
            let problem = status.problem ?? "no answer"
            let fix: String = switch status.problemKind.flatMap(PodSourceError.Kind.init(rawValue:)) {
            case .unauthorized: "the credentials were refused: renew the token or certificate in podSource.kubeconfig (or the service account)"
            case .forbidden: "grant get, list and watch on pods to this identity (the node authorizer or the packaged ClusterRole)"
            case .credentials: "fix the kubeconfig field named, or set podSource.kubeconfig"
            case .unreachable, .stalled: "check the server in podSource.kubeconfig (or kubeletURL) and that this node reaches it"
            default: "see the problem named; volume-reaper keeps every orphan while the source fails"
            }
            return CheckLine(.fail, "pod source", "\(name): \(problem)", fix: fix)
        }
        let found = "\(name): reachable and authenticated, \(status.pods) pods on this node"
        // Synced, but the answer itself is suspect (a UID listed twice): the
        // agent keeps those pods' orphans, but someone should look.
        if !snapshot.errors.isEmpty {
            let problems = snapshot.errors.prefix(3).map(\.message).joined(separator: "; ")
            let more = snapshot.errors.count > 3 ? " (and \(snapshot.errors.count - 3) more)" : ""
            return CheckLine(.warn, "pod source", "\(found); but its answer has \(snapshot.errors.count) problems: \(problems)\(more)",
                             fix: "look at the pods named (kubectl get pods -A -o wide --field-selector spec.nodeName=...); volume-reaper keeps what they might own")
        }
        return CheckLine(.ok, "pod source", found)
    }

    func inotifyBudget() -> CheckLine {
        func limit(_ name: String) -> Int? {
            (try? RegularFileReader.readStart("\(inotifyLimitsDirectory)/\(name)", maxBytes: 64))
                .map { String(decoding: $0, as: UTF8.self) }
                .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        guard let watches = limit("max_user_watches"), let instances = limit("max_user_instances") else {
            return CheckLine(.warn, "inotify", "cannot read \(inotifyLimitsDirectory)/max_user_watches or max_user_instances",
                             fix: "run check on the node itself (not in a container without /proc/sys)")
        }
        let needed = WatchBudget.directoriesToWatch(kubeletRoot: configuration.kubeletRoot)
        let budget = min(watches, configuration.maxWatches ?? .max)
        let inUse = InotifyUsage.instancesOfThisUser()
        var finding = "\(needed.directories) directories to watch; max_user_watches \(watches)"
        if let cap = configuration.maxWatches { finding += ", maxWatches \(cap)" }
        finding += "; max_user_instances \(instances)"
        if let inUse { finding += " (\(inUse) in use by this user)" }
        if needed.unreadable > 0 { finding += "; \(needed.unreadable) directories unreadable" }
        if let inUse, inUse >= instances {
            return CheckLine(.fail, "inotify", finding + ": no inotify instance left",
                             fix: "raise fs.inotify.max_user_instances (sysctl -w fs.inotify.max_user_instances=\(max(instances * 2, 512)))")
        }
        if needed.directories > budget {
            return CheckLine(.warn, "inotify", finding + ": the rest would be polled every pollInterval",
                             fix: "raise fs.inotify.max_user_watches to at least \(needed.directories * 2) (sysctl -w), or maxWatches")
        }
        // The budget is shared with every process of this user (the kubelet, containerd...).
        if needed.directories * 2 > budget {
            return CheckLine(.warn, "inotify", finding + ": over half of the budget, which other processes of this user share",
                             fix: "raise fs.inotify.max_user_watches to at least \(needed.directories * 2) (sysctl -w)")
        }
        return CheckLine(.ok, "inotify", finding)
    }

    func journald() -> CheckLine {
        let path = journalSocketPath
        // Logs go to stderr whatever journald does: nothing to warn about.
        if configuration.logTarget == "stderr" {
            return CheckLine(.ok, "journald", "not used: logTarget is stderr")
        }
        guard let address = UnixSocketAddress(path) else {
            return CheckLine(.warn, "journald", "\(path): path too long", fix: "logs would go to stderr")
        }
        do {
            Syscall.close(try Syscall.connectUnixSocket(address, datagram: true))
        } catch where error.call == "connect" {
            return CheckLine(.warn, "journald", "\(path): \(error.errno): logs would go to stderr",
                             fix: "start systemd-journald (systemctl start systemd-journald), or run under systemd")
        } catch {
            return CheckLine(.warn, "journald", "socket: \(error.errno)", fix: "logs would go to stderr")
        }
        return CheckLine(.ok, "journald", "\(path) accepts entries")
    }

    func stateDirectory() -> CheckLine {
        let directory = configuration.stateDir
        guard let status = try? Syscall.statx(nil, directory), status.isDirectory else {
            return CheckLine(.warn, "state directory", "\(directory) does not exist yet (the daemon creates it)",
                             fix: "create it (mkdir -p \(directory); the unit's StateDirectory= does), or set stateDir")
        }
        let probe = directory + "/.check-\(Syscall.processID())"
        do {
            let flags = OpenFlags.writeOnly | OpenFlags.create | OpenFlags.exclusive | OpenFlags.noFollow
            Syscall.close(try Syscall.openAt(nil, probe, flags: flags, mode: 0o600))
        } catch {
            return CheckLine(.fail, "state directory", "\(directory): not writable: \(error.errno)",
                             fix: "run as root, or give this user \(directory) (stateDir, --state-dir)")
        }
        try? Syscall.unlink(probe)
        return CheckLine(.ok, "state directory", "\(directory) is writable")
    }

    func apiSocket() -> CheckLine {
        let path = configuration.socket
        switch APISocketState.of(path) {
        case .absent: return CheckLine(.ok, "socket", "\(path) is free")
        case .stale: return CheckLine(.ok, "socket", "\(path) is a stale socket (no agent listens); the daemon replaces it")
        case .listening:
            guard let health = runningAgentHealth() else {
                return CheckLine(.warn, "socket", "\(path): something listens but does not answer /healthz as volume-reaper",
                                 fix: "find the owner (ss -xlp | grep \(path)) or choose another socket (--socket)")
            }
            return CheckLine(.ok, "socket", "\(path) is owned by a live agent (state \(health.state))")
        case .blocked(let message):
            return CheckLine(.fail, "socket", message, fix: "remove what is at \(path), or choose another socket (--socket)")
        }
    }

    func unmount(_ policy: Policy?) -> CheckLine {
        let host = PlanExecutor.inHostMountNamespace()
        let namespace = host ? "this process is in the host mount namespace" : "this process is not in the host mount namespace"
        guard let policy else {
            return CheckLine(host ? .ok : .warn, "unmount", "\(namespace); the policy could not be read",
                             fix: "fix the policy first")
        }
        guard !policy.volumes.unmount.isEmpty else {
            return CheckLine(.ok, "unmount", "not needed (volumes.unmount is empty); \(namespace)")
        }
        let types = policy.volumes.unmount.joined(separator: ", ")
        guard host else {
            return CheckLine(.warn, "unmount", "volumes.unmount (\(types)) is set but \(namespace): such volumes are kept (mounted)",
                             fix: "run the agent in the host mount namespace (no PrivateMounts/ProtectSystem sandbox), or drop volumes.unmount")
        }
        guard Syscall.effectiveUserID() == 0 else {
            return CheckLine(.warn, "unmount", "volumes.unmount (\(types)) is set but this is not root: unmounts would fail (kept)",
                             fix: "run as root (CAP_SYS_ADMIN)")
        }
        return CheckLine(.ok, "unmount", "possible for \(types): \(namespace)")
    }

    /// Whether a removal can lease each file before unlinking it, which is
    /// what makes a file held open by another process stop the removal.
    func fileLeases() -> CheckLine {
        let enabled = (try? RegularFileReader.read("/proc/sys/fs/leases-enable", limit: 16, followSymlinks: true)).map { String(decoding: $0, as: UTF8.self) }
        if enabled?.hasPrefix("0") == true {
            return CheckLine(.warn, "file leases", "fs.leases-enable is 0: a file held open is noticed only by its times while a volume is removed",
                             fix: "sysctl fs.leases-enable=1")
        }
        guard let capable = try? ProcessSelf.hasEffectiveCapability(Syscall.leaseCapability) else {
            return CheckLine(.warn, "file leases", "/proc/self/status unreadable: cannot tell whether files can be leased")
        }
        guard capable else {
            return CheckLine(.warn, "file leases", "no CAP_LEASE: a pod's file held open is noticed only by its times while a volume is removed",
                             fix: "add CAP_LEASE (CapabilityBoundingSet= in the unit, capabilities.add: LEASE in the DaemonSet)")
        }
        return CheckLine(.ok, "file leases", "granted: a removal stops at a file another process holds open")
    }

    func mode() -> CheckLine {
        if APISocketState.of(configuration.socket) == .listening, let health = runningAgentHealth() {
            let mode = health.dryRun ? "observe (the running agent never deletes: run --plan)" : "reap (the running agent deletes idle volumes)"
            return CheckLine(.ok, "mode", mode)
        }
        if configuration.dryRun {
            let dropIn = configuration.file.map { AgentConfiguration.dropInDirectory(forConfig: $0) + "/50-reap.yaml" } ?? "the config file"
            return CheckLine(.ok, "mode", "observe: the config sets dryRun: true; `run` will only log what it would reap",
                             fix: "to delete, write dryRun: false to \(dropIn) and `systemctl reload volume-reaper`")
        }
        return CheckLine(.ok, "mode", "reap: `run` with this config deletes idle volumes (`run --plan` only observes)")
    }

    func plan(policy: Policy?, pods: any PodSource, logger: Logger) -> CheckLine {
        guard let policy else {
            return CheckLine(.fail, "plan", "not built: the policy is invalid", fix: "fix the policy first")
        }
        let builder = PlanBuilder(configuration: configuration, policy: policy, pods: pods)
        let access = StoredAccess.readOnly(stateDirectory: configuration.stateDir, policy: policy, logger: logger)
        do {
            let plan = try builder.build(accessFor: { try access.records(for: $0) }, observations: access, logger: logger).plan
            var finding = "\(plan.volumes.count) volumes: \(plan.summary.reap) to reap (\(ByteCountText.format(plan.summary.bytes))), \(plan.summary.keep) kept"
            var counts: [Reason: Int] = [:]
            for volume in plan.volumes where volume.verdict == .keep {
                for reason in volume.reasons { counts[reason, default: 0] += 1 }
            }
            let top: [(Reason, Int)] = counts.sorted { left, right in
                left.value != right.value ? left.value > right.value : left.key < right.key
            }.prefix(3).map { ($0.key, $0.value) }
            if !top.isEmpty {
                let parts: [String] = top.map { "\($0.0.rawValue) \($0.1)" }
                finding += " (most kept for: " + parts.joined(separator: ", ") + ")"
            }
            if let alert = plan.alerts.first {
                return CheckLine(.warn, "plan", finding + "; ALERT \(alert.code.rawValue)",
                                 fix: "read volume-reaper --plan: \(alert.message)")
            }
            return CheckLine(.ok, "plan", finding)
        } catch {
            return CheckLine(.fail, "plan", "\(error)", fix: "see the error; volume-reaper --plan shows the same")
        }
    }

    // MARK: Helpers

    private func loadPolicy() -> Result<(Policy, String), PolicyError> {
        do {
            let (policy, source) = try PolicyLoader.resolveDefault(explicitPath: configuration.policy)
            return .success((policy, source))
        } catch {
            return .failure(error)
        }
    }

    private func runningAgentHealth() -> AgentHealth? {
        guard let response = try? AgentClient(socketPath: configuration.socket, timeout: 5).request("GET", "/healthz") else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(AgentHealth.self, from: response.body)
    }
}

/// Bytes for people: `0 B`, `12.3 MiB`.
enum ByteCountText {
    static func format(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// inotify instances held by processes of this user, from `/proc/*/fd`.
enum InotifyUsage {
    static func instancesOfThisUser() -> Int? {
        let uid = Syscall.effectiveUserID()
        guard let processes = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        var count = 0
        for pid in processes where pid.allSatisfy(\.isNumber) {
            guard (try? Syscall.statxFollowing("/proc/\(pid)"))?.owner == uid,
                  let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for fd in fds where (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) == "anon_inode:inotify" {
                count += 1
            }
        }
        return count
    }
}
