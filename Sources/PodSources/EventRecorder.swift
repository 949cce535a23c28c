import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ReaperCore
import ServiceLifecycle
import Synchronization

/// Writes `ClusterEvent`s to the API server (`events.k8s.io/v1`) the way
/// client-go's events broadcaster does, through the API server source's
/// connection (its client, credentials and node name):
///
/// - An Event repeated (same type, regarding object, reason, action) within
///   `seriesWindow` of the last is no new Event: the first repeat PATCHes
///   the Event's `series` (count 2); later ones count locally and are
///   written every `refreshInterval` and when the series ends (no repeat
///   for `seriesWindow`). A PATCH answered 404 (the Event expired) creates
///   it again with its series.
/// - `record` never waits: writes go through a queue of `queueLimit`; more
///   are dropped and counted. One attempt per write (an Event is not worth
///   a retry storm against a struggling server); failures are counted, and
///   logged once until a write works again.
public final class EventRecorder: Service, Sendable {
    public static let reportingController = "volume-reaper.io/agent"
    /// client-go's `finishTime`: a series with no repeat for this long ends.
    public static let defaultSeriesWindow: TimeInterval = 6 * 60
    /// client-go's `refreshTime`: a running series' count is written this often.
    public static let defaultRefreshInterval: TimeInterval = 30 * 60
    static let queueLimit = 256
    static let requestTimeout: TimeAmount = .seconds(10)

    /// Events sent, dropped (queue full) and failed (no connection, refused).
    public struct Counts: Sendable, Hashable {
        public var sent = 0
        public var dropped = 0
        public var failed = 0
    }

    /// One write to the API server.
    struct Write: Sendable {
        var event: ClusterEvent
        var name: String
        var eventTime: Date
        /// nil: create the Event; else PATCH its series.
        var series: (count: Int, lastObserved: Date)?
    }

    /// An Event written, kept while its series may go on.
    private struct Entry {
        var name: String
        var eventTime: Date
        var count = 1
        var lastObserved: Date
        /// The count the server was last sent.
        var written = 1
        var lastWritten: Date
    }

    private struct Health {
        var failing = false
        var dropsLogged = false
    }

    private let connection: ClusterConnection
    private let logger: Logger
    private let seriesWindow: TimeInterval
    private let refreshInterval: TimeInterval
    private let entries = Mutex<[ClusterEvent.SeriesKey: Entry]>([:])
    private let health = Mutex(Health())
    private let sent = Atomic(0)
    private let dropped = Atomic(0)
    private let failed = Atomic(0)
    private let writes: AsyncStream<Write>
    private let queue: AsyncStream<Write>.Continuation

    init(connection: ClusterConnection, logger: Logger, seriesWindow: TimeInterval, refreshInterval: TimeInterval) {
        self.connection = connection
        self.logger = logger
        self.seriesWindow = seriesWindow
        self.refreshInterval = refreshInterval
        (writes, queue) = AsyncStream.makeStream(of: Write.self, bufferingPolicy: .bufferingOldest(Self.queueLimit))
    }

    public var counts: Counts {
        Counts(sent: sent.load(ordering: .relaxed), dropped: dropped.load(ordering: .relaxed), failed: failed.load(ordering: .relaxed))
    }

    /// Queues `event` (or counts it into its series); never waits.
    public func record(_ event: ClusterEvent, at now: Date = Date()) {
        let key = event.seriesKey
        let write: Write? = entries.withLock { entries in
            if var entry = entries[key], now.timeIntervalSince(entry.lastObserved) <= seriesWindow {
                entry.count += 1
                entry.lastObserved = now
                defer { entries[key] = entry }
                // The first repeat turns the Event into a series at once; the
                // rest wait for the refresh or the series' end.
                guard entry.count == 2 else { return nil }
                entry.written = 2
                entry.lastWritten = now
                return Write(event: event, name: entry.name, eventTime: entry.eventTime, series: (2, now))
            }
            let name = ClusterEventWire.name(for: event.regarding, at: now)
            entries[key] = Entry(name: name, eventTime: now, lastObserved: now, lastWritten: now)
            return Write(event: event, name: name, eventTime: now, series: nil)
        }
        if let write { enqueue(write) }
    }

    /// Writes the counts of series due (refresh, or ended) and forgets the
    /// Events whose series ended.
    func sweep(now: Date = Date()) {
        var due: [Write] = []
        entries.withLock { entries in
            for (key, var entry) in entries {
                let ended = now.timeIntervalSince(entry.lastObserved) > seriesWindow
                if entry.count > entry.written && (ended || now.timeIntervalSince(entry.lastWritten) >= refreshInterval) {
                    // The recorded event stands for the series; its note is the first's.
                    due.append(Write(
                        event: ClusterEvent(key.severity, regarding: key.regarding, reason: key.reason, action: key.action, note: ""),
                        name: entry.name, eventTime: entry.eventTime, series: (entry.count, entry.lastObserved)
                    ))
                    entry.written = entry.count
                    entry.lastWritten = now
                }
                entries[key] = ended ? nil : entry
            }
        }
        for write in due { enqueue(write) }
    }

    private func enqueue(_ write: Write) {
        guard case .dropped = queue.yield(write) else { return }
        dropped.add(1, ordering: .relaxed)
        let first = health.withLock { health in
            defer { health.dropsLogged = true }
            return !health.dropsLogged
        }
        if first {
            logger.warning("Kubernetes Event queue full; events are dropped until it drains", metadata: [
                "queue_limit": "\(Self.queueLimit)", "reason": "\(write.event.reason)",
            ])
        }
    }

    public func run() async throws {
        let sweepEvery = Duration(seconds: min(60, seriesWindow / 4))
        await cancelWhenGracefulShutdown { [self] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { [self] in
                    while (try? await Task.sleep(for: sweepEvery)) != nil { sweep() }
                }
                for await write in writes { await send(write) }
                group.cancelAll()
            }
        }
    }

    // MARK: Writing

    private func send(_ write: Write) async {
        let target: ClusterConnection.Target
        do {
            target = try connection.target()
        } catch {
            failure(write, status: nil, detail: error.message)
            return
        }
        let endpoint = target.endpoint
        let namespace = ClusterEventWire.namespace(for: write.event.regarding)
        let collection = "/apis/events.k8s.io/v1/namespaces/\(queryValue(namespace))/events"
        do throws(PodSourceError) {
            if let series = write.series {
                let patch = ClusterEventWire.seriesPatch(count: series.count, lastObserved: series.lastObserved)
                let answer = try await endpoint.send(
                    .PATCH, collection + "/" + queryValue(write.name), body: patch,
                    contentType: "application/strategic-merge-patch+json", deadline: .now() + Self.requestTimeout
                )
                if (200..<300).contains(answer.status) { return success() }
                guard answer.status == 404 else { return failure(write, status: answer.status, detail: answer.message) }
                // Expired or deleted meanwhile: create it again, series and all.
            }
            let body = ClusterEventWire.create(
                write.event, name: write.name, eventTime: write.eventTime, series: write.series,
                reportingController: Self.reportingController, nodeName: target.nodeName
            )
            let answer = try await endpoint.send(
                .POST, collection, body: body, contentType: "application/json", deadline: .now() + Self.requestTimeout
            )
            // 409: an Event of that name exists (written by an attempt that seemed to fail).
            if (200..<300).contains(answer.status) || answer.status == 409 { return success() }
            failure(write, status: answer.status, detail: answer.message)
        } catch {
            failure(write, status: nil, detail: error.message)
        }
    }

    private func success() {
        sent.add(1, ordering: .relaxed)
        let recovered = health.withLock { health in
            defer { health = Health() }
            return health.failing
        }
        if recovered { logger.notice("Kubernetes Events are written again") }
    }

    private func failure(_ write: Write, status: UInt?, detail: String?) {
        failed.add(1, ordering: .relaxed)
        let first = health.withLock { health in
            defer { health.failing = true }
            return !health.failing
        }
        guard first else { return }
        var metadata: Logger.Metadata = [
            "reason": "\(write.event.reason)", "event": "\(write.name)",
            "namespace": "\(ClusterEventWire.namespace(for: write.event.regarding))",
        ]
        if let status { metadata["status"] = "\(status)" }
        if let detail { metadata["detail"] = "\(detail)" }
        if status == 403 {
            metadata["hint"] = "the identity needs create and patch on events.k8s.io events (packaging/kubernetes/base/rbac.yaml)"
        }
        logger.warning("cannot write Kubernetes Events; reaping goes on (logged once until a write works)", metadata: metadata)
    }
}

extension APIServerPodSource {
    /// A recorder that writes through this source's connection: the same
    /// client, credentials and node name. Run it as a service listed after
    /// this source (it stops first; the source shuts the client down).
    public func eventRecorder(
        seriesWindow: TimeInterval = EventRecorder.defaultSeriesWindow,
        refreshInterval: TimeInterval = EventRecorder.defaultRefreshInterval
    ) -> EventRecorder {
        EventRecorder(connection: connection, logger: logger, seriesWindow: seriesWindow, refreshInterval: refreshInterval)
    }
}
