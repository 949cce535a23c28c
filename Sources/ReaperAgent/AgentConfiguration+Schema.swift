import BoundedYAML

/// The keys a config file (and each drop-in) may hold, with README's
/// configuration reference: the reader refuses any other key, and README's
/// tables are `referenceTable`s of this (a test holds them equal).
extension AgentConfiguration {
    public static let schema = YAMLSchema([
        YAMLSection("", noun: "setting", keys: [
            YAMLKey("kubeletRoot", default: "`/var/lib/kubelet`", "as `--kubelet-root`"),
            YAMLKey("manifests", default: "`/var/lib/volume-reaper/manifests`", "as `--manifests`"),
            YAMLKey("policy", default: "`/etc/volume-reaper/policy.yaml`, else the built-in default", "as `--policy`"),
            YAMLKey("stateDir", default: "`/var/lib/volume-reaper`", "as `--state-dir`"),
            YAMLKey("socket", default: "`/run/volume-reaper/api.sock`", "as `--socket`"),
            YAMLKey("socketGroup", default: "none (root)", "group of the API socket (mode 0660)"),
            YAMLKey("reconcileInterval", default: "`60s`", "time between reconcile (and reap) cycles"),
            YAMLKey("flushInterval", default: "`5s`", "how often watched accesses are written to the store"),
            YAMLKey("pollInterval", default: "`30s`", "how often volumes beyond the inotify budget are polled for mtimes"),
            YAMLKey("reconcileStuckAfter", default: "max(5 × `reconcileInterval`, 5m)", "a cycle running longer is reported `stuck` (see below)"),
            YAMLKey("fullScanInterval", default: "`1h`", "the daemon walks every volume at least this often; in between only volumes that may have changed (see \"The scan cache\")"),
            YAMLKey("maxWatches", default: "what the kernel allows", "cap on inotify watches"),
            YAMLKey("watchReads", default: "`false`", "also count reads (`IN_ACCESS`), not only opens and writes"),
            YAMLKey("maxManifestBytes", default: "`64Mi`", "size limit of one manifest file, LIST answer or watch event (bytes, or with `Ki`, `Mi`, `Gi`; at most `1Gi`); a larger one is an error, read no further"),
            YAMLKey("podSource", default: "`kind: files`", "where pods come from: a mapping, see [Where pods come from](#where-pods-come-from)"),
            YAMLKey("dryRun", default: "`false` (the packaged config: `true`)", "observe mode: log what would be reaped, delete nothing (as `run --plan`); SIGHUP re-reads it"),
            YAMLKey("logTarget", default: "`auto`", "as `--log-target`"),
            YAMLKey("logLevel", default: "`info`", "as `--log-level`"),
            YAMLKey("cgroupRoot", default: "`/sys/fs/cgroup`", "as `--cgroup-root`"),
            YAMLKey("procRoot", default: "`/proc`", "where /proc is mounted: the kubelet process's `/proc/<pid>/cgroup` tells where its pod cgroups are"),
            YAMLKey("metrics"),
            YAMLKey("kubeletConfig", default: "`/var/lib/kubelet/config.yaml`", "as `--kubelet-config`"),
        ]),
        YAMLSection("podSource", noun: "setting", keys: [
            YAMLKey("kind", default: "`files`", "`files`, `apiserver` or `kubelet`"),
            YAMLKey("kubeconfig", default: "none: in-cluster", "the kubeconfig to use; see below"),
            YAMLKey("context", default: "the kubeconfig's `current-context`", "a named context"),
            YAMLKey("nodeName", default: "`NODE_NAME`, then the kubeconfig user `system:node:<name>`, then the hostname", "this node's name, for the field selector and the kubelet URL"),
            YAMLKey("allowInsecureSkipTLSVerify", default: "`false`", "a kubeconfig with `insecure-skip-tls-verify: true` is refused unless this is `true`"),
            YAMLKey("bookmarkTimeout", default: "`5m`", "list again when watches bring no BOOKMARK for this long; there is no periodic relist"),
            YAMLKey("resyncInterval", default: "", "deprecated: read as `bookmarkTimeout` (a notice is logged at start); setting both is an error"),
            YAMLKey("watchTimeout", default: "`5m`", "each watch asks the server for this times 1 to 2"),
            YAMLKey("startupSpread", default: "`30s`", "the daemon's first request waits a random time in 0 to this (`0s`: none); see below"),
            YAMLKey("stallTimeout", default: "`2m`", "no byte on a watch or an answer this long: the server stalled"),
            YAMLKey("requestTimeout", default: "`30s`", "a LIST or a poll must be answered within this"),
            YAMLKey("maxBackoff", default: "`30s`", "where the doubling of retry waits stops; waits at it are drawn between it and 1.25 times it (never below 0.8 s)"),
            YAMLKey("pollInterval", default: "`15s`", "`kubelet` only: how often to ask `/pods`"),
            YAMLKey("kubeletURL", default: "`https://<nodeName>:10250`", "`kubelet` only"),
            YAMLKey("kubeletCertificateAuthority", default: "the kubeconfig's CA", "`kubelet` only: the CA of the kubelet's serving certificate"),
            YAMLKey("events", default: "`false` (the DaemonSet's config: `true`)", "`apiserver` only: report reaps as Kubernetes Events; see [Kubernetes Events](#kubernetes-events)"),
        ]),
        YAMLSection("metrics", noun: "setting", keys: [
            YAMLKey("listen", default: "none (off)", "`[HOST]:PORT`: a TCP listener for Prometheus, see [Metrics for Prometheus](#metrics-for-prometheus); `:9847` is every IPv4 address, `127.0.0.1:9847` loopback only, `[::]:9847` IPv6 (and IPv4); the host must be an IP address"),
            YAMLKey("textfile", default: "none (off)", "an absolute path ending in `.prom` for node_exporter's textfile collector, e.g. `/var/lib/node_exporter/textfile_collector/volume_reaper.prom`, rewritten after each cycle"),
        ]),
    ])

    /// README's configuration table (the `podSource` keys have their own).
    public static var reference: String { schema.referenceTable(expanding: ["metrics"]) }

    /// README's `podSource` table.
    public static var podSourceReference: String { schema.referenceTable("podSource", header: "key (under `podSource`)") }
}
