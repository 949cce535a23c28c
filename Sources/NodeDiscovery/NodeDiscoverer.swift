import Dispatch
import Foundation
import Logging
import ReaperCore
import Synchronization
import SystemCalls
import SystemPackage

/// Why discovery could not look at the node at all.
public struct DiscoveryError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var underlying: String

    public var description: String { "\(path): \(underlying)" }
}

/// Finds every `<root>/pods/<uid>/volumes/<plugin>/<volume>` and scans it.
/// Entries under `pods/` that are neither a UUID nor a config hash are not ours
/// and are never listed (design §3).
public struct NodeDiscoverer: Sendable {
    public var kubeletRoot: String
    public var mountInfoPath: String

    public init(kubeletRoot: String, mountInfoPath: String = "/proc/self/mountinfo") {
        self.kubeletRoot = kubeletRoot.count > 1 && kubeletRoot.hasSuffix("/") ? String(kubeletRoot.dropLast()) : kubeletRoot
        self.mountInfoPath = mountInfoPath
    }

    public var podsPath: String { kubeletRoot + "/pods" }

    /// Reads the whole node. Throws only when `<root>/pods` cannot be read;
    /// problems below it are recorded per volume or in `errors`. With
    /// `scans` (the daemon's scan cache), a volume is walked only when the
    /// cache has no result it may reuse, and every walk is handed to it.
    public func discover(logger: Logger, scans: (any VolumeScanSource)? = nil) throws -> NodeInventory {
        let mountTable: MountTable
        do {
            mountTable = try MountTable.read(path: mountInfoPath)
        } catch {
            throw DiscoveryError(path: mountInfoPath, underlying: "cannot read the mount table: \(error)")
        }
        let podsDirectory: FileDescriptor
        do {
            podsDirectory = try Syscall.openDirectory(nil, podsPath)
        } catch {
            throw DiscoveryError(path: podsPath, underlying: "cannot open the kubelet pods directory: \(error)")
        }
        defer { Syscall.close(podsDirectory) }
        let entries: [DirectoryEntry]
        do {
            entries = try Syscall.readDirectory(podsDirectory, path: podsPath)
        } catch {
            throw DiscoveryError(path: podsPath, underlying: "cannot list: \(error)")
        }

        let candidates: [(name: String, kind: PodDirectoryKind)] = entries.sorted(by: { $0.name < $1.name }).compactMap { entry in
            // A pod directory's name is a UID or a config hash: text.
            guard let name = entry.name.string, let kind = PodDirectoryKind(directoryName: name) else {
                logger.debug("not a pod directory, ignored", metadata: ["path": "\(podsPath)/\(entry.name)"])
                return nil
            }
            return (name, kind)
        }

        // Work is shared out a pod at a time: a pod's volumes are walked on one
        // thread, so threads meet once per pod, not once per directory. With
        // too few pods to share, each volume's own subtrees are shared instead.
        let workers = VolumeScanner.defaultWorkers
        let podsAtOnce = candidates.count >= workers * Self.podsPerWorker ? workers : 1
        let scanner = VolumeScanner(mountTable: mountTable, workers: podsAtOnce > 1 ? 1 : workers)
        let discoverOne = { @Sendable (index: Int) -> PodOutcome in
            let (name, kind) = candidates[index]
            let podPath = podsPath + "/" + name
            var errors: [String] = []
            do {
                let pod = try discoverPod(
                    named: name, kind: kind, in: podsDirectory, path: podPath, scanner: scanner, scans: scans, errors: &errors
                )
                return PodOutcome(pod: pod, errors: errors)
            } catch {
                logger.warning("pod directory unreadable", metadata: ["path": "\(podPath)", "error": "\(error)"])
                return PodOutcome(pod: nil, errors: errors + ["\(podPath): \(error)"])
            }
        }
        let outcomes: [PodOutcome]
        if podsAtOnce > 1 {
            let nextPod = Atomic(0)
            let finished = Mutex([PodOutcome?](repeating: nil, count: candidates.count))
            DispatchQueue.concurrentPerform(iterations: podsAtOnce) { _ in
                var mine: [(index: Int, outcome: PodOutcome)] = []
                while true {
                    let index = nextPod.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard index < candidates.count else { break }
                    mine.append((index, discoverOne(index)))
                }
                finished.withLock { all in
                    for (index, outcome) in mine { all[index] = outcome }
                }
            }
            outcomes = finished.withLock { $0.map { $0! } }
        } else {
            outcomes = candidates.indices.map(discoverOne)
        }

        var pods: [PodDirectory] = []
        var errors: [String] = []
        for outcome in outcomes {
            if let pod = outcome.pod { pods.append(pod) }
            errors += outcome.errors
        }
        return NodeInventory(kubeletRoot: kubeletRoot, pods: pods, errors: errors)
    }

    /// Below this many pods per thread, pods are read one after another.
    static let podsPerWorker = 2

    private struct PodOutcome: Sendable {
        var pod: PodDirectory?
        var errors: [String]
    }

    private func discoverPod(
        named name: String, kind: PodDirectoryKind, in podsDirectory: FileDescriptor, path: String,
        scanner: VolumeScanner, scans: (any VolumeScanSource)?, errors: inout [String]
    ) throws(SystemCallError) -> PodDirectory? {
        let status = try Syscall.statx(podsDirectory, name)
        guard status.isDirectory else { return nil }
        let appeared = status.born ?? status.changed
        var pod = PodDirectory(
            uid: name, path: path, kind: kind,
            appearedAt: Date(timeIntervalSince1970: appeared.secondsSince1970), volumes: []
        )
        let podDirectory = try Syscall.openDirectory(podsDirectory, name)
        defer { Syscall.close(podDirectory) }
        let volumesDirectory: FileDescriptor
        do {
            volumesDirectory = try Syscall.openDirectory(podDirectory, "volumes")
        } catch where error.isVanished {
            return pod
        }
        defer { Syscall.close(volumesDirectory) }
        let volumesPath = path + "/volumes"
        for pluginEntry in try Syscall.readDirectory(volumesDirectory, path: volumesPath).sorted(by: { $0.name < $1.name }) {
            // Plugin and volume directories are named by the kubelet, in text;
            // any other name is not one of its volumes: reported, never touched.
            guard let pluginName = pluginEntry.name.string else {
                errors.append("\(volumesPath)/\(pluginEntry.name): not a UTF-8 name: not a kubelet plugin directory")
                continue
            }
            let pluginPath = volumesPath + "/" + pluginName
            let pluginDirectory: FileDescriptor
            do {
                pluginDirectory = try Syscall.openDirectory(volumesDirectory, pluginName)
            } catch {
                errors.append("\(pluginPath): \(error)")
                continue
            }
            defer { Syscall.close(pluginDirectory) }
            let plugin = PluginName(pluginName)
            let volumeEntries: [DirectoryEntry]
            do {
                volumeEntries = try Syscall.readDirectory(pluginDirectory, path: pluginPath)
            } catch {
                errors.append("\(pluginPath): \(error)")
                continue
            }
            // Exactly: a volume's record is large, and a node has thousands.
            pod.volumes.reserveCapacity(pod.volumes.count + volumeEntries.count)
            for volumeEntry in volumeEntries.sorted(by: { $0.name < $1.name }) {
                guard let volumeName = volumeEntry.name.string else {
                    errors.append("\(pluginPath)/\(volumeEntry.name): not a UTF-8 name: not a kubelet volume directory")
                    continue
                }
                let volumePath = pluginPath + "/" + volumeName
                let scan: VolumeScan
                if let scans {
                    let tableMounts = scanner.mountTable.mounts(atOrUnder: volumePath).map(\.mountPoint).sorted()
                    if let kept = scans.reusableScan(of: volumePath, tableMounts: tableMounts) {
                        scan = kept
                    } else {
                        let walked = scanner.walk(volumeNamed: volumeName, in: pluginDirectory, path: volumePath, plugin: plugin)
                        scans.walked(volumePath, scan: walked.scan, tableMounts: tableMounts, directoryInodes: walked.directoryInodes)
                        scan = walked.scan
                    }
                } else {
                    scan = scanner.scan(volumeNamed: volumeName, in: pluginDirectory, path: volumePath, plugin: plugin)
                }
                pod.volumes.append(PodVolume(path: volumePath, plugin: plugin, name: volumeName, scan: scan))
            }
        }
        return pod
    }
}
