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

    /// Whether `phase` is a terminal one (no container will run again).
    public var isTerminated: Bool { phase == "Succeeded" || phase == "Failed" }

    /// Whether this document is the kubelet's own view of the static pod
    /// `hash` (its `/pods` lists a static pod under `metadata.uid` = hash), or
    /// its mirror pod: owned by the Node and pointing at the hash through
    /// `kubernetes.io/config.mirror`. The `config.hash` annotation alone is
    /// anyone's to write (a tenant pod could claim a static pod's directory),
    /// so it matches nothing.
    public func describesStaticPod(_ hash: String) -> Bool {
        if uid == hash { return true }
        return annotations[Self.configMirrorAnnotation] == hash && owners.contains { $0.kind == "Node" }
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

/// The pods the node's manifests list, and how far they can be trusted.
public struct ManifestSnapshot: Sendable, Hashable {
    /// The `--manifests` path.
    public var path: String
    /// Files read (parsed or not).
    public var files: [String]
    /// The OLDEST mtime of the files: a snapshot is only as fresh as its stalest file.
    public var refreshedAt: Date?
    public var errors: [ManifestError]
    public var pods: [Pod]
    /// Which write of the source this is: for files, a digest of every file's
    /// name, device, inode, size, mtime and ctime. Two snapshots with another
    /// fingerprint are different writes (orphan confirmation, design §4.4).
    /// Nil when unknown (a file failed): such a snapshot confirms nothing.
    public var fingerprint: String?

    public init(
        path: String, files: [String], refreshedAt: Date?, errors: [ManifestError], pods: [Pod], fingerprint: String? = nil
    ) {
        self.path = path
        self.files = files
        self.refreshedAt = refreshedAt
        self.errors = errors
        self.pods = pods
        self.fingerprint = fingerprint
    }

    /// Every file parsed. A snapshot with errors cannot vouch for orphans.
    public var isComplete: Bool { errors.isEmpty && !files.isEmpty }
    /// No file, or no pod in any: there is no snapshot to judge orphans by.
    public var isEmpty: Bool { pods.isEmpty }

    /// The documents that describe the pod directory `uid`: by `metadata.uid`,
    /// and for a static pod's config hash also by its Node-owned mirror pod
    /// (`Pod.describesStaticPod`).
    public func pods(matching uid: String, kind: PodDirectoryKind) -> [Pod] {
        pods.filter { pod in
            kind == .configHash ? pod.describesStaticPod(uid) : pod.uid == uid
        }
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
