import AsyncHTTPClient
import NIOCore
import NIOPosix
import SystemPackage

extension ClusterHTTP {
    /// A failure to connect in a few plain words, for `check` and the pod
    /// source's status: NIO's own descriptions nest the socket error in its
    /// wording ("connection reset (error set): Connection refused (errno:
    /// 111)") and list every address tried. nil: not a connection failure.
    static func connectionFailure(_ error: any Error) -> String? {
        if let error = error as? HTTPClientError, error == .connectTimeout {
            return "no connection within the connect timeout (is the server up, and is the address reachable from this node?)"
        }
        if let error = error as? IOError {
            return socketFailure(error.errnoCode)
        }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first {
                if let io = first.error as? IOError { return socketFailure(io.errnoCode) }
                return "cannot connect to \(first.target)"
            }
            if error.dnsAError != nil || error.dnsAAAAError != nil {
                return "cannot resolve \(error.host) (check the server name and this node's DNS)"
            }
            return "cannot connect to \(error.host):\(error.port)"
        }
        return nil
    }

    private static func socketFailure(_ code: CInt) -> String {
        switch Errno(rawValue: code) {
        case .connectionRefused: "connection refused (nothing listens at that address and port)"
        case .timedOut: "connection timed out"
        case .noRouteToHost: "host unreachable"
        case .networkUnreachable: "network unreachable"
        case .connectionReset: "connection reset by the server"
        case let other: "cannot connect: \(other)"
        }
    }
}
