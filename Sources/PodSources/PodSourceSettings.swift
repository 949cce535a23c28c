import ClusterAccess
import Foundation
import ReaperCore

/// The config file's `podSource` section (not the policy's `pods`): which
/// source, how to reach it, how it paces itself.
public struct PodSourceSettings: Sendable, Hashable {
    public var kind: PodSourceKind = .files
    /// The files source's path (`--manifests`).
    public var manifests = "/var/lib/volume-reaper/manifests"
    /// How a manifest file must be left alone before it is trusted.
    public var manifestSettleTime: TimeInterval = 2
    /// Kubeconfig, context, the insecure opt-in; none: in-cluster.
    public var access = ClusterAccessSettings()
    /// nil: `NODE_NAME`, the kubeconfig user `system:node:<name>`, the hostname.
    public var nodeName: String?
    /// The API server source relists when its watches bring no BOOKMARK for
    /// this long (none since the last LIST or bookmark). There is no periodic
    /// relist: the API server's watch cache sends each watch a bookmark about
    /// every minute and 2 s before its timeout, so five minutes is five
    /// missed bookmarks, a server that sends none (its watch cache off), or a
    /// proxy that eats them. Config key `bookmarkTimeout`; the old
    /// `resyncInterval` is read as it (deprecated, see `notices`).
    public var bookmarkTimeout: TimeInterval = 300
    /// The watch's server-side timeout; each watch asks for it times 1 to 2
    /// (jitter, as client-go's reflector does).
    public var watchTimeout: TimeInterval = 300
    /// The daemon's first request waits a random time in 0 to this: agents
    /// a rollout or a reboot started together spread their first LIST (or
    /// WatchList) over this window instead of sending them in one second.
    /// Retries spread by their jittered backoff. 0: no wait (tests).
    public var startupSpread: TimeInterval = 30
    /// Ask for a streaming list (WatchList, KEP-3157) first, and LIST only
    /// when the server refuses it. Not a config key (tests turn it off).
    public var watchList = true
    /// With the API server source: report reaps, partial reaps, failures
    /// and orphan circuit breaker trips as Kubernetes Events
    /// (`events.k8s.io/v1`; needs `create` and `patch` on events). Off by
    /// default: a kubeconfig's identity may not have that right; the
    /// DaemonSet's config turns it on and its ClusterRole grants it.
    public var events = false
    /// Deprecations the config reader met, logged once by the source that
    /// uses them (the reader has no logger).
    public var notices: [String] = []
    /// No byte on a watch for this long: the server stalled; relist.
    public var stallTimeout: TimeInterval = 120
    /// How often the kubelet source asks `/pods`.
    public var pollInterval: TimeInterval = 15
    /// The kubelet source's base URL; nil: `https://<node name>:10250`.
    public var kubeletURL: String?
    /// The CA that signed the kubelet's serving certificate; nil: the kubeconfig's.
    public var kubeletCertificateAuthority: String?
    /// A LIST or a kubelet poll must answer within this.
    public var requestTimeout: TimeInterval = 30
    /// Retries after a failure wait 0.8 s, doubling up to this, with jitter.
    public var maxBackoff: TimeInterval = 30
    /// Largest LIST answer or watch line read; more is an error, read no further.
    public var maxDocumentBytes = 64 << 20

    public init() {}

    /// How much earlier than its arrival a BOOKMARK counts as taken: the
    /// server wrote it before it reached us (its send buffer, the network, our
    /// event loop). Five seconds covers a busy node; a bookmark delayed longer
    /// is caught by orphan confirmation, which needs two views
    /// `orphans.confirmAfter` apart, and by the pod cgroup check.
    public static let defaultBookmarkMargin: TimeInterval = 5
    /// `defaultBookmarkMargin`; not a config key (tests shorten it).
    public var bookmarkMargin = defaultBookmarkMargin
    /// The most pages (`metadata.continue`) one LIST may take; a node's pods
    /// fit in one, so more is a broken or hostile server. Not a config key.
    public var maxListPages = 100
}
