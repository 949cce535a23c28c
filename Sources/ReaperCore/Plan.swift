import Foundation

/// Reap or keep.
public enum VerdictKind: String, Sendable, Hashable, Codable {
    case reap, keep
}

/// The judgement of one volume, as `--plan --json` and the socket API show it.
public struct VolumeVerdict: Sendable, Hashable, Codable {
    /// Absolute volume directory.
    public var path: String
    public var podUID: String
    public var namespace: String?
    /// Pod name; nil for orphans.
    public var pod: String?
    /// The pod's phase as its manifests say; nil for orphans and static pods.
    public var podPhase: String?
    /// No manifest lists the pod (and it is no static pod).
    public var orphan: Bool
    public var plugin: PluginName
    public var name: String
    public var verdict: VerdictKind
    public var reasons: [Reason]
    public var lastAccess: Date?
    public var lastAccessSource: LastAccessSource?
    public var idleSeconds: Int
    public var bytes: UInt64
    public var files: Int
    public var mounted: Bool
    /// Mount points at or under the volume, for people.
    public var mounts: [MountInfo]
    /// Kept only for time-based reasons: when it becomes reapable if nothing
    /// touches it again. nil for every other verdict.
    public var reapableAt: Date?

    public init(
        path: String, podUID: String, namespace: String?, pod: String?, podPhase: String?, orphan: Bool,
        plugin: PluginName, name: String, verdict: VerdictKind, reasons: [Reason], lastAccess: Date?,
        lastAccessSource: LastAccessSource?, idleSeconds: Int, bytes: UInt64, files: Int, mounted: Bool,
        mounts: [MountInfo]
    ) {
        self.path = path
        self.podUID = podUID
        self.namespace = namespace
        self.pod = pod
        self.podPhase = podPhase
        self.orphan = orphan
        self.plugin = plugin
        self.name = name
        self.verdict = verdict
        self.reasons = reasons
        self.lastAccess = lastAccess
        self.lastAccessSource = lastAccessSource
        self.idleSeconds = idleSeconds
        self.bytes = bytes
        self.files = files
        self.mounted = mounted
        self.mounts = mounts
    }

    // Explicit keys so that nil fields are written as null: the contract has
    // `pod: null` for orphans.
    enum CodingKeys: String, CodingKey {
        case path, podUID, namespace, pod, podPhase, orphan, plugin, name, verdict, reasons
        case lastAccess, lastAccessSource, idleSeconds, bytes, files, mounted, mounts, reapableAt
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(podUID, forKey: .podUID)
        try container.encode(namespace, forKey: .namespace)
        try container.encode(pod, forKey: .pod)
        try container.encode(podPhase, forKey: .podPhase)
        try container.encode(orphan, forKey: .orphan)
        try container.encode(plugin, forKey: .plugin)
        try container.encode(name, forKey: .name)
        try container.encode(verdict, forKey: .verdict)
        try container.encode(reasons, forKey: .reasons)
        try container.encode(lastAccess, forKey: .lastAccess)
        try container.encode(lastAccessSource, forKey: .lastAccessSource)
        try container.encode(idleSeconds, forKey: .idleSeconds)
        try container.encode(bytes, forKey: .bytes)
        try container.encode(files, forKey: .files)
        try container.encode(mounted, forKey: .mounted)
        try container.encode(mounts, forKey: .mounts)
        try container.encode(reapableAt, forKey: .reapableAt)
    }

    /// Turns a reap into a keep for `reason` (limits, last checks).
    public mutating func keep(because reason: Reason) {
        verdict = .keep
        reasons = [reason]
        reapableAt = nil
    }
}

/// What the plan says about the pod view it judged orphans by (JSON key
/// `manifests`, kept for compatibility whatever the source).
public struct ManifestSummary: Sendable, Hashable, Codable {
    /// `files`, `apiserver` or `kubelet`.
    public var source: PodSourceKind
    /// The manifests path, or the URL the pods were asked from.
    public var path: String
    public var refreshedAt: Date?
    public var complete: Bool
    /// The source follows the server (always true for files).
    public var synced: Bool
    /// The API server's resource version of the view; nil for the other sources.
    public var resourceVersion: String?
    public var errors: [String]
    public var files: Int
    public var pods: Int

    public init(
        source: PodSourceKind = .files, path: String, refreshedAt: Date?, complete: Bool, synced: Bool = true,
        resourceVersion: String? = nil, errors: [String], files: Int, pods: Int
    ) {
        self.source = source
        self.path = path
        self.refreshedAt = refreshedAt
        self.complete = complete
        self.synced = synced
        self.resourceVersion = resourceVersion
        self.errors = errors
        self.files = files
        self.pods = pods
    }

    enum CodingKeys: String, CodingKey { case source, path, refreshedAt, complete, synced, resourceVersion, errors, files, pods }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        source = try container.decodeIfPresent(PodSourceKind.self, forKey: .source) ?? .files
        path = try container.decode(String.self, forKey: .path)
        refreshedAt = try container.decodeIfPresent(Date.self, forKey: .refreshedAt)
        complete = try container.decode(Bool.self, forKey: .complete)
        synced = try container.decodeIfPresent(Bool.self, forKey: .synced) ?? true
        resourceVersion = try container.decodeIfPresent(String.self, forKey: .resourceVersion)
        errors = try container.decode([String].self, forKey: .errors)
        files = try container.decode(Int.self, forKey: .files)
        pods = try container.decode(Int.self, forKey: .pods)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(source, forKey: .source)
        try container.encode(path, forKey: .path)
        try container.encode(refreshedAt, forKey: .refreshedAt)
        try container.encode(complete, forKey: .complete)
        try container.encode(synced, forKey: .synced)
        try container.encode(resourceVersion, forKey: .resourceVersion)
        try container.encode(errors, forKey: .errors)
        try container.encode(files, forKey: .files)
        try container.encode(pods, forKey: .pods)
    }
}

/// Counts over the plan.
public struct PlanSummary: Sendable, Hashable, Codable {
    public var reap: Int
    public var keep: Int
    /// Bytes the reaps would free.
    public var bytes: UInt64

    public init(reap: Int, keep: Int, bytes: UInt64) {
        self.reap = reap
        self.keep = keep
        self.bytes = bytes
    }
}

/// A condition an operator must hear about (the orphan circuit breaker).
extension Plan {
    /// The codes a plan alert can carry (the orphan circuit breakers).
    public static let alertCodes: [Reason] = [.limitOrphanFraction, .podViewShrank]
}

public struct PlanAlert: Sendable, Hashable, Codable {
    public var code: Reason
    public var message: String

    public init(code: Reason, message: String) {
        self.code = code
        self.message = message
    }
}

/// One reconcile pass's output: every discovered volume with its verdict.
public struct Plan: Sendable, Hashable, Codable {
    public var generatedAt: Date
    public var kubeletRoot: String
    public var manifests: ManifestSummary
    public var summary: PlanSummary
    public var alerts: [PlanAlert]
    public var volumes: [VolumeVerdict]
    /// Pod directories (whole) that an orphan cleanup may remove after their volumes.
    public var orphanPodDirectories: [String]
    /// The disk pressure the plan was made under (policy with a `pressure`
    /// section): the kubelet root's filesystem.
    public var pressure: PressureAssessment?
    /// The other filesystems holding volume directories, each judged on its
    /// own; nil when every volume is on the kubelet root's.
    public var pressureElsewhere: [PressureAssessment]?

    /// Every filesystem measured, the kubelet root's first.
    public var pressureFilesystems: [PressureAssessment] { (pressure.map { [$0] } ?? []) + (pressureElsewhere ?? []) }

    public init(
        generatedAt: Date, kubeletRoot: String, manifests: ManifestSummary, alerts: [PlanAlert],
        volumes: [VolumeVerdict], orphanPodDirectories: [String]
    ) {
        self.generatedAt = generatedAt
        self.kubeletRoot = kubeletRoot
        self.manifests = manifests
        self.alerts = alerts
        self.volumes = volumes
        self.orphanPodDirectories = orphanPodDirectories
        self.summary = PlanSummary(reap: 0, keep: 0, bytes: 0)
        recount()
    }

    /// Recomputes `summary` from `volumes`.
    public mutating func recount() {
        let reaps = volumes.filter { $0.verdict == .reap }
        summary = PlanSummary(reap: reaps.count, keep: volumes.count - reaps.count, bytes: reaps.reduce(0) { $0 + $1.bytes })
    }

    public var reaps: [VolumeVerdict] { volumes.filter { $0.verdict == .reap } }

    /// The last check before deletion kept these volumes (path -> its
    /// reasons): a plan served after the cycle says so, instead of listing
    /// them as idle until the next cycle.
    public mutating func keepAfterLastCheck(_ kept: [String: [Reason]]) {
        guard !kept.isEmpty else { return }
        for index in volumes.indices {
            guard let reasons = kept[volumes[index].path] else { continue }
            volumes[index].verdict = .keep
            volumes[index].reasons = reasons.filter(\.keeps).isEmpty ? [.inconclusive] : reasons.filter(\.keeps)
            volumes[index].reapableAt = nil
        }
        orphanPodDirectories.removeAll { directory in kept.keys.contains { $0.hasPrefix(directory + "/") } }
        recount()
    }

    /// The plan as the JSON contract of design §6 writes it.
    public func jsonData(pretty: Bool = true) throws -> Data {
        try Self.encoder(pretty: pretty).encode(self)
    }

    public static func encoder(pretty: Bool = true) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
