import BoundedYAML
import ClusterAccess
import Foundation
import PodSources
import ReaperCore
import SocketAPI
import SystemCalls
import Yams

/// Where the agent looks and how the daemon paces itself. Defaults are the
/// contract of design §6; a YAML file (`--config`) may set any of them and
/// command-line flags win over both.
public struct AgentConfiguration: Sendable, Hashable {
    public var kubeletRoot = "/var/lib/kubelet"
    public var manifests = "/var/lib/volume-reaper/manifests"
    /// nil: `/etc/volume-reaper/policy.yaml` if present, else the built-in default.
    public var policy: String?
    public var stateDir = "/var/lib/volume-reaper"
    public var socket = "/run/volume-reaper/api.sock"
    /// Group owning the socket (mode 0660); nil keeps root's.
    public var socketGroup: String?
    public var reconcileInterval: TimeInterval = 60
    public var flushInterval: TimeInterval = 5
    /// How often volumes the kernel refused to watch are polled for mtimes.
    public var pollInterval: TimeInterval = 30
    /// A reconcile running longer than this makes `/healthz` say `stuck`
    /// (503) and refuses `POST /v1/reconcile` at once; nil: `stuckBound`'s
    /// default, five intervals but at least five minutes.
    public var reconcileStuckAfter: TimeInterval?
    /// The daemon walks every volume at least this often; in between it
    /// re-walks only volumes the watcher saw change (issue 10).
    public var fullScanInterval: TimeInterval = 3600
    /// Upper bound on inotify watches this agent sets (nil: as many as the kernel allows).
    public var maxWatches: Int?
    /// Also count reads (`IN_ACCESS`) as access; costs events on busy volumes.
    public var watchReads = false
    /// Size limit of one manifest file: a larger file is an error (orphans kept), read no further.
    public var maxManifestBytes = 64 << 20
    public var logTarget = "auto"
    public var logLevel = "info"
    /// Where the cgroup file systems are mounted, for the pod liveness check.
    public var cgroupRoot = "/sys/fs/cgroup"
    /// Where /proc is mounted: the kubelet process's cgroup tells where its pod cgroups are.
    public var procRoot = "/proc"
    /// The kubelet's config file, for its eviction thresholds (pressure
    /// mode's default) and its `cgroupDriver` and `cgroupRoot` (the pod cgroups).
    public var kubeletConfig = "/var/lib/kubelet/config.yaml"
    /// Where pods come from (the `podSource` section). Its `manifests` and
    /// `maxDocumentBytes` follow `manifests` and `maxManifestBytes`: see `podSourceSettings`.
    public var podSource = PodSourceSettings()
    /// Observe mode: never delete, log what would be reaped (as `run --plan`).
    /// The packaged config starts with `true`; SIGHUP reads it again.
    public var dryRun = false
    /// The config file these settings were read from (nil: defaults and flags
    /// only); a reload reads `dryRun` from it (and its drop-ins) again.
    public var file: String?
    /// The drop-ins read after `file`, in the order they were merged.
    public var dropIns: [String] = []
    /// `metrics.listen`: the opt-in TCP listener for Prometheus (`/metrics`, `/healthz` only).
    public var metricsListen: TCPListenAddress?
    /// `metrics.textfile`: the opt-in node_exporter textfile, rewritten atomically after each cycle.
    public var metricsTextfile: String?

    public init() {}

    /// The pod source's settings with the top-level `manifests` path and size limit.
    public var podSourceSettings: PodSourceSettings {
        var settings = podSource
        settings.manifests = manifests
        settings.maxDocumentBytes = maxManifestBytes
        return settings
    }

    /// How long a reconcile may run before the daemon calls itself stuck:
    /// `reconcileStuckAfter`, else max(5 × reconcileInterval, 5 min). A walk
    /// of a very large node takes minutes; one on a hung NFS mount never ends.
    public var stuckBound: TimeInterval {
        reconcileStuckAfter ?? max(5 * reconcileInterval, 300)
    }

    /// A config file is small; anything larger is not one.
    public static let maximumFileSize = 1 << 20

    /// Reads a config file over the defaults, then its drop-ins
    /// (`dropInDirectory(forConfig:)`) in order over it: each opened
    /// non-blocking and checked to be a regular file of at most
    /// `maximumFileSize` (a symlink to one is followed, as config management
    /// makes them). An error names the file it is in, the config file or a drop-in.
    public static func load(path: String) throws(ConfigurationError) -> AgentConfiguration {
        var configuration = try parse(readSettingsFile(path), file: path)
        let dropIns = try dropInFiles(in: dropInDirectory(forConfig: path))
        for dropIn in dropIns {
            configuration = try parse(readSettingsFile(dropIn), file: dropIn, over: configuration)
        }
        configuration.file = path
        configuration.dropIns = dropIns
        return configuration
    }

    /// The settings of `text` (from `file`, for messages) over `base`: each
    /// key found replaces `base`'s, the sections `podSource` and `metrics`
    /// key by key.
    public static func parse(
        _ text: String, file: String, over base: AgentConfiguration = AgentConfiguration()
    ) throws(ConfigurationError) -> AgentConfiguration {
        var configuration = base
        let documents: [Node]
        do {
            documents = try BoundedYAML.documents(text, limits: .settings).filter { !isNull($0) }
        } catch {
            throw ConfigurationError(file: file, field: nil, message: "\(error)")
        }
        guard documents.count <= 1 else {
            throw ConfigurationError(file: file, field: nil, message: "more than one YAML document; a config file holds one")
        }
        guard let root = documents.first else { return configuration }
        guard root.mapping != nil else {
            throw ConfigurationError(file: file, field: nil, message: "must be a mapping of settings")
        }
        for (key, setting) in try sectionSettings(of: root, section: "", file: file) {
            let value = setting.value
            let shown = setting.shown
            switch key {
            case "kubeletRoot": configuration.kubeletRoot = try setting.string()
            case "manifests": configuration.manifests = try setting.string()
            case "policy": configuration.policy = try setting.string()
            case "stateDir": configuration.stateDir = try setting.string()
            case "cgroupRoot": configuration.cgroupRoot = try setting.string()
            case "procRoot": configuration.procRoot = try setting.string()
            case "socket": configuration.socket = try setting.string()
            case "socketGroup": configuration.socketGroup = try setting.string()
            case "reconcileInterval": configuration.reconcileInterval = try setting.duration()
            case "flushInterval": configuration.flushInterval = try setting.duration()
            case "pollInterval": configuration.pollInterval = try setting.duration()
            case "reconcileStuckAfter": configuration.reconcileStuckAfter = try setting.duration()
            case "fullScanInterval": configuration.fullScanInterval = try setting.duration()
            case "kubeletConfig": configuration.kubeletConfig = try setting.string()
            case "maxWatches":
                let text = try setting.string()
                guard text.allSatisfy({ $0.isASCII && $0.isNumber }), !text.hasPrefix("0"), let count = Int(text), count > 0 else {
                    throw ConfigurationError(file: file, field: key, message: "must be a positive integer (got \"\(shown)\")")
                }
                configuration.maxWatches = count
            case "watchReads":
                configuration.watchReads = try setting.boolean()
            case "dryRun":
                configuration.dryRun = try setting.boolean()
            case "maxManifestBytes":
                let text = try setting.string()
                guard let bytes = ByteSizeText.parse(text), (1...ByteSizeText.maximumManifestBytes).contains(bytes) else {
                    throw ConfigurationError(file: file, field: key, message: "must be a size from 1 to 1Gi bytes, like 67108864 or 64Mi (got \"\(text.prefix(64))\")")
                }
                configuration.maxManifestBytes = bytes
            case "podSource":
                configuration.podSource = try parsePodSource(value, file: file, over: configuration.podSource)
            case "metrics":
                try parseMetrics(value, file: file, into: &configuration)
            case "logTarget":
                let text = try setting.string()
                guard ["auto", "journald", "stderr"].contains(text) else {
                    throw ConfigurationError(file: file, field: key, message: "must be auto, journald or stderr (got \"\(shown)\")")
                }
                configuration.logTarget = text
            case "logLevel":
                let text = try setting.string()
                guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(text) else {
                    throw ConfigurationError(file: file, field: key, message: "must be a log level such as info or debug (got \"\(shown)\")")
                }
                configuration.logLevel = text
            default:
                throw setting.unread()
            }
        }
        return configuration
    }
}

/// A config file the agent refuses, one line naming file and field.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var field: String?
    public var message: String

    public var description: String {
        [UserText.excerpt(file, limit: 1024), field, message].compactMap { $0 }.joined(separator: ": ")
    }
}

extension AgentConfiguration {
    /// The `podSource` section: a mapping of the keys of `schema["podSource"]`.
    static func parsePodSource(
        _ node: Node, file: String, over base: PodSourceSettings = PodSourceSettings()
    ) throws(ConfigurationError) -> PodSourceSettings {
        var settings = base
        var bookmarkKey: String?
        for (key, setting) in try sectionSettings(of: node, section: "podSource", file: file) {
            let field = setting.field
            let shown = setting.shown
            func url() throws(ConfigurationError) -> String {
                let text = try setting.string()
                // The pod source's own rules (a port of 1-65535 above all), so
                // that a URL refused there is refused here, before anything runs.
                let checked: String
                do {
                    checked = try ClusterURL.validated(text, field: field)
                } catch {
                    throw ConfigurationError(file: file, field: field, message: error.message)
                }
                guard checked.lowercased().hasPrefix("https://") else {
                    throw ConfigurationError(file: file, field: field, message: "must be an https:// URL with a host and no query or user (got \"\(shown)\")")
                }
                return checked
            }
            switch key {
            case "kind":
                let text = try setting.string()
                guard let kind = PodSourceKind(rawValue: text) else {
                    throw ConfigurationError(file: file, field: field, message: "must be files, apiserver or kubelet (got \"\(shown)\")")
                }
                settings.kind = kind
            case "kubeconfig": settings.access.kubeconfig = try setting.string()
            case "context": settings.access.context = try setting.string()
            case "nodeName":
                let text = try setting.string()
                guard NodeName.isValid(text) else {
                    throw ConfigurationError(file: file, field: field, message: "must be a node name: lowercase letters, digits, '-' and '.', at most 253 (got \"\(shown)\")")
                }
                settings.nodeName = text
            case "allowInsecureSkipTLSVerify":
                settings.access.allowInsecureSkipTLSVerify = try setting.boolean()
            case "bookmarkTimeout", "resyncInterval":
                // resyncInterval (a periodic relist, gone) is read as
                // bookmarkTimeout: a server that sends no bookmarks is still
                // relisted that often, one that does is not relisted at all.
                if let other = bookmarkKey, other != key {
                    throw ConfigurationError(file: file, field: field, message: "set only podSource.bookmarkTimeout (podSource.resyncInterval is its deprecated name)")
                }
                bookmarkKey = key
                settings.bookmarkTimeout = try setting.duration()
                if key == "resyncInterval" {
                    settings.notices.append(
                        "\(UserText.excerpt(file, limit: 1024)): podSource.resyncInterval is deprecated and read as podSource.bookmarkTimeout: the agent no longer relists periodically, only when watches bring no BOOKMARK for this long"
                    )
                }
            case "startupSpread":
                // 0 is allowed here (no wait), unlike the other durations.
                if ["0", "0s"].contains(try setting.string()) {
                    settings.startupSpread = 0
                } else {
                    settings.startupSpread = try setting.duration()
                }
            case "events": settings.events = try setting.boolean()
            case "watchTimeout": settings.watchTimeout = try setting.duration()
            case "stallTimeout": settings.stallTimeout = try setting.duration()
            case "pollInterval": settings.pollInterval = try setting.duration()
            case "requestTimeout": settings.requestTimeout = try setting.duration()
            case "maxBackoff": settings.maxBackoff = try setting.duration()
            case "kubeletURL": settings.kubeletURL = try url()
            case "kubeletCertificateAuthority": settings.kubeletCertificateAuthority = try setting.string()
            default:
                throw setting.unread()
            }
        }
        return settings
    }

    /// The settings of the section at `path` ("" for the top level), each
    /// key checked against `schema` (a near miss named) and its value named
    /// `<section>.<key>` in messages. A section with no value is empty.
    static func sectionSettings(of node: Node, section path: String, file: String) throws(ConfigurationError) -> [(key: String, setting: ConfigSetting)] {
        do {
            return try schema.entries(of: node, section: path).map { ($0.key, ConfigSetting($0.value, file: file, field: $0.field)) }
        } catch {
            let got = error.code == .notAMapping ? " (got \"\(UserText.excerpt(error.value, quoting: true))\")" : ""
            throw ConfigurationError(file: file, field: UserText.excerpt(error.field, limit: 128), message: error.problem + got)
        }
    }

    /// The `metrics` section: `listen` (`[HOST]:PORT`) and `textfile` (an absolute path).
    static func parseMetrics(_ node: Node, file: String, into configuration: inout AgentConfiguration) throws(ConfigurationError) {
        for (key, setting) in try sectionSettings(of: node, section: "metrics", file: file) {
            let field = setting.field
            let text = try setting.string()
            let shown = setting.shown
            switch key {
            case "listen":
                guard let address = TCPListenAddress(text) else {
                    throw ConfigurationError(
                        file: file, field: field,
                        message: "must be [HOST]:PORT with an IP address or no host, like :9847, 127.0.0.1:9847 or [::1]:9847 (got \"\(shown)\")"
                    )
                }
                configuration.metricsListen = address
            case "textfile":
                guard text.hasPrefix("/"), text.hasSuffix(".prom"), !text.hasSuffix("/.prom") else {
                    throw ConfigurationError(
                        file: file, field: field,
                        message: "must be an absolute path ending in .prom (node_exporter reads only those) (got \"\(shown)\")"
                    )
                }
                configuration.metricsTextfile = text
            default:
                throw setting.unread()
            }
        }
    }

    static func isNull(_ node: Node) -> Bool {
        guard case let .scalar(scalar) = node else { return false }
        return Tag.Name(rawValue: node.tag.rawValue) == .null && scalar.style == .plain
    }

    /// An interval as a `Duration`, clamped into `DurationText.intervalRange`
    /// (the config reader and the flags refuse anything outside it; this only
    /// makes sure no value can trap in the conversion).
    static func pacing(_ seconds: TimeInterval) -> Duration {
        let range = DurationText.intervalRange
        let clamped = seconds.isNaN ? range.lowerBound : min(max(seconds, range.lowerBound), range.upperBound)
        return .milliseconds(Int64((clamped * 1000).rounded()))
    }
}

/// One setting's value in a config file, read as the types settings have;
/// each problem names the file and the setting.
struct ConfigSetting {
    let value: Node
    let file: String
    let field: String

    init(_ value: Node, file: String, field: String) {
        self.value = value
        self.file = file
        self.field = field
    }

    /// A key of `AgentConfiguration.schema` that no reader reads: a bug,
    /// refused rather than ignored.
    func unread() -> ConfigurationError {
        ConfigurationError(file: file, field: field, message: "known to the schema but not read; please report this")
    }

    /// The value as it may be quoted in a message.
    var shown: String { value.scalar.map { UserText.excerpt($0.string, quoting: true) } ?? "" }

    func string() throws(ConfigurationError) -> String {
        guard let scalar = value.scalar, !scalar.string.isEmpty else {
            throw ConfigurationError(file: file, field: field, message: "must be a non-empty string")
        }
        return scalar.string
    }

    /// `true` or `false` as the policy reads them (`ScalarGrammar.boolean`):
    /// a quoted "true" is text here too.
    func boolean() throws(ConfigurationError) -> Bool {
        guard let scalar = value.scalar else {
            throw ConfigurationError(file: file, field: field, message: "must be true or false")
        }
        switch ScalarGrammar.boolean(scalar) {
        case .success(let flag): return flag
        case .failure(let problem):
            throw ConfigurationError(file: file, field: field, message: "\(problem) (got \"\(shown)\")")
        }
    }

    /// A positive duration within `DurationText.intervalRange`.
    func duration() throws(ConfigurationError) -> TimeInterval {
        let text = try string()
        switch ScalarGrammar.duration(text, range: DurationText.intervalRange, zero: false) {
        case .success(let seconds): return seconds
        case .failure(let problem):
            throw ConfigurationError(file: file, field: field, message: "\(problem) (got \"\(shown)\")")
        }
    }
}

/// A byte count: digits, optionally with a binary suffix `Ki`, `Mi` or `Gi`.
enum ByteSizeText {
    /// A manifest file is read whole into memory: 1 GiB at most.
    static let maximumManifestBytes = 1 << 30

    static func parse(_ text: String) -> Int? {
        let units: [(String, Int)] = [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)]
        var digits = Substring(text)
        var unit = 1
        if let match = units.first(where: { text.hasSuffix($0.0) }) {
            let (suffix, factor) = match
            digits = digits.dropLast(suffix.count)
            unit = factor
        }
        guard !digits.isEmpty, digits.count <= 12, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let count = Int(digits) else { return nil }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: unit)
        return overflow ? nil : bytes
    }
}
