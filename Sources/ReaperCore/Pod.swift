import Foundation

/// An owner reference of a pod (`metadata.ownerReferences[]`).
public struct OwnerReference: Sendable, Hashable, Codable {
    public var kind: String
    public var name: String

    public init(kind: String, name: String) {
        self.kind = kind
        self.name = name
    }
}

/// The fields of a pod manifest the agent uses.
public struct Pod: Sendable, Hashable {
    public var uid: String
    public var name: String
    public var namespace: String
    /// `status.phase`; nil when the manifest has no status (static pod manifests).
    public var phase: String?
    /// Annotation values, always as text.
    public var annotations: [String: String]
    public var owners: [OwnerReference]
    /// The latest `finishedAt` of any terminated container or init container.
    public var lastContainerFinishedAt: Date?
    /// The file the pod came from.
    public var source: String

    public init(
        uid: String, name: String, namespace: String, phase: String?, annotations: [String: String] = [:],
        owners: [OwnerReference] = [], lastContainerFinishedAt: Date? = nil, source: String = ""
    ) {
        self.uid = uid
        self.name = name
        self.namespace = namespace
        self.phase = phase
        self.annotations = annotations
        self.owners = owners
        self.lastContainerFinishedAt = lastContainerFinishedAt
        self.source = source
    }

    public static let configHashAnnotation = "kubernetes.io/config.hash"
    public static let configMirrorAnnotation = "kubernetes.io/config.mirror"

    /// Whether a reconcile could judge this pod otherwise than `other`: any
    /// field but the annotations differs, or an annotation in `annotationKeys`
    /// (nil: every annotation). A pod source wakes no cycle for a change that
    /// is not one of these (a workload's own annotation, a resourceVersion).
    public func differsForReconcile(from other: Pod, annotationKeys: Set<String>?) -> Bool {
        guard let annotationKeys else { return self != other }
        // Every other field by the type's own equality, so a field added later is compared too.
        var mine = self, theirs = other
        mine.annotations = [:]
        theirs.annotations = [:]
        return mine != theirs || annotationKeys.contains { annotations[$0] != other.annotations[$0] }
    }

    /// Whether `phase` is a terminal one (no container will run again).
    public var isTerminated: Bool { phase == "Succeeded" || phase == "Failed" }

    /// Whether this document is the kubelet's own view of the static pod
    /// `hash` (its `/pods` lists a static pod under `metadata.uid` = hash), or
    /// its mirror pod: owned by the Node and pointing at the hash through
    /// `kubernetes.io/config.mirror`. The `config.hash` annotation alone is
    /// anyone's to write (a tenant pod could claim a static pod's directory),
    /// so it matches nothing.
    public func describesStaticPod(_ hash: String) -> Bool {
        uid == hash || mirroredStaticPodHash == hash
    }

    /// The config hash of the static pod this document mirrors: its
    /// `config.mirror` annotation, trusted only on a Node-owned pod.
    public var mirroredStaticPodHash: String? {
        guard owners.contains(where: { $0.kind == "Node" }) else { return nil }
        return annotations[Self.configMirrorAnnotation]
    }
}

/// A problem with one manifest file.
public struct ManifestError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var message: String

    public init(file: String, message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}

/// Where the agent learns its node's pods (the config's `podSource.kind`).
public enum PodSourceKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// Manifest files under `--manifests`, written by someone else.
    case files
    /// The API server: LIST, then WATCH with bookmarks.
    case apiserver
    /// The kubelet's own `/pods`, polled.
    case kubelet
}

/// The node's pods as one source sees them, and how far they can be trusted.
/// The reconciler, the plan, the socket API and the last checks read only
/// this, whatever the source.
public struct PodSnapshot: Sendable, Hashable {
    public var source: PodSourceKind
    /// The `--manifests` path, or the URL the pods were asked from.
    public var path: String
    /// Documents read: the manifest files (parsed or not), or the endpoint
    /// once it answered. None: nothing to judge orphans by.
    public var files: [String]
    /// The last moment the source vouched for the whole view, never later
    /// than the moment that view was taken. Files: the OLDEST mtime (a
    /// snapshot is only as fresh as its stalest file). API server: when the
    /// last LIST was sent, or a BOOKMARK arrived less a margin. Kubelet: when
    /// the last good answer's request was sent.
    public var refreshedAt: Date?
    public var errors: [ManifestError]
    public var pods: [Pod] {
        didSet { index = PodDirectoryIndex(pods) }
    }
    /// `pods` by the directory names they describe, rebuilt whenever `pods`
    /// changes: a reconcile asks once per pod directory, and a scan of every
    /// pod for each made a cycle O(pods × directories).
    private var index: PodDirectoryIndex
    /// Which write of the source this is: for files, a digest of every file's
    /// name, device, inode, size, mtime and ctime; for the network sources,
    /// the view's resource version and refresh time. Two snapshots with another
    /// fingerprint are different writes (orphan confirmation, design §4.4).
    /// Nil when unknown (a file failed): such a snapshot confirms nothing.
    public var fingerprint: String?
    /// The source follows the server: false while a watch or poll has failed
    /// and no new LIST or answer has replaced the view. An unsynced view
    /// still places the pods it knows, but vouches for no orphan.
    public var synced: Bool
    /// The API server's `resourceVersion` the view is at.
    public var resourceVersion: String?
    /// Whether the source can vouch that a pod it does not list is gone. The
    /// API server's consistent LIST can; the kubelet's `/pods` is a cache
    /// that lists only static pods after a restart without the API server,
    /// so it never does on its own (`pod-source-cannot-vouch`).
    public var vouchesForAbsence: Bool
    /// Pod UIDs the previous view listed and this one dropped without a
    /// DELETE event, held until a later, different snapshot agrees
    /// (`pod-view-shrank`; the reconciler bounds how many may go at once).
    public var droppedWithoutDelete: Set<String>

    public init(
        source: PodSourceKind = .files, path: String, files: [String], refreshedAt: Date?, errors: [ManifestError], pods: [Pod],
        fingerprint: String? = nil, synced: Bool = true, resourceVersion: String? = nil, vouchesForAbsence: Bool = true,
        droppedWithoutDelete: Set<String> = []
    ) {
        self.vouchesForAbsence = vouchesForAbsence
        self.droppedWithoutDelete = droppedWithoutDelete
        self.source = source
        self.path = path
        self.files = files
        self.refreshedAt = refreshedAt
        self.errors = errors
        self.pods = pods
        index = PodDirectoryIndex(pods)
        self.fingerprint = fingerprint
        self.synced = synced
        self.resourceVersion = resourceVersion
    }

    /// Every document read and parsed, and the source in sync. Only a
    /// complete snapshot can vouch for orphans.
    public var isComplete: Bool { errors.isEmpty && !files.isEmpty && synced }
    /// No file, or no pod in any: there is no snapshot to judge orphans by.
    public var isEmpty: Bool { pods.isEmpty }

    /// The documents that describe the pod directory `uid`: by `metadata.uid`,
    /// and for a static pod's config hash also by its Node-owned mirror pod
    /// (`Pod.describesStaticPod`).
    /// In the order `pods` lists them; duplicates (two documents with one
    /// UID) all count.
    public func pods(matching uid: String, kind: PodDirectoryKind) -> [Pod] {
        index.positions(matching: uid, kind: kind).map { pods[$0] }
    }

    /// Whether any document describes the pod directory `uid`, without
    /// gathering them.
    public func describesAnyPod(matching uid: String, kind: PodDirectoryKind) -> Bool {
        !index.positions(matching: uid, kind: kind).isEmpty
    }
}

/// Positions in a snapshot's `pods`, by the pod directory name each document
/// describes (`PodSnapshot.pods(matching:kind:)`). Derived from `pods`, so two
/// snapshots with equal pods have equal indexes.
struct PodDirectoryIndex: Sendable, Hashable {
    /// By `metadata.uid`: what a UID directory, and a static pod's config-hash
    /// directory as the kubelet's `/pods` lists it, match.
    private var byUID: [String: [Int]] = [:]
    /// Node-owned mirror pods by their `config.mirror` hash; only a
    /// config-hash directory matches these (`Pod.describesStaticPod`).
    private var mirrorsByHash: [String: [Int]] = [:]

    init(_ pods: [Pod]) {
        for (position, pod) in pods.enumerated() {
            byUID[pod.uid, default: []].append(position)
            if let hash = pod.mirroredStaticPodHash, pod.uid != hash {
                mirrorsByHash[hash, default: []].append(position)
            }
        }
    }

    /// Ascending positions of the documents that describe directory `name`.
    func positions(matching name: String, kind: PodDirectoryKind) -> [Int] {
        let own = byUID[name] ?? []
        guard kind == .configHash, let mirrors = mirrorsByHash[name] else { return own }
        // Both lists ascend and share no position (a mirror's UID is not the hash): merge.
        var merged: [Int] = []
        merged.reserveCapacity(own.count + mirrors.count)
        var ownIndex = 0, mirrorIndex = 0
        while ownIndex < own.count || mirrorIndex < mirrors.count {
            if mirrorIndex == mirrors.count || (ownIndex < own.count && own[ownIndex] < mirrors[mirrorIndex]) {
                merged.append(own[ownIndex])
                ownIndex += 1
            } else {
                merged.append(mirrors[mirrorIndex])
                mirrorIndex += 1
            }
        }
        return merged
    }
}

/// The durable or observed last access of one volume, from the access store or
/// the watcher.
public struct AccessRecord: Sendable, Hashable {
    public var lastAccess: Date
    public var source: LastAccessSource
    /// Start of the current unbroken observation of this volume by a daemon
    /// (no gap longer than `idle.maxUnobservedGap`); nil when never observed.
    public var observedSince: Date?

    public init(lastAccess: Date, source: LastAccessSource, observedSince: Date? = nil) {
        self.lastAccess = lastAccess
        self.source = source
        self.observedSince = observedSince
    }
}

/// Which signal gave a volume its last access.
public enum LastAccessSource: String, Sendable, Codable, Hashable, CaseIterable {
    case inotify, store, mtime, ctime, finished
    /// Only when the policy lists `atime` in `idle.timestamps`.
    case atime
}
