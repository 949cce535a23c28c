// Temporary stand-in with the agreed API, so PodSources compiles while the
// ClusterAccess target is written on its branch; replaced at the merge.
import AsyncHTTPClient
import Foundation
import Logging
import NIOSSL

public struct ClusterAccessError: Error, Sendable, CustomStringConvertible {
    public var file: String?
    public var field: String?
    public var message: String
    public init(file: String?, field: String?, message: String) {
        self.file = file
        self.field = field
        self.message = message
    }
    public var description: String { [file, field, message].compactMap { $0 }.joined(separator: ": ") }
}

public struct ClusterAccessSettings: Sendable, Hashable {
    public var kubeconfig: String?
    public var context: String?
    public var allowInsecureSkipTLSVerify = false
    public var serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    public init() {}
}

public final class ClusterCredentials: Sendable {
    public let server: String
    public let origin: String
    public let kubeconfigUserName: String?

    init(server: String, origin: String, kubeconfigUserName: String?) {
        self.server = server
        self.origin = origin
        self.kubeconfigUserName = kubeconfigUserName
    }

    public static func load(_ settings: ClusterAccessSettings, logger: Logger) throws(ClusterAccessError) -> ClusterCredentials {
        throw ClusterAccessError(file: settings.kubeconfig, field: nil, message: "not yet")
    }

    public func tlsConfiguration() async throws(ClusterAccessError) -> TLSConfiguration { .makeClientConfiguration() }
    public func authorization() async throws(ClusterAccessError) -> String? { nil }
    public func invalidate() {}
    public func retargeted(server: String, certificateAuthorityFile: String?) throws(ClusterAccessError) -> ClusterCredentials { self }
}

public enum NodeName {
    public static func resolve(
        configured: String?, environment: [String: String], kubeconfigUserName: String?, hostname: () -> String?
    ) -> (name: String, source: String)? {
        if let configured { return (configured, "podSource.nodeName") }
        return nil
    }
}
