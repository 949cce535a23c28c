import ClusterAccess
import Foundation
import NodeDiscovery
import PodManifests
import PolicyFile
import ReaperCore
import ReaperAgent

extension FuzzTargets {
    /// A manifest file's bytes, as `ManifestReader.read` would load them.
    public static func manifest(_ bytes: [UInt8]) throws(FuzzFinding) {
        // The reader refuses non-UTF-8 files before parsing.
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        let pods: [Pod]
        do {
            pods = try ManifestReader.parse(text, file: "fuzz.yaml")
        } catch {
            try MessageContract.check("\(error)", harness: "manifest")
            return
        }
        if pods.contains(where: { $0.uid.isEmpty }) {
            throw FuzzFinding("manifest", "accepted a pod without metadata.uid")
        }
    }

    /// A policy file's bytes through what `policy check` does: parse, then describe.
    public static func policy(_ bytes: [UInt8]) throws(FuzzFinding) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        do {
            let policy = try PolicyLoader.parse(text, file: "fuzz.yaml")
            _ = PolicyDescription.lines(policy)
        } catch {
            try MessageContract.check(error.description, harness: "policy")
        }
    }

    /// The largest interval (seconds) the daemon can turn into a `Duration`
    /// of milliseconds without trapping; an accepted config must stay below it.
    static let intervalCeiling = Double(Int64.max) / 1000 / 2

    /// A config file's bytes; an accepted config must be one the daemon can run with.
    public static func config(_ bytes: [UInt8]) throws(FuzzFinding) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        let configuration: AgentConfiguration
        do {
            configuration = try AgentConfiguration.parse(text, file: "fuzz.yaml")
        } catch {
            try MessageContract.check(error.description, harness: "config")
            return
        }
        for (name, interval) in [
            ("reconcileInterval", configuration.reconcileInterval), ("flushInterval", configuration.flushInterval),
            ("pollInterval", configuration.pollInterval), ("fullScanInterval", configuration.fullScanInterval),
        ] where !(interval.isFinite && interval > 0 && interval < intervalCeiling) {
            throw FuzzFinding("config", "accepted \(name) \(interval), which the daemon cannot schedule")
        }
        if let watches = configuration.maxWatches, watches <= 0 {
            throw FuzzFinding("config", "accepted maxWatches \(watches)")
        }
        // A kubelet URL the pod source would refuse (a port over 65535 trapped in NIO) must not pass the config.
        if let url = configuration.podSource.kubeletURL {
            do throws(ClusterAccessError) {
                _ = try ClusterURL.validated(url, field: "podSource.kubeletURL")
            } catch {
                throw FuzzFinding("config", "accepted podSource.kubeletURL that the pod source refuses: \(MessageContract.excerpt(error.message))")
            }
        }
    }

    /// `/proc/self/mountinfo` text (the kernel escapes, but a namespace's
    /// mount points are chosen by whoever can mount), then the look-ups
    /// discovery makes on the table.
    public static func mountinfo(_ bytes: [UInt8]) throws(FuzzFinding) {
        let table = MountTable(mountinfo: String(decoding: bytes, as: UTF8.self))
        guard table.mountIDs.count == table.mounts.count else {
            throw FuzzFinding("mountinfo", "\(table.mounts.count) mounts but \(table.mountIDs.count) mount IDs")
        }
        for mount in table.mounts.prefix(8) {
            _ = table.mounts(atOrUnder: mount.mountPoint)
            _ = table.filesystemType(at: mount.mountPoint + "/x")
        }
        _ = table.mounts(atOrUnder: "/var/lib/kubelet/pods")
    }
}
