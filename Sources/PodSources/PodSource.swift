import Foundation
import ReaperCore

/// Where the agent learns its node's pods. The plan and every last check
/// before a deletion ask `currentSnapshot()`, whatever the source.
public protocol PodSource: Sendable {
    var kind: PodSourceKind { get }
    /// The view as of now. Never blocks on the network: the network sources
    /// answer from the view their loop keeps, the files source reads the
    /// files again only when they changed.
    func currentSnapshot() -> PodSnapshot
    /// How the source is doing, for `/healthz`, `status`, `STATUS=` and metrics.
    func status() -> PodSourceStatus
    /// The pod annotations the reconciler reads (`Policy.annotationKeysRead`):
    /// a change of any other one need not start a reconcile.
    func setAnnotationKeysRead(_ keys: Set<String>)
}

extension PodSource {
    /// The files source reconciles on file events, not on what changed in them.
    public func setAnnotationKeysRead(_ keys: Set<String>) {}
}

/// Why a request to the API server or the kubelet gave no usable answer.
/// One line that names the endpoint, the status or the field.
public struct PodSourceError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// No connection, TLS failure, a reset.
        case unreachable
        /// 401: the credentials are not accepted.
        case unauthorized
        /// 403: the identity may not list or watch this node's pods.
        case forbidden
        /// 400 or 422: the server refused the request's parameters (a
        /// server without WatchList refuses `sendInitialEvents`).
        case refused
        /// 5xx, or another status the source cannot use.
        case serverError = "server-error"
        /// An answer that is not a pod list or a watch event.
        case badAnswer = "bad-answer"
        /// Larger than `maxDocumentBytes`.
        case tooLarge = "too-large"
        /// No byte for `stallTimeout`.
        case stalled
        /// The credentials could not be loaded (file, field).
        case credentials
        /// 410 Gone: the watch's resource version is too old (a relist follows).
        case expired
        /// Counted, not a request failure: an answer listed a pod UID more
        /// than once (every document kept; the view vouches for no orphan).
        case duplicateUID = "duplicate-uid"
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
