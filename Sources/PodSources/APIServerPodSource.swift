import AsyncHTTPClient
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
/// - A clean end of a watch re-watches from the last resourceVersion.
/// - 410 Gone (an `ERROR` event or the status) relists at once.
/// - Any other failure (cut mid-event, garbage, a stall, 401/403/5xx, no
///   connection) marks the view unsynced, waits (capped exponential backoff
///   with jitter) and relists: a node's pod list is small, and a fresh LIST is
///   the one answer the server vouches for as a whole.
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
                let timeout = min(jittered, remaining)
                let started = ContinuousClock.now
                do throws(PodSourceProblem) {
                    let events = try await watch(timeout: timeout)
                    // A watch the server ends at once, again and again, must not spin.
                    if events == 0 && ContinuousClock.now - started < .seconds(1) {
                        try? await Task.sleep(for: backoff.next())
                    } else {
                        backoff.reset()
                    }
                } catch {
                    view.fail(error)
                    if error.kind != .expired { try? await Task.sleep(for: backoff.next()) }
                    continue relist
                }
            }
        }
    }

    // MARK: Requests

    private func list() async throws(PodSourceProblem) {
        let target = try connection.target()
        let path = "/api/v1/pods?fieldSelector=spec.nodeName%3D\(queryValue(target.nodeName))"
        let url = target.endpoint.url(path)
        view.setEndpoint(ClusterEndpoint.shown(url) + "?fieldSelector=spec.nodeName=" + target.nodeName)
        let sentAt = Date()
        let response = try await target.endpoint.get(path, deadline: .now() + .seconds(Int64(settings.requestTimeout.rounded(.up))))
        let body = try await target.endpoint.body(
            of: response, url: url, stallTimeout: settings.stallTimeout,
            deadline: .now + Duration(seconds: settings.requestTimeout)
        )
        let document: PodDocument
        do {
            document = try PodDocument.decode(json: body, source: ClusterEndpoint.shown(url))
        } catch {
            throw PodSourceProblem(.badAnswer, "\(ClusterEndpoint.shown(url)): LIST answer: \(error.message)")
        }
        guard let version = document.resourceVersion, !version.isEmpty else {
            throw PodSourceProblem(.badAnswer, "\(ClusterEndpoint.shown(url)): LIST answer has no metadata.resourceVersion to watch from")
        }
        view.replace(with: document.pods, resourceVersion: version, takenAt: sentAt)
    }

    /// One watch from the view's resourceVersion; returns the number of
    /// events when it ended cleanly (the server's timeout, or ours).
    private func watch(timeout: Duration) async throws(PodSourceProblem) -> Int {
        let target = try connection.target()
        guard let version = view.resourceVersion else { throw PodSourceProblem(.expired, "no resourceVersion to watch from") }
        let seconds = max(1, Int(timeout.components.seconds))
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
                throw PodSourceProblem(.unreachable, "\(shown): watch cut: \(UserText.excerpt(String(describing: error), limit: 300))")
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
