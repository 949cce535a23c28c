import Foundation
import Logging
import PodManifests
import ReaperCore
import Synchronization

/// Manifest files under `--manifests`, written by someone else (a kubectl
/// timer, config management). Read again whenever a stat-only fingerprint of
/// the files (names, inodes, sizes, mtimes, ctimes) changed, or the last read
/// had errors (a file still settling may be complete now); otherwise the last
/// snapshot stands. The daemon's watcher reports changes to the path.
public final class FilesPodSource: PodSource {
    public var kind: PodSourceKind { .files }
    let path: String
    let settleTime: TimeInterval
    let maxFileBytes: Int
    let logger: Logger?
    private let last = Mutex<PodSnapshot?>(nil)

    /// `logger`: where a wait for a file still settling is told.
    public init(
        path: String, settleTime: TimeInterval = ManifestReader.defaultSettleTime, maxFileBytes: Int = ManifestReader.defaultMaxFileBytes,
        logger: Logger? = nil
    ) {
        self.path = path
        self.settleTime = settleTime
        self.maxFileBytes = maxFileBytes
        self.logger = logger
    }

    public convenience init(settings: PodSourceSettings, logger: Logger? = nil) {
        self.init(path: settings.manifests, settleTime: settings.manifestSettleTime, maxFileBytes: settings.maxDocumentBytes, logger: logger)
    }

    /// Blocking (file reads, and a wait of up to `settleTime` for a file
    /// still being written): called only on a `BlockingWork` queue, where
    /// the plan and the last checks run.
    public func currentSnapshot() -> PodSnapshot {
        if let known = last.withLock({ $0 }), known.errors.isEmpty, let fingerprint = known.fingerprint,
           ManifestReader.fingerprint(path: path) == fingerprint {
            return known
        }
        var snapshot = ManifestReader.read(path: path, settle: settleTime, maxFileBytes: maxFileBytes, willWait: { [logger, path, settleTime] seconds in
            // Otherwise a plan that takes seconds longer than usual is unexplained.
            logger?.info(
                "waiting for a manifest changed moments ago to settle",
                metadata: ["path": "\(path)", "wait_seconds": "\(String(format: "%.2f", seconds))", "settle_seconds": "\(settleTime)"]
            )
        })
        return last.withLock { known in
            // What this write dropped of the last one's pods, held for as
            // long as the files stay this write (`pod-view-shrank`).
            if let known {
                snapshot.droppedWithoutDelete = known.fingerprint != nil && known.fingerprint == snapshot.fingerprint
                    ? known.droppedWithoutDelete
                    : Set(known.pods.map(\.uid)).subtracting(snapshot.pods.map(\.uid))
            }
            known = snapshot
            return snapshot
        }
    }

    /// From the last read only, never reading: a read may wait `settleTime`
    /// for a file still being written, and `/healthz` and the metrics scrape
    /// ask this on Swift's cooperative threads. Before the first read (the
    /// first cycle's): `syncing`.
    public func status() -> PodSourceStatus {
        guard let snapshot = last.withLock({ $0 }) else {
            return PodSourceStatus(kind: .files, endpoint: path, state: .syncing)
        }
        var status = PodSourceStatus(kind: .files, endpoint: path, state: snapshot.isComplete ? .synced : .failing)
        status.problem = snapshot.errors.first?.description ?? (snapshot.files.isEmpty ? "no manifest file under \(path)" : nil)
        status.problemKind = status.problem == nil ? nil : "manifests"
        status.refreshedAt = snapshot.refreshedAt
        status.pods = snapshot.pods.count
        return status
    }
}

/// The source the settings name, for one pass (`--plan`, `--once`): the
/// network sources ask once (one LIST, one poll) and hold that answer.
public enum PodSourceFactory {
    public static func oneShot(_ settings: PodSourceSettings, logger: Logger) async -> any PodSource {
        switch settings.kind {
        case .files:
            return FilesPodSource(settings: settings, logger: logger)
        case .apiserver:
            let source = APIServerPodSource(settings: settings, logger: logger)
            await source.listOnce()
            return source
        case .kubelet:
            let source = KubeletPodSource(settings: settings, logger: logger)
            await source.pollOnce()
            return source
        }
    }
}
