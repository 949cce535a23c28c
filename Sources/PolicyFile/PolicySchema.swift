import BoundedYAML

/// The keys a policy file may hold, in the order the shipped files use, with
/// README's policy reference: the reader refuses any other key, and
/// `PolicyDescription.reference` is made from these.
enum PolicySchema {
    static let schema = YAMLSchema([
        YAMLSection("", noun: "section", keys: [
            YAMLKey("idle"),
            YAMLKey("annotation"),
            YAMLKey("pods"),
            YAMLKey("orphans"),
            YAMLKey("volumes"),
            YAMLKey("limits"),
            YAMLKey("pressure", default: "absent: no pressure mode", "disk pressure mode, see below; `pressure: {}` turns it on with the defaults"),
        ]),
        YAMLSection("idle", keys: [
            YAMLKey("after", default: "`30m`", "no access for this long: idle"),
            YAMLKey("timestamps", default: "`[mtime]`", "tree timestamps that count as access: `mtime`, `ctime`, `atime`"),
            YAMLKey("requireObservation", default: "`false`", "reap only volumes the daemon watched for all of `idle.after`"),
            YAMLKey("maxUnobservedGap", default: "`2m`", "with `requireObservation`, a longer watch gap restarts the idle clock"),
        ]),
        YAMLSection("annotation", keys: [
            YAMLKey("key", default: "`volume.alpha.kubernetes.io/last-accessed-at`", "pod annotation with the last access (RFC 3339)"),
            YAMLKey("idleAfter", default: "`45m`", "the annotated time must be older than this"),
            YAMLKey("required", default: "`false`", "pods without the annotation are kept"),
        ]),
        YAMLSection("pods", keys: [
            YAMLKey("phases", default: "`[Succeeded, Failed]`", "phases whose volumes may go (`Running`, `Pending` refused)"),
            YAMLKey("excludeOwnerKinds", default: "`[DaemonSet, Node]`", "owner kinds never reaped (`Node` owns mirror pods)"),
            YAMLKey("excludeNamespaces", default: "`[kube-system]`", "namespaces never reaped"),
            YAMLKey("protectAnnotation", default: "`volume-reaper.io/keep`", "any value but `\"false\"` protects the pod"),
        ]),
        YAMLSection("orphans", keys: [
            YAMLKey("reap", default: "`true`", "reap pods no manifest lists"),
            YAMLKey("manifestsMaxAge", default: "`10m`", "manifests older than this cannot vouch for orphans"),
            YAMLKey("confirmAfter", default: "`2m`", "an orphan must be missing from two different contents of the pod view this far apart on the boot clock; `0` trusts one snapshot (unsafe)"),
            YAMLKey("removePodDir", default: "`true`", "after an orphan's volumes, remove the rest of its pod directory"),
        ]),
        YAMLSection("volumes", keys: [
            YAMLKey("recursive", default: "the five local kinds", "plugins whose contents may be deleted (local kinds only)"),
            YAMLKey("exclude", default: "`[]`", "plugins never touched"),
            YAMLKey("unmount", default: "`[]`", "file system types plainly unmounted before removal (local kinds only; no network types)"),
        ]),
        YAMLSection("limits", keys: [
            YAMLKey("maxReapsPerCycle", default: "`100`", "reaps per cycle, most idle first"),
            YAMLKey("maxOrphanFraction", default: "`0.5`", "more pod directories than this fraction missing from the pod view (or dropped from it at once): no orphan reaped"),
            YAMLKey("maxPodsLost", default: "`20`", "more pods (with directories) than this dropped from the pod view in one step, without DELETE events: every orphan held until a later snapshot agrees"),
        ]),
        YAMLSection("pressure", keys: [
            YAMLKey("available", default: "the kubelet's `nodefs.available` + `margin`; 15% without a kubelet config", "free space (a percentage such as `15%`, or a size such as `10Gi`) below which pressure begins"),
            YAMLKey("inodesAvailable", default: "the kubelet's `nodefs.inodesFree` (else 5%) + `margin`", "free inodes likewise (`10%` or a count such as `100k`)"),
            YAMLKey("margin", default: "`5`", "percentage points added to the kubelet's thresholds, so that we act before the kubelet evicts"),
            YAMLKey("hysteresis", default: "`5%`", "pressure ends once free space (and inodes) are this much above the threshold"),
            YAMLKey("idleAfter", default: "`5m`", "in pressure, `idle.after` for terminated pods' and orphans' volumes"),
            YAMLKey("maxReapsPerCycle", default: "`200`", "in pressure, the per-cycle cap (never below `limits.maxReapsPerCycle`)"),
            YAMLKey("checkInterval", default: "`10s`", "how often the daemon measures free space between cycles (at least `1s`): a crossing into pressure starts a cycle at once"),
        ]),
    ])

    static var sectionNames: [String] { schema[""].names }
}
