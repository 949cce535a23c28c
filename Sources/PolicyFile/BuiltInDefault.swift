// The built-in policy: an exact copy of policies/default.yaml, used when neither
// --policy nor /etc/volume-reaper/policy.yaml exists. A test checks that it
// equals the file byte for byte and parses to `Policy.defaults`; when editing
// policies/default.yaml, paste it here unchanged (the blank line before the
// closing delimiter keeps the file's final newline).

extension PolicyLoader {
    /// `policies/default.yaml`, verbatim.
    public static let builtInDefaultYAML: String = #"""
# volume-reaper default policy.
#
# For: most nodes. This is what volume-reaper uses when neither --policy nor
# /etc/volume-reaper/policy.yaml exists (the binary carries a copy of this
# file). Copy it to /etc/volume-reaper/policy.yaml to change it.
#
# Trades: disk space freed within about an hour of a pod finishing, against a
# small risk for a volume that is read but never written after 30 minutes of
# quiet. Any key left out takes the value shown here.
#
# Durations: 500ms, 90s, 30m, 1h30m, 2d (a bare number is refused: 30 seconds
# or 30 minutes?). Plugins: kubernetes.io/empty-dir or kubernetes.io~empty-dir.
# Check a policy with: volume-reaper policy check FILE

idle:
  # A volume is idle after no access for this long. Long enough that a job
  # paused between steps, or a pod slow to restart, keeps its data.
  after: 30m
  # Tree timestamps that count as access when the daemon saw no events (before
  # it started, while it was stopped, for one-shot runs). mtime is written by
  # every change; add ctime to also count chmod/chown/link changes, atime only
  # on mounts with strictatime.
  timestamps: [mtime]
  # true: reap only volumes the daemon watched for all of idle.after. Off by
  # default so a node is cleaned up even right after the agent is installed.
  requireObservation: false
  # With requireObservation, a watch gap longer than this (a restart, an
  # upgrade) restarts the idle clock. Two minutes covers a rolling restart.
  maxUnobservedGap: 2m

annotation:
  # Pod annotation with the last access time (RFC 3339) that a workload or a
  # sidecar may set; it is honoured when present. An unparseable value keeps
  # the volume.
  key: volume.alpha.kubernetes.io/last-accessed-at
  # The annotated time must be older than this. Longer than idle.after: a
  # workload that says when it last used its volume is taken at its word, with
  # a margin.
  idleAfter: 45m
  # true: pods without the annotation are never reaped. Off, since most
  # workloads do not set it.
  required: false

pods:
  # Only pods in these phases lose their volumes: terminal phases, final in
  # Kubernetes. Running and Pending are refused here: live pods are never
  # reaped.
  phases: [Succeeded, Failed]
  # Pods owned by these kinds are never reaped: DaemonSet pods come back on the
  # same node and expect their data; Node owns mirror pods of static pods.
  excludeOwnerKinds: [DaemonSet, Node]
  # Namespaces never reaped: the cluster's own components live in kube-system.
  excludeNamespaces: [kube-system]
  # A pod with this annotation (any value but "false") is never reaped.
  protectAnnotation: volume-reaper.io/keep

orphans:
  # Reap pod directories no manifest mentions (pods deleted while the kubelet
  # was down or wedged). Only with complete manifests, at least one pod
  # listed, refreshed after the pod directory appeared.
  reap: true
  # Orphans are reaped only while the manifests are younger than this: a stale
  # snapshot may be missing pods that started since.
  manifestsMaxAge: 10m
  # A pod directory is an orphan only once it was missing from two different
  # writes of the manifests at least this far apart (seen by this agent; kept
  # in the state directory, so --once runs from a timer confirm across runs).
  # A single truncated or half-written manifest then never makes an orphan.
  # 0 trusts one snapshot: unsafe, one bad write could reap running pods.
  confirmAfter: 2m
  # After an orphan's volumes are gone, remove the rest of its pod directory
  # (etc-hosts, containers/, plugins/), which the kubelet would never clean.
  removePodDir: true

volumes:
  # Plugins whose contents may be deleted: the local kinds only, whose data
  # lives on this node (emptyDir, configMap, secret, projected, downward API).
  # Any other plugin is removed only as an empty, unmounted directory; network
  # and CSI plugins are refused here.
  recursive:
    - kubernetes.io~empty-dir
    - kubernetes.io~configmap
    - kubernetes.io~secret
    - kubernetes.io~projected
    - kubernetes.io~downward-api
  # Plugins never touched at all, e.g. [kubernetes.io/configmap].
  exclude: []
  # File system types that may be unmounted (plainly, never lazily or forced)
  # before a local volume is removed, e.g. [tmpfs] for memory-backed emptyDirs.
  # Empty: a mounted volume is kept. Network types are refused here.
  unmount: []

limits:
  # At most this many volumes reaped per cycle, most idle first; the rest wait
  # for the next cycle. Bounds the damage of any mistake.
  maxReapsPerCycle: 100
  # If more than this fraction of all pod directories are missing from the pod
  # view in one cycle, whatever else keeps them, no orphan is reaped and an
  # alert is logged: a broken or truncated snapshot must not empty a node.
  maxOrphanFraction: 0.5
  # If the pod view drops more than this many pods whose directories exist in
  # one step, without DELETE events (or more than maxOrphanFraction of them),
  # every orphan is held until a later, different snapshot agrees.
  maxPodsLost: 20

# Disk pressure mode: off unless this section is present. When a filesystem
# holding pod volumes (the kubelet root's, or a disk the pods directory or an
# emptyDir lives on) runs short, terminated pods' and orphans' volumes idle for
# pressure.idleAfter go before idle.after, the biggest first, until free space
# is back above the threshold, so the kubelet need not evict running pods.
# Running, pending, excluded and protected pods are never touched, and every
# other rule above still holds. Uncomment to enable:
#
# pressure:
#   # Free space below which pressure begins: a percentage or a size (10Gi).
#   # Unset: the kubelet's evictionHard/evictionSoft nodefs.available (from
#   # the kubelet config file) plus `margin` points; 15% without that file.
#   available: 15%
#   # Free inodes likewise; unset: the kubelet's nodefs.inodesFree + margin.
#   inodesAvailable: 10%
#   # Points added to the kubelet's thresholds, so that we act first.
#   margin: 5
#   # Pressure ends at the threshold plus this.
#   hysteresis: 5%
#   # idle.after for terminated pods' and orphans' volumes while in pressure.
#   idleAfter: 5m
#   # The per-cycle cap while in pressure (never below limits.maxReapsPerCycle).
#   maxReapsPerCycle: 200
#   # Free space is measured this often between cycles: a crossing starts a
#   # cycle at once.
#   checkInterval: 10s

"""#
}
