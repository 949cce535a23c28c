import Foundation
import Logging
import ReaperCore
import Synchronization

/// The view a network source keeps: the pods by UID (every document an
/// answer gave for a UID: with duplicates, any that keeps a volume wins, and
/// the view vouches for no orphan until they are gone), where the server's
/// stream is, when the server last vouched for all of it, and how the source
/// is doing. Shared between the source's loop and the readers (plan, last
/// checks, status); every change goes through one lock.
final class PodView: Sendable {
    private struct State {
        var pods: [String: [Pod]] = [:]
        /// UIDs the last answer listed more than once, already logged and counted.
        var duplicates: Set<String> = []
        var resourceVersion: String?
        var refreshedAt: Date?
        var listed = false
        var synced = false
        /// The view is the last whole list plus every event since, with no
        /// gap: false after a failure that may have lost an event (a bad
        /// line, a 410). While true, a watch from `resourceVersion` resumes
        /// it, and its next BOOKMARK vouches for it again.
        var continuous = false
        var status: PodSourceStatus
        /// The problem last logged, so that each change of state is logged once.
        var loggedProblem: PodSourceError?
        var cachedSnapshot: PodSnapshot?
        var endpoint: String
        /// UIDs the last whole answer dropped that the view before it listed
        /// (no DELETE event took them), and the fingerprint of that answer:
        /// held until the view's fingerprint moves on.
        var dropped: (uids: Set<String>, fingerprint: String?) = ([], nil)
        /// The annotations the reconciler reads (`Policy.annotationKeysRead`);
        /// nil until the daemon says: every annotation change wakes a cycle.
        var annotationKeysRead: Set<String>?
    }

    let kind: PodSourceKind
    private let state: Mutex<State>
    private let logger: Logger
    private let changeContinuation: AsyncStream<Void>.Continuation
    /// One element per change of the pods or of the view's trust; coalesced
    /// (a reader that is behind sees one pending change, not a backlog).
    let changes: AsyncStream<Void>

    /// How much earlier than its arrival a BOOKMARK counts as taken.
    let bookmarkMargin: TimeInterval

    init(kind: PodSourceKind, endpoint: String, bookmarkMargin: TimeInterval = PodSourceSettings.defaultBookmarkMargin, logger: Logger) {
        self.kind = kind
        self.bookmarkMargin = bookmarkMargin
        self.logger = logger
        state = Mutex(State(status: PodSourceStatus(kind: kind, endpoint: endpoint, state: .syncing), endpoint: endpoint))
        (changes, changeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func finish() { changeContinuation.finish() }

    /// From now on, a change of any other annotation is kept in the view but
    /// starts no reconcile (see `Pod.differsForReconcile`).
    func setAnnotationKeysRead(_ keys: Set<String>) {
        state.withLock { $0.annotationKeysRead = keys }
    }

    // MARK: Readers

    func snapshot() -> PodSnapshot {
        state.withLock { state in
            if let cached = state.cachedSnapshot { return cached }
            let snapshot = Self.makeSnapshot(state, kind: kind, endpoint: state.endpoint)
            state.cachedSnapshot = snapshot
            return snapshot
        }
    }

    func status() -> PodSourceStatus {
        state.withLock { state in
            var status = state.status
            status.pods = state.pods.values.reduce(0) { $0 + $1.count }
            status.refreshedAt = state.refreshedAt
            status.resourceVersion = state.resourceVersion
            return status
        }
    }

    var resourceVersion: String? { state.withLock { $0.resourceVersion } }

    /// Whether a watch from `resourceVersion` can carry the view on without
    /// a new list (see `State.continuous`).
    var canResume: Bool { state.withLock { $0.listed && $0.continuous && $0.resourceVersion != nil } }

    /// The URL the pods are asked from, once the credentials said where.
    func setEndpoint(_ endpoint: String) {
        update { state in
            state.endpoint = endpoint
            state.status.endpoint = endpoint
            return false
        }
    }

    private static func makeSnapshot(_ state: State, kind: PodSourceKind, endpoint: String) -> PodSnapshot {
        let pods = state.pods.values.joined().sorted { ($0.namespace, $0.name, $0.uid) < ($1.namespace, $1.name, $1.uid) }
        var errors = state.synced ? [] : state.status.problem.map { [ManifestError(file: endpoint, message: $0)] } ?? []
        errors += duplicateErrors(state, endpoint: endpoint)
        let fingerprint = contentFingerprint(state, kind: kind)
        return PodSnapshot(
            source: kind, path: endpoint, files: state.listed ? [endpoint] : [], refreshedAt: state.refreshedAt,
            errors: errors, pods: pods, fingerprint: state.synced ? fingerprint : nil,
            synced: state.synced, resourceVersion: state.resourceVersion,
            // The kubelet's /pods is its pod manager's cache: after a restart
            // without the API server it lists only static pods (design §7.2).
            vouchesForAbsence: kind != .kubelet,
            droppedWithoutDelete: state.dropped.fingerprint == fingerprint ? state.dropped.uids : []
        )
    }

    /// One error per UID listed more than once (the first ten): a server
    /// that says two things about one pod vouches for nothing, so the
    /// snapshot is incomplete and keeps every orphan.
    private static func duplicateErrors(_ state: State, endpoint: String) -> [ManifestError] {
        let duplicated = state.pods.filter { $0.value.count > 1 }.sorted { $0.key < $1.key }
        var errors = duplicated.prefix(10).map { uid, documents in
            let names = documents.prefix(4).map { "\(UserText.excerpt($0.namespace))/\(UserText.excerpt($0.name))" }.joined(separator: ", ")
            return ManifestError(
                file: endpoint,
                message: "pod UID \(uid) is listed \(documents.count) times (\(names)): any of them that keeps a volume wins, and no orphan is judged by this answer"
            )
        }
        if duplicated.count > 10 {
            errors.append(ManifestError(file: endpoint, message: "and \(duplicated.count - 10) more pod UIDs listed more than once"))
        }
        return errors
    }

    /// Which content of the view this is, for orphan confirmation: two
    /// sightings must come from two different contents, never from two polls
    /// of the same one. The API server's resourceVersion names a consistent
    /// state of the cluster (a LIST, an event and a BOOKMARK move it); a
    /// source without one is named by the set of UIDs it lists.
    private static func contentFingerprint(_ state: State, kind: PodSourceKind) -> String? {
        guard state.listed else { return nil }
        if let version = state.resourceVersion, !version.isEmpty { return "\(kind.rawValue):rv:\(version)" }
        return "\(kind.rawValue):uids:" + StableDigest.hex(of: state.pods.keys.sorted())
    }

    // MARK: Writers (the source's loop)

    /// A whole list, as of `takenAt` (when its request was sent). A change
    /// is reported when the pods differ or the view was not synced.
    func replace(with pods: [Pod], resourceVersion: String?, takenAt: Date) {
        update { state in
            // Every document is kept: with a UID twice, the reconciler lets any
            // that keeps the volume win (design §4 rule 3).
            var listed: [String: [Pod]] = [:]
            for pod in pods { listed[pod.uid, default: []].append(pod) }
            let changed = !state.synced || Self.differsForReconcile(listed, state.pods, annotationKeys: state.annotationKeysRead)
            let before = Self.contentFingerprint(state, kind: kind)
            let previous = Set(state.pods.keys)
            state.pods = listed
            state.resourceVersion = resourceVersion
            state.refreshedAt = takenAt
            state.listed = true
            state.continuous = true
            state.status.lists += 1
            markSynced(&state)
            let after = Self.contentFingerprint(state, kind: kind)
            if after != before {
                state.dropped = (previous.subtracting(listed.keys), after)
            }
            flagDuplicates(Set(listed.filter { $0.value.count > 1 }.keys), in: &state)
            return changed
        }
    }

    /// ADDED, MODIFIED or DELETED: the pods change, the refresh time does not
    /// (a single event vouches for one pod, not for the view). Most MODIFIED
    /// events touch only fields the reconciler does not read (conditions,
    /// probes, IPs, a workload's own annotations): the view keeps the new
    /// document, but starts no reconcile for it.
    func apply(event type: String, pod: Pod, resourceVersion: String?) {
        update { state in
            if let resourceVersion { state.resourceVersion = resourceVersion }
            state.status.events += 1
            // An event is the server's word on that one UID: it replaces
            // whatever documents an answer gave for it.
            state.duplicates.remove(pod.uid)
            if type == "DELETED" {
                return state.pods.removeValue(forKey: pod.uid) != nil
            }
            guard let previous = state.pods.updateValue([pod], forKey: pod.uid), previous.count == 1 else { return true }
            return previous[0].differsForReconcile(from: pod, annotationKeys: state.annotationKeysRead)
        }
    }

    /// Whether two views' pods (by UID, every document of each) differ in
    /// anything a reconcile reads.
    private static func differsForReconcile(_ new: [String: [Pod]], _ old: [String: [Pod]], annotationKeys: Set<String>?) -> Bool {
        guard new.count == old.count else { return true }
        for (uid, documents) in new {
            guard let before = old[uid], before.count == documents.count else { return true }
            for (document, earlier) in zip(documents, before) where document.differsForReconcile(from: earlier, annotationKeys: annotationKeys) {
                return true
            }
        }
        return false
    }

    /// A BOOKMARK: everything up to `resourceVersion` was sent; the view is
    /// vouched for as of a little before it arrived. A view unsynced by a
    /// failure that lost nothing (a cut watch, an outage: `fail(_:resumable:)`)
    /// is synced again by the first BOOKMARK of the watch that resumed it: the
    /// last list plus every event since, with no gap, up to the bookmark's
    /// resourceVersion, is the server's whole state at that version.
    func bookmark(resourceVersion: String?, receivedAt: Date) {
        update { state in
            if let resourceVersion { state.resourceVersion = resourceVersion }
            let vouched = receivedAt.addingTimeInterval(-bookmarkMargin)
            state.status.events += 1
            guard state.listed else { return false }
            if !state.synced {
                guard state.continuous else { return false }
                state.refreshedAt = vouched
                markSynced(&state)
                return true
            }
            if vouched > (state.refreshedAt ?? .distantPast) { state.refreshedAt = vouched }
            return false
        }
    }

    /// The next list must come from a new LIST (or streaming list): the
    /// pods stay, and so does the view's sync, until it comes.
    func needList() {
        update { state in
            state.continuous = false
            return false
        }
    }

    func watchStarted() {
        update { state in
            state.status.watches += 1
            return false
        }
    }

    /// A request failed: the pods stay as they are, but the view no longer
    /// follows the server until the next good LIST or poll, or, when the
    /// failure lost no event (`resumable`: the request failed or the stream
    /// was cut between whole events), until a resumed watch's BOOKMARK.
    func fail(_ problem: PodSourceError, resumable: Bool = false) {
        update { state in
            defer {
                state.synced = false
                if !resumable { state.continuous = false }
            }
            // Losing sync, or starting to fail, is news for the plan and for STATUS=.
            let changed = state.synced || (problem.kind != .expired && state.status.state != .failing)
            state.status.failures[problem.kind.rawValue, default: 0] += 1
            if problem.kind == .expired {
                // Routine: the server compacted its history; a relist follows.
                state.status.state = .syncing
                state.status.problem = nil
                state.status.problemKind = nil
                state.status.since = Date()
                logger.info("pod watch expired; listing again", metadata: ["endpoint": "\(state.endpoint)", "detail": "\(problem.message)"])
                return changed
            }
            if state.status.state != .failing { state.status.since = Date() }
            state.status.state = .failing
            state.status.problem = problem.message
            state.status.problemKind = problem.kind.rawValue
            if state.loggedProblem != problem {
                state.loggedProblem = problem
                logger.error("pod source failing; orphans are kept until it lists again", metadata: [
                    "pod_source": "\(kind.rawValue)", "endpoint": "\(state.endpoint)", "problem": "\(problem.kind.rawValue)",
                    "error": "\(problem.message)",
                ])
            }
            return changed
        }
    }

    /// Logs and counts an answer that lists UIDs more than once, once for
    /// each new set of such UIDs (the same answer polled again is not news).
    private func flagDuplicates(_ duplicated: Set<String>, in state: inout State) {
        defer { state.duplicates = duplicated }
        guard !duplicated.isEmpty, !duplicated.isSubset(of: state.duplicates) else { return }
        state.status.failures[PodSourceError.Kind.duplicateUID.rawValue, default: 0] += 1
        logger.warning("pod source answer lists a pod UID more than once; its orphans are kept", metadata: [
            "pod_source": "\(kind.rawValue)", "endpoint": "\(state.endpoint)", "uids": "\(duplicated.sorted().prefix(10).joined(separator: ","))",
            "count": "\(duplicated.count)",
        ])
    }

    private func markSynced(_ state: inout State) {
        if state.status.state != .synced { state.status.since = Date() }
        if state.loggedProblem != nil {
            logger.notice("pod source recovered", metadata: ["pod_source": "\(kind.rawValue)", "endpoint": "\(state.endpoint)"])
            state.loggedProblem = nil
        }
        state.synced = true
        state.status.state = .synced
        state.status.problem = nil
        state.status.problemKind = nil
    }

    /// Runs `body` under the lock; it returns whether the view changed in a
    /// way a reconcile must see (the pods, or the view's sync).
    private func update(_ body: (inout State) -> Bool) {
        let changed = state.withLock { state in
            defer { state.cachedSnapshot = nil }
            return body(&state)
        }
        if changed { changeContinuation.yield() }
    }
}

/// A network source: its answers come from the `PodView` its loop keeps.
protocol ViewBackedPodSource: PodSource {
    var view: PodView { get }
}

extension ViewBackedPodSource {
    public func currentSnapshot() -> PodSnapshot { view.snapshot() }
    public func status() -> PodSourceStatus { view.status() }
    public func setAnnotationKeysRead(_ keys: Set<String>) { view.setAnnotationKeysRead(keys) }
}
