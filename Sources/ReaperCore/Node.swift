import Foundation

/// How a directory under `<root>/pods/` is named, which says what kind of pod
/// made it (design §3).
public enum PodDirectoryKind: String, Sendable, Codable, Hashable {
    /// A UUID: an API-server pod.
    case uid
    /// 32 hex digits: a static pod's config hash. Never an orphan.
    case configHash

    /// Classifies a directory name; nil for anything that is not ours.
    public init?(directoryName name: String) {
        if Self.isUUID(name) {
            self = .uid
        } else if name.utf8.count == 32, name.utf8.allSatisfy(Self.isLowerHex) {
            self = .configHash
        } else {
            return nil
        }
    }

    static func isLowerHex(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }

    static func isUUID(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                if byte != UInt8(ascii: "-") { return false }
            } else if !isLowerHex(byte) {
                return false
            }
        }
        return true
    }
}

/// A volume plugin name as the kubelet writes it on disk (`kubernetes.io~empty-dir`)
/// and as people write it (`kubernetes.io/empty-dir`). Equal whichever form made it.
public struct PluginName: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    /// The on-disk form, with `/` escaped as `~`.
    public let escaped: String

    public init(_ name: String) {
        escaped = Self.replacing("/", with: "~", in: name)
    }

    /// The form people read: `kubernetes.io/empty-dir`.
    public var unescaped: String { Self.replacing("~", with: "/", in: escaped) }

    /// Made for every plugin directory of every cycle: without Foundation's
    /// `replacingOccurrences`, which bridges through NSString each time.
    private static func replacing(_ old: Character, with new: Character, in name: String) -> String {
        name.contains(old) ? String(name.map { $0 == old ? new : $0 }) : name
    }
    public var description: String { unescaped }

    public static let emptyDir = PluginName("kubernetes.io~empty-dir")
    public static let configMap = PluginName("kubernetes.io~configmap")
    public static let secret = PluginName("kubernetes.io~secret")
    public static let projected = PluginName("kubernetes.io~projected")
    public static let downwardAPI = PluginName("kubernetes.io~downward-api")
    public static let csi = PluginName("kubernetes.io~csi")

    /// The kinds whose data lives on this node only; the only ones whose
    /// contents may ever be deleted (design §5.5).
    public static let localKinds: Set<PluginName> = [emptyDir, configMap, secret, projected, downwardAPI]

    public var isLocal: Bool { Self.localKinds.contains(self) }
    public var isCSI: Bool { self == .csi }

    public static func < (lhs: PluginName, rhs: PluginName) -> Bool { lhs.escaped < rhs.escaped }

    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(unescaped)
    }
}

/// A mount found at or under a volume.
public struct MountInfo: Sendable, Hashable, Codable {
    public var mountPoint: String
    public var filesystemType: String

    public init(mountPoint: String, filesystemType: String) {
        self.mountPoint = mountPoint
        self.filesystemType = filesystemType
    }
}

/// What one walk of a volume tree saw. Produced by discovery, judged by the reconciler.
public struct VolumeScan: Sendable, Hashable {
    /// Newest modification time of any entry in the tree (the root included).
    public var newestModification: Date?
    /// Newest status-change time of any entry.
    public var newestChange: Date?
    /// Newest access time of any entry (only as good as the mount's atime options).
    public var newestAccess: Date?
    /// Bytes allocated on disk by the tree.
    public var bytes: UInt64
    /// Entries in the tree, the root excluded.
    public var files: Int
    /// Mounts at the root or inside the tree.
    public var mounts: [MountInfo]
    /// Paths whose `flock(LOCK_EX|LOCK_NB)` failed: someone holds them.
    public var lockedPaths: [String]
    /// Entries that could not be read (EIO, EACCES, ESTALE...): path and error.
    public var unreadable: [String]
    /// Entries that vanished between listing and inspection: activity.
    public var vanishedDuringScan: Bool
    /// The tree holds nothing a non-recursive removal may not remove: nothing
    /// at all, or for CSI only an empty `mount/` and `vol_data.json`.
    public var holdsOnlyBookkeeping: Bool
    /// The root's filesystem as `major:minor`; nil when the root was not read.
    /// Pressure mode measures each volume's own filesystem by it.
    public var device: String?

    public init(
        newestModification: Date? = nil, newestChange: Date? = nil, newestAccess: Date? = nil,
        bytes: UInt64 = 0, files: Int = 0, mounts: [MountInfo] = [], lockedPaths: [String] = [],
        unreadable: [String] = [], vanishedDuringScan: Bool = false, holdsOnlyBookkeeping: Bool = true, device: String? = nil
    ) {
        self.device = device
        self.newestModification = newestModification
        self.newestChange = newestChange
        self.newestAccess = newestAccess
        self.bytes = bytes
        self.files = files
        self.mounts = mounts
        self.lockedPaths = lockedPaths
        self.unreadable = unreadable
        self.vanishedDuringScan = vanishedDuringScan
        self.holdsOnlyBookkeeping = holdsOnlyBookkeeping
    }

    public var isMounted: Bool { !mounts.isEmpty }
    public var isLockHeld: Bool { !lockedPaths.isEmpty }
}

/// One `<root>/pods/<uid>/volumes/<plugin>/<name>` directory.
public struct PodVolume: Sendable, Hashable {
    /// Absolute path of the volume directory.
    public var path: String
    public var plugin: PluginName
    public var name: String
    public var scan: VolumeScan

    public init(path: String, plugin: PluginName, name: String, scan: VolumeScan) {
        self.path = path
        self.plugin = plugin
        self.name = name
        self.scan = scan
    }
}

/// One `<root>/pods/<uid>` directory and its volumes.
public struct PodDirectory: Sendable, Hashable {
    public var uid: String
    public var path: String
    public var kind: PodDirectoryKind
    /// When the directory appeared: birth time, or ctime where the file system has none.
    public var appearedAt: Date
    public var volumes: [PodVolume]

    public init(uid: String, path: String, kind: PodDirectoryKind, appearedAt: Date, volumes: [PodVolume]) {
        self.uid = uid
        self.path = path
        self.kind = kind
        self.appearedAt = appearedAt
        self.volumes = volumes
    }
}

/// Everything discovery found under one kubelet root.
public struct NodeInventory: Sendable, Hashable {
    public var kubeletRoot: String
    public var pods: [PodDirectory]
    /// Problems with the tree itself (unreadable pods dir...), one line each.
    public var errors: [String]

    public init(kubeletRoot: String, pods: [PodDirectory], errors: [String] = []) {
        self.kubeletRoot = kubeletRoot
        self.pods = pods
        self.errors = errors
    }
}
