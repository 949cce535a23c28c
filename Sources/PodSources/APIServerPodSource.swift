import AsyncHTTPClient
import ClusterAccess
import Foundation
import Logging
import NIOCore
import PodManifests
import ReaperCore
import ServiceLifecycle
import Synchronization

/// The node's pods from the API server, as client-go's reflector keeps them:
/// a streaming list (WatchList, KEP-3157) where the server has one, else a
/// LIST of `/api/v1/pods?fieldSelector=spec.nodeName=<node>`; then WATCH from
/// the view's resourceVersion with bookmarks and a jittered server timeout.
///
/// - The daemon's first request waits a random time within `startupSpread`,
///   so that a fleet restarted together does not list in one second.
/// - A streaming list is a watch with `sendInitialEvents=true`: its events
///   are gathered aside, and the view is replaced (vouched for) only when the
///   BOOKMARK annotated `k8s.io/initial-events-end` arrives; the same stream
///   then goes on as a watch. A server that refuses it (400/422, as one
///   without the WatchList feature does), or that ends or dawdles past
///   `requestTimeout` without that bookmark, is asked with LIST from then on.
/// - A LIST is read page by page while the server sets `metadata.continue`
///   (at most `maxListPages`); the view is replaced once the last page is in.
/// - There is no periodic relist. A clean end of a watch re-watches from the
///   last resourceVersion; so does a watch that failed without losing an
///   event (a cut, no connection, a 5xx: the request failed, or the stream
///   broke between whole events): the view is unsynced until the resumed
///   watch's next BOOKMARK. Only a 410 Gone (an `ERROR` event or the status),
///   a bad answer, or watches that bring no BOOKMARK for `bookmarkTimeout`
///   relist. Every failure waits first (`Backoff`: 0.8 s doubling, jittered);
///   so does a watch that ends after at most one event before its time.
///
/// `refreshedAt` advances only on a list (the moment it was asked for) or a
/// BOOKMARK (its arrival less `PodSourceSettings.defaultBookmarkMargin`), never on a
/// single event.
public final class APIServerPodSource: ViewBackedPodSource, Service {
    public var kind: PodSourceKind { .apiserver }
    let settings: PodSourceSettings
    let connection: ClusterConnection
    let view: PodView
    let logger: Logger
    /// When the server last vouched for the view (a list, a BOOKMARK), on
    /// the monotonic clock: bookmarks that stop for `bookmarkTimeout` relist.
    let lastVouched = Moment()
    /// The server refused a streaming list: LIST for the rest of the process
    /// (asking again each relist would double every relist on such servers).
    private let watchListRefused = Atomic(false)
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

    /// Whether this source lists with LIST because the server refused a streaming list.
    public var usesListFallback: Bool { watchListRefused.load(ordering: .relaxed) }

    /// One LIST, for `--plan` and `--once`; a failure leaves an unsynced,
    /// empty view (every orphan kept) with the problem as its error. A plain
    /// LIST: one request that ends, where a streaming list would need a watch
    /// closed after its first bookmark for the same pods.
    public func listOnce() async {
        do throws(PodSourceError) {
            try await list()
        } catch {
            view.fail(error)
        }
        await connection.shutdown()
    }

    /// The daemon: list and WATCH until shutdown.
    public func run() async throws {
        for notice in settings.notices {
            logger.notice("deprecated setting", metadata: ["detail": "\(notice)"])
        }
        await cancelWhenGracefulShutdown { [self] in await reflect() }
        view.finish()
        await connection.shutdown()
    }

    // MARK: The loop

    /// How long the daemon's first request waits: uniform in 0 to
    /// `startupSpread`, so N agents started together send about N divided by
    /// the spread requests per second.
    static func startupDelay(spread: TimeInterval) -> Duration {
        spread > 0 ? Duration(seconds: Double.random(in: 0...spread)) : .zero
    }

    private func reflect() async {
        let delay = Self.startupDelay(spread: settings.startupSpread)
        if delay > .zero {
            logger.info("first pod list after a random wait (startupSpread)", metadata: ["wait": "\(delay)"])
            try? await Task.sleep(for: delay)
        }
        lastVouched.mark()
        // Reset only by a watch that proved the server healthy: a list that
        // works before a watch that fails at once must not restart the pacing.
        var backoff = Backoff(cap: settings.maxBackoff)
        while !Task.isCancelled {
            let streaming = !view.canResume && settings.watchList && !watchListRefused.load(ordering: .relaxed)
            if !view.canResume && !streaming {
                do throws(PodSourceError) {
                    try await list()
                } catch {
                    view.fail(error)
                    try? await Task.sleep(for: backoff.next())
                    continue
                }
            }
            let jittered = settings.watchTimeout * Double.random(in: 1...2)
            // Whole seconds, as timeoutSeconds carries them: a watch that ran them all ended on time.
            let seconds = max(1, Int(jittered))
            let started = ContinuousClock.now
            do throws(PodSourceError) {
                let end = try await watch(seconds: seconds, streamingList: streaming)
                if end.bookmarksOverdue {
                    // The view is not wrong, only no longer vouched for (its
                    // refresh time stands still): list again, paced.
                    logger.info("no BOOKMARK on the pod watch for bookmarkTimeout; listing again", metadata: [
                        "bookmark_timeout": "\(DurationText.format(settings.bookmarkTimeout))",
                    ])
                    view.needList()
                    try? await Task.sleep(for: backoff.next())
                } else if end.events <= 1 && ContinuousClock.now - started < .seconds(seconds) {
                    // At most one event (a lone BOOKMARK) before its time is
                    // a failure for pacing, however cleanly it ended.
                    try? await Task.sleep(for: backoff.next())
                } else {
                    backoff.reset()
                }
            } catch {
                if streaming && error.kind == .refused {
                    watchListRefused.store(true, ordering: .relaxed)
                    logger.notice("the API server does not serve streaming lists (WatchList); using LIST", metadata: [
                        "detail": "\(error.message)",
                    ])
                    // The refusal was an answer, not a failure: LIST at once.
                    continue
                }
                view.fail(error, resumable: Self.resumable(error.kind))
                try? await Task.sleep(for: backoff.next())
                // The watch that resumes gets all of bookmarkTimeout for its
                // first BOOKMARK: an outage is not bookmarks that stopped.
                lastVouched.mark()
            }
        }
    }

    /// Failures after which a watch from the view's resourceVersion carries
    /// on without a list: the request got no answer, or the stream broke
    /// between whole events (a cut line is dropped and sent again, since the
    /// view's resourceVersion never counted it). A 410, a bad or oversized
    /// line (an event lost) and anything else relist.
    static func resumable(_ kind: PodSourceError.Kind) -> Bool {
        switch kind {
        case .unreachable, .stalled, .serverError, .unauthorized, .forbidden, .credentials: true
        case .expired, .badAnswer, .tooLarge, .refused, .duplicateUID: false
        }
    }

    // MARK: Requests

    /// How a watch ended cleanly (the server's timeout, or ours).
    struct WatchEnd: Sendable {
        var events: Int
        /// No BOOKMARK for `bookmarkTimeout`: ended by us, to relist.
        var bookmarksOverdue = false
    }

    /// What a watch's read and its watchdog share.
    private final class WatchTally: Sendable {
        struct State {
            var events = 0
            /// A streaming list whose initial-events-end bookmark is still to come.
            var awaitingInitialEnd: Bool
        }
        let state: Mutex<State>
        init(streamingList: Bool) { state = Mutex(State(awaitingInitialEnd: streamingList)) }
    }

    /// One watch: from the view's resourceVersion, or, as a streaming list
    /// (`streamingList`), from the server's current state with every pod
    /// sent first. Returns how it ended when it ended cleanly.
    private func watch(seconds: Int, streamingList: Bool) async throws(PodSourceError) -> WatchEnd {
        let target = try connection.target()
        var path = "/api/v1/pods?fieldSelector=spec.nodeName%3D\(queryValue(target.nodeName))&watch=true"
        if streamingList {
            // No resourceVersion with NotOlderThan: the newest state, a
            // consistent read, as a LIST without one is.
            path += "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        } else {
            guard let version = view.resourceVersion else { throw PodSourceError(.expired, "no resourceVersion to watch from") }
            path += "&resourceVersion=\(queryValue(version))"
        }
        path += "&allowWatchBookmarks=true&timeoutSeconds=\(seconds)"
        let shown = ClusterEndpoint.shown(target.endpoint.url(path))
        if streamingList { view.setEndpoint(shown + "?fieldSelector=spec.nodeName=" + target.nodeName) }
        let sentAt = Date()
        let sent = ContinuousClock.now
        let response = try await target.endpoint.get(path, deadline: .now() + .seconds(Int64(settings.requestTimeout.rounded(.up))))
        view.watchStarted()
        let view = view
        let maxLine = settings.maxDocumentBytes
        let tally = WatchTally(streamingList: streamingList)
        let lastVouched = lastVouched
        let bookmarkTimeout = Duration(seconds: settings.bookmarkTimeout)
        let initialSeconds = settings.requestTimeout
        let initialTimeout = Duration(seconds: initialSeconds)
        // Our own end a little after the server's: a server that ignores
        // timeoutSeconds is ended by us, as a normal end.
        let deadline = ContinuousClock.now + .seconds(seconds) + .seconds(5)
        let overdue: @Sendable () -> Result<WatchEnd, PodSourceError>? = {
            let now = ContinuousClock.now
            let (events, awaiting) = tally.state.withLock { ($0.events, $0.awaitingInitialEnd) }
            if awaiting {
                // As long as a LIST may take; then the server is taken not to
                // serve streaming lists (one that ignores the parameters
                // streams the pods but never ends them).
                return now - sent > initialTimeout
                    ? .failure(PodSourceError(.refused, "\(shown): no initial-events-end BOOKMARK within \(DurationText.format(initialSeconds))"))
                    : nil
            }
            return now - lastVouched.instant > bookmarkTimeout ? .success(WatchEnd(events: events, bookmarksOverdue: true)) : nil
        }
        let end = try await StallGuard.run(
            stallTimeout: settings.stallTimeout, deadline: deadline, atDeadline: .success(WatchEnd(events: .max)), what: shown,
            overdue: overdue
        ) { progress throws(PodSourceError) -> WatchEnd in
            var splitter = LineSplitter(maxLineBytes: maxLine)
            // A streaming list's pods until its end bookmark (nil after it).
            var initial: [String: [Pod]]? = streamingList ? [:] : nil
            do {
                for try await chunk in response.body {
                    progress.tick()
                    let lines: [Data]
                    do {
                        lines = try splitter.lines(in: chunk)
                    } catch {
                        throw PodSourceError(.tooLarge, "\(shown): watch event over the limit of \(maxLine) bytes")
                    }
                    for line in lines {
                        let vouched = try Self.handle(line, view: view, initial: &initial, sentAt: sentAt, shown: shown)
                        if vouched { lastVouched.mark() }
                        tally.state.withLock {
                            $0.events += 1
                            $0.awaitingInitialEnd = initial != nil
                        }
                    }
                }
            } catch let problem as PodSourceError {
                throw problem
            } catch {
                throw PodSourceError(.unreachable, "\(shown): watch cut: \(ClusterHTTP.describe(error, request: nil))")
            }
            if splitter.hasPartialLine {
                throw PodSourceError(.unreachable, "\(shown): watch cut in the middle of an event")
            }
            if initial != nil {
                throw PodSourceError(.refused, "\(shown): the streaming list ended without its initial-events-end BOOKMARK")
            }
            return WatchEnd(events: tally.state.withLock { $0.events })
        }
        if end.events == .max { return WatchEnd(events: tally.state.withLock { $0.events }) }
        return end
    }

    /// Applies one watch line; returns whether it vouched for the whole
    /// view (a BOOKMARK after the initial events, or the one ending them).
    private static func handle(
        _ line: Data, view: PodView, initial: inout [String: [Pod]]?, sentAt: Date, shown: String
    ) throws(PodSourceError) -> Bool {
        let event: PodWatchEvent
        do {
            event = try PodWatchEvent.decode(json: line, source: shown)
        } catch {
            throw PodSourceError(.badAnswer, "\(shown): \(error.message)")
        }
        switch event.type {
        case "ADDED", "MODIFIED", "DELETED":
            guard let pod = event.pod else { throw PodSourceError(.badAnswer, "\(shown): \(event.type) event without a pod") }
            try AnswerRules.checkUID(pod, uids: .uuid, at: "\(shown): \(event.type) event")
            guard initial != nil else {
                view.apply(event: event.type, pod: pod, resourceVersion: event.resourceVersion)
                return false
            }
            // Gathered aside: the view changes only when the list is whole.
            // An ADDED for a UID already sent keeps both documents, as a
            // LIST with a UID twice does (any that keeps the volume wins).
            switch event.type {
            case "ADDED": initial?[pod.uid, default: []].append(pod)
            case "MODIFIED": initial?[pod.uid] = [pod]
            default: initial?[pod.uid] = nil
            }
            return false
        case "BOOKMARK":
            if let pods = initial {
                // Bookmarks before the end one only report progress.
                guard event.initialEventsEnd else { return false }
                guard let version = event.resourceVersion, !version.isEmpty else {
                    throw PodSourceError(.badAnswer, "\(shown): initial-events-end BOOKMARK has no metadata.resourceVersion to watch from")
                }
                view.replace(with: pods.values.flatMap { $0 }, resourceVersion: version, takenAt: sentAt)
                initial = nil
                return true
            }
            view.bookmark(resourceVersion: event.resourceVersion, receivedAt: Date())
            return true
        default:
            let reason = event.errorReason.map { " \(UserText.excerpt($0, limit: 100))" } ?? ""
            if event.errorCode == 410 {
                throw PodSourceError(.expired, "\(shown): watch ERROR 410\(reason): resourceVersion too old")
            }
            throw PodSourceError(.serverError, "\(shown): watch ERROR \(event.errorCode.map(String.init) ?? "without a code")\(reason)")
        }
    }
}

/// An instant on the monotonic clock, shared between a loop and a watchdog.
final class Moment: Sendable {
    private let value = Mutex(ContinuousClock.now)
    func mark() { value.withLock { $0 = .now } }
    var instant: ContinuousClock.Instant { value.withLock { $0 } }
}
