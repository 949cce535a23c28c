import AsyncHTTPClient
import ClusterAccess
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The credentials and node name a network source needs, loaded on first
/// use and again after a failure: at boot the kubelet's client certificate
/// may not exist yet, and the source must come up (keeping every orphan)
/// rather than refuse to start.
final class ClusterConnection: Sendable {
    struct Target: Sendable {
        var endpoint: ClusterEndpoint
        var nodeName: String
        var nodeNameSource: String
    }

    private let settings: PodSourceSettings
    private let logger: Logger
    private let retarget: (@Sendable (ClusterCredentials, String) throws(ClusterAccessError) -> ClusterCredentials)?
    let client: HTTPClient
    private let loaded = Mutex<Target?>(nil)

    /// `retarget` turns the cluster credentials into the ones for another
    /// server (the kubelet source), given the node name.
    init(
        settings: PodSourceSettings, logger: Logger,
        retarget: (@Sendable (ClusterCredentials, String) throws(ClusterAccessError) -> ClusterCredentials)? = nil
    ) {
        self.settings = settings
        self.logger = logger
        self.retarget = retarget
        // The read timeout is a last resort behind `stallTimeout` (StallGuard
        // ends a silent watch or answer first, as `stalled`).
        client = ClusterHTTP.makeClient(
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            readTimeout: .seconds(Int64((settings.stallTimeout + settings.requestTimeout).rounded(.up))), logger: logger
        )
    }

    func target() throws(PodSourceError) -> Target {
        if let target = loaded.withLock({ $0 }) { return target }
        let credentials: ClusterCredentials
        do {
            credentials = try ClusterCredentials.load(settings.access, logger: logger)
        } catch {
            throw PodSourceError(.credentials, error.description)
        }
        guard let resolved = NodeName.resolve(
            configured: settings.nodeName, environment: settings.access.environment,
            kubeconfigUserName: credentials.kubeconfigUserName, hostname: { ProcessInfo.processInfo.hostName }
        ) else {
            throw PodSourceError(.credentials, "podSource.nodeName: no node name (set podSource.nodeName or NODE_NAME)")
        }
        // A name that is no node name would select no pod (a view that
        // vouches every pod gone) or make a kubelet URL with another port.
        let node: (name: String, source: String)
        do {
            node = (try NodeName.validated(resolved.name, source: resolved.source), resolved.source)
        } catch {
            throw PodSourceError(.credentials, error.description)
        }
        var forServer = credentials
        if let retarget {
            do {
                forServer = try retarget(credentials, node.name)
            } catch {
                throw PodSourceError(.credentials, error.description)
            }
        }
        let target = Target(
            endpoint: ClusterEndpoint(client: client, credentials: forServer, maxBodyBytes: settings.maxDocumentBytes),
            nodeName: node.name, nodeNameSource: node.source
        )
        loaded.withLock { $0 = target }
        logger.info("pod source credentials loaded", metadata: [
            "credentials": "\(credentials.origin)", "server": "\(forServer.server)", "node": "\(node.name)", "node_from": "\(node.source)",
        ])
        return target
    }

    func shutdown() async {
        try? await client.shutdown()
    }
}

/// Waits after failures, as client-go's reflector paces itself: 0.8 s,
/// doubling, each wait drawn between the step and twice it (client-go's
/// jitter of 1.0, so that a fleet does not retry in step). Once the doubling
/// reaches `cap` (`maxBackoff`), each wait is drawn between `cap` and 1.25
/// times it: during an outage a node asks at most once per `maxBackoff`, and
/// a fleet's retries stay spread over a quarter of it rather than bunching
/// at the cap. Never shorter than 0.8 s, whatever `cap` says.
struct Backoff {
    static let initial: TimeInterval = 0.8
    /// How far above `cap` a capped wait may be drawn.
    static let capJitter: ClosedRange<Double> = 1...1.25
    let cap: TimeInterval
    private var failures = 0

    init(cap: TimeInterval) {
        self.cap = max(cap, Self.initial)
    }

    mutating func next() -> Duration {
        let step = Self.initial * pow(2, Double(min(failures, 40)))
        failures += 1
        let drawn = step * Double.random(in: 1...2)
        let seconds = drawn <= cap ? drawn : cap * Double.random(in: Self.capJitter)
        return Duration(seconds: max(seconds, Self.initial))
    }

    mutating func reset() { failures = 0 }
}

extension Duration {
    init(seconds: TimeInterval) {
        self = .milliseconds(Int64((seconds * 1000).rounded()))
    }
}

/// Percent-encodes a query value (a node name is a DNS subdomain, but the
/// config is not trusted to hold one).
func queryValue(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}
