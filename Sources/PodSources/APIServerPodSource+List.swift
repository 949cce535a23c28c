import Foundation
import NIOCore
import PodManifests
import ReaperCore

/// A LIST, read page by page: a server may cut it (`metadata.continue`)
/// whether or not it was asked to, and a page is never the node's pods.
extension APIServerPodSource {
    /// How often a LIST starts over after a 410 on a `continue` (the pages
    /// read so far are of a state the server no longer has).
    static let maxListRestarts = 3

    /// One LIST, every page of it, then the view replaced as of the moment
    /// the first page was asked for (every page is at its resourceVersion).
    func list() async throws(PodSourceError) {
        let target = try connection.target()
        let base = "/api/v1/pods?fieldSelector=spec.nodeName%3D\(queryValue(target.nodeName))"
        let shown = ClusterEndpoint.shown(target.endpoint.url(base))
        view.setEndpoint(shown + "?fieldSelector=spec.nodeName=" + target.nodeName)
        var restarts = 0
        restart: while true {
            let sentAt = Date()
            var pods: [Pod] = []
            var version: String?
            var token: String?
            for page in 1...max(1, settings.maxListPages) {
                let path = token.map { base + "&continue=" + queryValue($0) } ?? base
                let document: PodDocument
                do throws(PodSourceError) {
                    document = try await listPage(path, target: target, shown: shown)
                } catch {
                    if error.kind == .expired, token != nil, restarts < Self.maxListRestarts {
                        restarts += 1
                        logger.info("LIST continue token expired; listing again from the first page", metadata: [
                            "endpoint": "\(shown)", "page": "\(page)",
                        ])
                        continue restart
                    }
                    throw error
                }
                if page == 1 {
                    version = document.resourceVersion
                } else if document.resourceVersion != version {
                    throw PodSourceError(
                        .badAnswer,
                        "\(shown): LIST page \(page) is at resourceVersion \(UserText.excerpt(document.resourceVersion ?? "none")), the first at \(UserText.excerpt(version ?? "none")): not one list"
                    )
                }
                pods += document.pods
                if let next = document.continueToken {
                    token = next
                    continue
                }
                guard let version, !version.isEmpty else {
                    throw PodSourceError(.badAnswer, "\(shown): LIST answer has no metadata.resourceVersion to watch from")
                }
                view.replace(with: pods, resourceVersion: version, takenAt: sentAt)
                lastVouched.mark()
                return
            }
            throw PodSourceError(
                .badAnswer, "\(shown): LIST not complete after \(settings.maxListPages) pages (each set metadata.continue); a node's pods fit in one"
            )
        }
    }

    /// One page of a LIST, checked to be a PodList of well-named pods.
    private func listPage(_ path: String, target: ClusterConnection.Target, shown: String) async throws(PodSourceError) -> PodDocument {
        let response = try await target.endpoint.get(path, deadline: .now() + .seconds(Int64(settings.requestTimeout.rounded(.up))))
        let body = try await target.endpoint.body(
            of: response, url: target.endpoint.url(path), stallTimeout: settings.stallTimeout,
            deadline: .now + Duration(seconds: settings.requestTimeout)
        )
        return try AnswerRules.podList(body, shown: shown, what: "LIST answer", uids: .uuid)
    }
}
