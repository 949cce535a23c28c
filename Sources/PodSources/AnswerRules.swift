import Foundation
import PodManifests
import ReaperCore

/// What a network answer must be before it may stand for the node's pods
/// (design §7.2): a `PodList` (a single Pod, a Status or a `List` is not
/// one), each UID as the kubelet names the pod's directory. Anything else is
/// `bad-answer`, so the view vouches for no orphan; nothing is ignored.
enum AnswerRules {
    /// Which names a source's pods may carry as `metadata.uid`.
    enum UIDs {
        /// The API server: a lowercase UUID (mirror pods have one too).
        case uuid
        /// The kubelet's `/pods`: a UUID, or a static pod's 32-hex config hash.
        case uuidOrConfigHash
    }

    /// Decodes `body` as the node's pod list from `shown`; `what` names the
    /// answer in messages (`LIST answer`, `/pods answer`).
    static func podList(_ body: Data, shown: String, what: String, uids: UIDs) throws(PodSourceError) -> PodDocument {
        let document: PodDocument
        do {
            document = try PodDocument.decode(json: body, source: shown)
        } catch {
            throw PodSourceError(.badAnswer, "\(shown): \(what): \(error.message)")
        }
        guard document.kind == "PodList" else {
            throw PodSourceError(.badAnswer, "\(shown): \(what) is kind \(document.kind), not PodList: it cannot stand for the node's pods")
        }
        for (index, pod) in document.pods.enumerated() {
            try checkUID(pod, uids: uids, at: "\(shown): \(what): items[\(index)]")
        }
        return document
    }

    /// A pod whose UID is not a directory name the kubelet would make fails
    /// the answer: `5E56...` or ` 5e56...` would leave the real directory
    /// unmatched, an orphan by mistake.
    static func checkUID(_ pod: Pod, uids: UIDs, at place: String) throws(PodSourceError) {
        switch (PodDirectoryKind(directoryName: pod.uid), uids) {
        case (.uid?, _), (.configHash?, .uuidOrConfigHash):
            return
        default:
            let expected = uids == .uuid
                ? "a lowercase UUID (8-4-4-4-12 hex digits)"
                : "a lowercase UUID (8-4-4-4-12 hex digits) or a static pod's 32-hex config hash"
            throw PodSourceError(
                .badAnswer,
                "\(place) (\(UserText.excerpt(pod.namespace))/\(UserText.excerpt(pod.name))): metadata.uid \"\(UserText.excerpt(pod.uid, quoting: true))\""
                    + " is not \(expected), the name the kubelet gives a pod directory"
            )
        }
    }
}
