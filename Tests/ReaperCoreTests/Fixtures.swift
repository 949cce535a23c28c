import Foundation
import ReaperCore
import Testing

/// In-memory nodes for the pure reconciler: no filesystem, a fixed `now`.
enum Fixture {
    /// 2026-11-18T...Z: every test judges at this moment.
    static let now = Date(timeIntervalSince1970: 1_795_000_000)
    static let kubeletRoot = "/var/lib/kubelet"
    static let manifestsPath = "/var/lib/volume-reaper/manifests"
    static let configHash = "3f2a9c0d4b5e6f708192a3b4c5d6e7f8"

    static func ago(_ seconds: TimeInterval) -> Date { now.addingTimeInterval(-seconds) }

    /// `now` on the boot clock, and `seconds` before it in the same boot.
    static let boot = BootInstant(bootID: "0b0a0000-0000-4000-8000-000000000001", seconds: 500_000)
    static func bootAgo(_ seconds: TimeInterval) -> BootInstant { BootInstant(bootID: boot.bootID, seconds: boot.seconds - seconds) }

    /// A sighting of `uid` `seconds` ago on both clocks.
    static func sighting(_ uid: String, ago seconds: TimeInterval, write: String) -> OrphanObservation {
        OrphanObservation(podUID: uid, firstMissingAt: ago(seconds), firstMissingBoot: bootAgo(seconds), snapshotFingerprint: write)
    }

    static func uid(_ number: Int) -> String { "5e1f0000-0000-4000-8000-" + String(format: "%012d", number) }

    static func volumePath(_ uid: String, _ plugin: PluginName, _ name: String) -> String {
        "\(kubeletRoot)/pods/\(uid)/volumes/\(plugin.escaped)/\(name)"
    }

    /// A walk of a volume untouched for `idle` seconds, with some data in it.
    static func scan(
        idle: TimeInterval = 3 * 3600, bytes: UInt64 = 8192, files: Int = 3, mounts: [MountInfo] = [],
        lockedPaths: [String] = [], unreadable: [String] = [], vanished: Bool = false, onlyBookkeeping: Bool = false
    ) -> VolumeScan {
        VolumeScan(
            newestModification: ago(idle), newestChange: ago(idle), newestAccess: ago(idle), bytes: bytes, files: files,
            mounts: mounts, lockedPaths: lockedPaths, unreadable: unreadable, vanishedDuringScan: vanished,
            holdsOnlyBookkeeping: onlyBookkeeping
        )
    }

    /// A finished Job's pod: Succeeded two hours ago, owned by a Job, in `batch`.
    static func pod(
        _ uid: String, name: String = "report-job-1", namespace: String = "batch", phase: String? = "Succeeded",
        annotations: [String: String] = [:], owners: [OwnerReference] = [OwnerReference(kind: "Job", name: "report-job")],
        finishedAt: Date? = ago(2 * 3600)
    ) -> Pod {
        Pod(
            uid: uid, name: name, namespace: namespace, phase: phase, annotations: annotations, owners: owners,
            lastContainerFinishedAt: finishedAt, source: manifestsPath + "/pods.json"
        )
    }
}

/// A node being built for one test: pod directories, manifests, access records, policy.
struct NodeFixture {
    var directories: [PodDirectory] = []
    var pods: [Pod] = []
    var manifestFiles = [Fixture.manifestsPath + "/pods.json"]
    var manifestErrors: [ManifestError] = []
    var manifestsRefreshedAt: Date? = Fixture.ago(60)
    var access: [String: AccessRecord] = [:]
    /// The defaults, but one snapshot confirms an orphan: orphan confirmation
    /// (`orphans.confirmAfter`) has its own suite, OrphanConfirmationTests.
    var policy: Policy = {
        var policy = Policy()
        policy.orphans.confirmAfter = 0
        return policy
    }()
    var orphanObservations: [String: OrphanObservation] = [:]
    var manifestsFingerprint: String? = "write-2"
    /// The pod source follows its server (false: a failed watch, not listed again).
    var manifestsSynced = true
    /// The source can vouch for absence (false: the kubelet's /pods).
    var manifestsVouch = true
    /// UIDs the latest snapshot dropped without DELETE events.
    var droppedWithoutDelete: Set<String> = []
    /// Now on the boot clock (nil: unknown).
    var boot: BootInstant? = Fixture.boot
    /// The pod cgroups' word.
    var liveness = PodLiveness()

    init() {}

    /// A node with one pod directory holding one volume, described by `pods`.
    init(
        uid: String = Fixture.uid(1), kind: PodDirectoryKind = .uid, pods: [Pod], plugin: PluginName = .emptyDir,
        scan: VolumeScan = Fixture.scan()
    ) {
        self.pods = pods
        addVolume(uid: uid, kind: kind, plugin: plugin, scan: scan)
    }

    /// Adds a volume (and its pod directory, if new); returns its path.
    @discardableResult
    mutating func addVolume(
        uid: String, kind: PodDirectoryKind = .uid, appearedAt: Date = Fixture.ago(86400),
        plugin: PluginName = .emptyDir, name: String = "scratch", scan: VolumeScan = Fixture.scan()
    ) -> String {
        let path = Fixture.volumePath(uid, plugin, name)
        let volume = PodVolume(path: path, plugin: plugin, name: name, scan: scan)
        if let index = directories.firstIndex(where: { $0.uid == uid }) {
            directories[index].volumes.append(volume)
        } else {
            directories.append(PodDirectory(
                uid: uid, path: "\(Fixture.kubeletRoot)/pods/\(uid)", kind: kind, appearedAt: appearedAt, volumes: [volume]
            ))
        }
        return path
    }

    var input: ReconcileInput {
        ReconcileInput(
            inventory: NodeInventory(kubeletRoot: Fixture.kubeletRoot, pods: directories),
            manifests: PodSnapshot(
                path: Fixture.manifestsPath, files: manifestFiles, refreshedAt: manifestsRefreshedAt,
                errors: manifestErrors, pods: pods, fingerprint: manifestsFingerprint, synced: manifestsSynced,
                vouchesForAbsence: manifestsVouch, droppedWithoutDelete: droppedWithoutDelete
            ),
            access: access, policy: policy, now: Fixture.now, orphanObservations: orphanObservations, boot: boot, liveness: liveness
        )
    }

    func plan() -> Plan { Reconciler.plan(input) }

    /// The verdict of the only volume (or of `path`).
    func verdict(_ path: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> VolumeVerdict {
        let plan = plan()
        if let path {
            return try #require(plan.volumes.first { $0.path == path }, "no verdict for \(path)", sourceLocation: sourceLocation)
        }
        try #require(plan.volumes.count == 1, "expected one volume, got \(plan.volumes.count)", sourceLocation: sourceLocation)
        return plan.volumes[0]
    }
}

/// Checks a verdict and its exact reasons.
func expect(
    _ verdict: VolumeVerdict, _ kind: VerdictKind, _ reasons: Set<Reason>, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(verdict.verdict == kind, "reasons: \(verdict.reasons.map(\.rawValue))", sourceLocation: sourceLocation)
    #expect(Set(verdict.reasons) == reasons, sourceLocation: sourceLocation)
    #expect(verdict.reasons.count == reasons.count, "no reason twice: \(verdict.reasons)", sourceLocation: sourceLocation)
}

/// Checks that a kept verdict names `reason` among others.
func expectKept(_ verdict: VolumeVerdict, because reason: Reason, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(verdict.verdict == .keep, "reasons: \(verdict.reasons.map(\.rawValue))", sourceLocation: sourceLocation)
    #expect(verdict.reasons.contains(reason), "reasons: \(verdict.reasons.map(\.rawValue))", sourceLocation: sourceLocation)
    #expect(verdict.reasons.allSatisfy { $0.keeps }, "a kept verdict lists only keep reasons: \(verdict.reasons)", sourceLocation: sourceLocation)
}
