import AsyncHTTPClient
import ClusterAccess
import Foundation
import Logging
import NIOCore
import PodManifests
import ReaperCore
import ServiceLifecycle

/// The node's pods from the kubelet's own `/pods` (static pods under their
/// config hash), asked every `pollInterval`. `refreshedAt` is the moment the
/// last good answer's request was sent; a failed poll keeps the pods but
/// marks the view unsynced until the next good answer.
public final class KubeletPodSource: ViewBackedPodSource, Service {
    public var kind: PodSourceKind { .kubelet }
    let settings: PodSourceSettings
    let connection: ClusterConnection
    let view: PodView
    let logger: Logger
    /// One element per change of the view; the daemon reconciles on it.
    public var changes: AsyncStream<Void> { view.changes }

    public init(settings: PodSourceSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        let kubeletURL = settings.kubeletURL
        let authority = settings.kubeletCertificateAuthority
        connection = ClusterConnection(settings: settings, logger: logger) { credentials, node throws(ClusterAccessError) in
            try credentials.retargeted(
                server: kubeletURL ?? "https://\(node):10250", field: kubeletURL == nil ? "kubelet URL from the node name" : "podSource.kubeletURL",
                certificateAuthorityFile: authority
            )
        }
        view = PodView(kind: .kubelet, endpoint: settings.kubeletURL.map { "\($0)/pods" } ?? "https://<node>:10250/pods", logger: logger)
    }


    /// One poll, for `--plan` and `--once`.
    public func pollOnce() async {
        await pollPods()
        await connection.shutdown()
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            var backoff = Backoff(cap: settings.maxBackoff)
            while !Task.isCancelled {
                if await pollPods() {
                    backoff.reset()
                    try? await Task.sleep(for: Duration(seconds: settings.pollInterval))
                } else {
                    try? await Task.sleep(for: min(backoff.next(), Duration(seconds: settings.pollInterval)))
                }
            }
        }
        view.finish()
        await connection.shutdown()
    }

    @discardableResult
    private func pollPods() async -> Bool {
        do throws(PodSourceError) {
            let target = try connection.target()
            let url = target.endpoint.url("/pods")
            view.setEndpoint(ClusterEndpoint.shown(url))
            let sentAt = Date()
            let response = try await target.endpoint.get("/pods", deadline: .now() + .seconds(Int64(settings.requestTimeout.rounded(.up))))
            let body = try await target.endpoint.body(
                of: response, url: url, stallTimeout: settings.stallTimeout, deadline: .now + Duration(seconds: settings.requestTimeout)
            )
            let shown = ClusterEndpoint.shown(url)
            let document = try AnswerRules.podList(body, shown: shown, what: "/pods answer", uids: .uuidOrConfigHash)
            // The kubelet never pages /pods: a page would be taken as all of it.
            if document.continueToken != nil {
                throw PodSourceError(.badAnswer, "\(shown): /pods answer sets metadata.continue: one page of several cannot stand for the node's pods")
            }
            view.replace(with: document.pods, resourceVersion: nil, takenAt: sentAt)
            return true
        } catch {
            view.fail(error)
            return false
        }
    }
}
