import AsyncHTTPClient
import ClusterAccess
import Foundation
import Logging
import NIOCore
import PodManifests
import ReaperCore
import ServiceLifecycle

/// The node's pods from the API server, as client-go's reflector keeps them:
/// LIST `/api/v1/pods?fieldSelector=spec.nodeName=<node>`, then WATCH from the
/// list's resourceVersion with bookmarks and a jittered server timeout.
///
/// - A LIST is read page by page while the server sets `metadata.continue`
///   (at most `maxListPages`); the view is replaced once the last page is in.
/// - A clean end of a watch re-watches from the last resourceVersion.
/// - Any failure, 410 Gone included (an `ERROR` event or the status), marks
///   the view unsynced, waits (`Backoff`: 0.8 s doubling, jittered) and
///   relists: a node's pod list is small, and a fresh LIST is the one answer
///   the server vouches for as a whole. A watch that ends after at most one
///   event, before its time, waits too: a server that closes every watch at
///   once must not be asked again at once, by every node.
/// - A relist at least every `resyncInterval` keeps the view fresh when the
///   server sends no bookmarks.
///
/// `refreshedAt` advances only on a LIST (the moment it was sent) or a
/// BOOKMARK (its arrival less `PodSourceSettings.defaultBookmarkMargin`), never on a
/// single event.
public final class APIServerPodSource: ViewBackedPodSource, Service {
    public var kind: PodSourceKind { .apiserver }
    let settings: PodSourceSettings
    let connection: ClusterConnection
    let view: PodView
    let logger: Logger
    /// One element per change of the view; the daemon reconciles on it.
    public var changes: AsyncStream<Void> { view.changes }

    public init(settings: PodSourceSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        connection = ClusterConnection(settings: settings, logger: logger)
        view = PodView(
            kind: .apiserver, endpoint: settings.access.kubeconfig.map { "kubeconfig \($0)" } ?? "in-cluster",
            bookmarkMargin: settings.bookmarkMargin, logger: logger
        )
    }


    /// One LIST, for `--plan` and `--once`; a failure leaves an unsynced,
    /// empty view (every orphan kept) with the problem as its error.
    public func listOnce() async {
        do throws(PodSourceProblem) {
            try await list()
        } catch {
            view.fail(error)
        }
        await connection.shutdown()
    }

    /// The daemon: LIST and WATCH until shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown { [self] in await reflect() }
        view.finish()
        await connection.shutdown()
    }

    // MARK: The loop

    private func reflect() async {
        // Reset only by a watch that proved the server healthy: a LIST that
        // works before a watch that fails at once must not restart the pacing.
        var backoff = Backoff(cap: settings.maxBackoff)
        relist: while !Task.isCancelled {
            do throws(PodSourceProblem) {
                try await list()
            } catch {
                view.fail(error)
                try? await Task.sleep(for: backoff.next())
                continue relist
            }
            let resyncAt = ContinuousClock.now + Duration(seconds: settings.resyncInterval)
            while !Task.isCancelled {
                let remaining = resyncAt - ContinuousClock.now
                guard remaining > .milliseconds(500) else { continue relist }
                let jittered = Duration(seconds: settings.watchTimeout * Double.random(in: 1...2))
                // Whole seconds, as timeoutSeconds carries them: a watch that ran them all ended on time.
                let seconds = max(1, Int(min(jittered, remaining).components.seconds))
                let started = ContinuousClock.now
                do throws(PodSourceProblem) {
                    let events = try await watch(seconds: seconds)
                    // At most one event (a lone BOOKMARK) before its time is
                    // a failure for pacing, however cleanly it ended.
                    if events <= 1 && ContinuousClock.now - started < .seconds(seconds) {
                        try? await Task.sleep(for: backoff.next())
                    } else {
                        backoff.reset()
                    }
                } catch {
                    view.fail(error)
                    try? await Task.sleep(for: backoff.next())
                    continue relist
                }
            }
        }
    }

    // MARK: Requests

    /// One watch from the view's resourceVersion; returns the number of
    /// events when it ended cleanly (the server's timeout, or ours).
    private func watch(seconds: Int) async throws(PodSourceProblem) -> Int {
        let target = try connection.target()
        guard let version = view.resourceVersion else { throw PodSourceProblem(.expired, "no resourceVersion to watch from") }
        let path = "/api/v1/pods?fieldSelector=spec.nodeName%3D\(queryValue(target.nodeName))"
            + "&watch=true&resourceVersion=\(queryValue(version))&allowWatchBookmarks=true&timeoutSeconds=\(seconds)"
        let shown = ClusterEndpoint.shown(target.endpoint.url(path))
        let response = try await target.endpoint.get(path, deadline: .now() + .seconds(Int64(settings.requestTimeout.rounded(.up))))
        view.watchStarted()
        let view = view
        let maxLine = settings.maxDocumentBytes
        // Our own end a little after the server's: a server that ignores
        // timeoutSeconds is ended by us, as a normal end.
        let deadline = ContinuousClock.now + .seconds(seconds) + .seconds(5)
        return try await StallGuard.run(stallTimeout: settings.stallTimeout, deadline: deadline, atDeadline: .success(0), what: shown) {
            progress throws(PodSourceProblem) -> Int in
            var splitter = LineSplitter(maxLineBytes: maxLine)
            var events = 0
            do {
                for try await chunk in response.body {
                    progress.tick()
                    let lines: [Data]
                    do {
                        lines = try splitter.lines(in: chunk)
                    } catch {
                        throw PodSourceProblem(.tooLarge, "\(shown): watch event over the limit of \(maxLine) bytes")
                    }
                    for line in lines {
                        try Self.handle(line, view: view, shown: shown)
                        events += 1
                    }
                }
            } catch let problem as PodSourceProblem {
                throw problem
            } catch {
                throw PodSourceProblem(.unreachable, "\(shown): watch cut: \(ClusterHTTP.describe(error, request: nil))")
            }
            if splitter.hasPartialLine {
                throw PodSourceProblem(.unreachable, "\(shown): watch cut in the middle of an event")
            }
            return events
        }
    }

    private static func handle(_ line: Data, view: PodView, shown: String) throws(PodSourceProblem) {
        let event: PodWatchEvent
        do {
            event = try PodWatchEvent.decode(json: line, source: shown)
        } catch {
            throw PodSourceProblem(.badAnswer, "\(shown): \(error.message)")
        }
        switch event.type {
        case "ADDED", "MODIFIED", "DELETED":
            guard let pod = event.pod else { throw PodSourceProblem(.badAnswer, "\(shown): \(event.type) event without a pod") }
            try AnswerRules.checkUID(pod, uids: .uuid, at: "\(shown): \(event.type) event")
            view.apply(event: event.type, pod: pod, resourceVersion: event.resourceVersion)
        case "BOOKMARK":
            view.bookmark(resourceVersion: event.resourceVersion, receivedAt: Date())
        default:
            let reason = event.errorReason.map { " \(UserText.excerpt($0, limit: 100))" } ?? ""
            if event.errorCode == 410 {
                throw PodSourceProblem(.expired, "\(shown): watch ERROR 410\(reason): resourceVersion too old")
            }
            throw PodSourceProblem(.serverError, "\(shown): watch ERROR \(event.errorCode.map(String.init) ?? "without a code")\(reason)")
        }
    }
}
