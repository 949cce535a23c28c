import Foundation
import Reaper
import ReaperCore

/// The journald `MESSAGE` of a reap event (issue 19): what went and whose,
/// "reaped emptyDir scratch of pod batch/job-x (12.3 MiB, idle 2h)", so that
/// eleven reaps read as eleven things in `journalctl`, not eleven identical
/// lines. Searching and alerting use the structured fields (`MESSAGE_ID`,
/// `VOLUME_PATH`, `POD_NAME` ...), which stay as they were.
enum ReapMessageText {
    /// `emptyDir scratch of pod batch/job-x`, `configMap conf of orphan pod <uid>`.
    /// Names come from manifests and directory names: escaped, so that none
    /// can split the line (Kubernetes names are at most 253 characters).
    static func volume(_ verdict: VolumeVerdict) -> String {
        func shown(_ text: String) -> String { UserText.excerpt(text, limit: 253) }
        let owner: String
        if let pod = verdict.pod {
            owner = "pod \(verdict.namespace.map { "\(shown($0))/" } ?? "")\(shown(pod))"
        } else {
            owner = "orphan pod \(shown(verdict.podUID))"
        }
        return "\(shown(pluginWord(verdict.plugin.unescaped))) \(shown(verdict.name)) of \(owner)"
    }

    /// The Kubernetes name of the volume type for the in-tree plugins people
    /// know by it (`kubernetes.io/empty-dir` is an `emptyDir`); others as the plugin.
    static func pluginWord(_ plugin: String) -> String {
        let known = [
            "kubernetes.io/empty-dir": "emptyDir", "kubernetes.io/configmap": "configMap", "kubernetes.io/secret": "secret",
            "kubernetes.io/projected": "projected", "kubernetes.io/downward-api": "downwardAPI", "kubernetes.io/csi": "csi volume",
            "kubernetes.io/git-repo": "gitRepo",
        ]
        return known[plugin] ?? plugin
    }

    /// `12.3 MiB, idle 2h`.
    static func sizeAndIdle(bytes: UInt64, idleSeconds: Int) -> String {
        "\(ByteCountText.format(bytes)), idle \(DurationText.format(TimeInterval(idleSeconds)))"
    }

    static func message(_ outcome: ReapOutcome) -> String {
        let verdict = outcome.verdict
        let what = volume(verdict)
        let reasons = outcome.reasons.map(\.rawValue).joined(separator: ", ")
        switch outcome.action {
        case .reaped:
            return "reaped \(what) (\(sizeAndIdle(bytes: outcome.stats.bytesFreed, idleSeconds: verdict.idleSeconds)))"
        case .wouldReap:
            return "would reap \(what) (\(sizeAndIdle(bytes: verdict.bytes, idleSeconds: verdict.idleSeconds)); dry run)"
        case .keptAtLastCheck:
            return "kept \(what) at the last check before deletion (\(reasons))"
        case .refusedByLimits:
            return "reap of \(what) refused by limits (\(reasons))"
        case .failed:
            return "reap of \(what) failed; the volume is kept (\(outcome.detail ?? reasons))"
        case .partiallyReaped:
            return "reap of \(what) stopped part way after \(ByteCountText.format(outcome.stats.bytesFreed)) and \(outcome.stats.filesRemoved) files; what remains is kept (\(outcome.detail ?? reasons))"
        }
    }
}
