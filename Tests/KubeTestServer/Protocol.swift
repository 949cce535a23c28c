import Foundation
import NIOCore

/// The Kubernetes wire shapes the server writes, as the real kube-apiserver
/// writes them (k8s.io/apimachinery metav1.Status, watch.Event).
enum KubeWire {
    /// A `metav1.Status` failure object.
    static func status(code: Int, reason: String, message: String, details: [String: Any]? = nil) -> Data {
        var object: [String: Any] = [
            "kind": "Status", "apiVersion": "v1", "metadata": [String: Any](),
            "status": "Failure", "message": message, "reason": reason, "code": code,
        ]
        if let details { object["details"] = details }
        return encode(object, order: ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"])
    }

    /// The Status body the apiserver sends for an HTTP error `code`.
    static func statusForHTTPCode(_ code: Int, user: String?, verb: String) -> Data {
        switch code {
        case 401:
            return status(code: 401, reason: "Unauthorized", message: "Unauthorized")
        case 403:
            let who = user ?? "system:anonymous"
            return status(
                code: 403, reason: "Forbidden",
                message: "pods is forbidden: User \"\(who)\" cannot \(verb) resource \"pods\" in API group \"\" at the cluster scope",
                details: ["kind": "pods"]
            )
        case 404:
            return status(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        case 410:
            return status(
                code: 410, reason: "Expired",
                message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."
            )
        case 429:
            return status(code: 429, reason: "TooManyRequests", message: "Too many requests, please try again later.")
        case 503:
            return status(code: 503, reason: "ServiceUnavailable", message: "The server is currently unable to handle the request")
        default:
            return status(code: code, reason: "InternalError", message: "Internal error occurred: test server failure mode \(code)")
        }
    }

    /// The ERROR event's object for a watch from a compacted resourceVersion.
    static func tooOldResourceVersion(requested: Int, oldest: Int) -> Data {
        status(code: 410, reason: "Expired", message: "too old resource version: \(requested) (\(oldest))")
    }

    /// A BOOKMARK's object: an empty Pod carrying only the resourceVersion, as the
    /// watch cache makes it (`newFunc()` + versioner), serialized as 1.34+ servers
    /// do (no `creationTimestamp: null`, as in the 1.35 kubelet capture); the initial-events-end
    /// annotation only on the bookmark that closes `sendInitialEvents=true`.
    static func bookmarkObject(resourceVersion: Int, initialEventsEnd: Bool) -> Data {
        if initialEventsEnd {
            return Data(
                (#"{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"\#(resourceVersion)","#
                    + #""annotations":{"k8s.io/initial-events-end":"true"}},"spec":{"containers":null},"status":{}}"#).utf8
            )
        }
        return Data(
            #"{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"\#(resourceVersion)"},"spec":{"containers":null},"status":{}}"#
                .utf8
        )
    }

    /// The discovery documents kubectl reads before it lists (`/api`, `/apis`,
    /// `/api/v1`, `/version`): only pods are served.
    static func discovery(path: String, serverAddress: SocketAddress?) -> Data? {
        let address = "127.0.0.1:\(serverAddress?.port ?? 443)"
        switch path {
        case "/api":
            return Data(#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"\#(address)"}]}"#.utf8)
        case "/apis":
            return Data(#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#.utf8)
        case "/api/v1":
            return Data(
                (#"{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"pods","singularName":"pod","namespaced":true,"#
                    + #""kind":"Pod","verbs":["create","delete","deletecollection","get","list","patch","update","watch"],"#
                    + #""shortNames":["po"],"categories":["all"]}]}"#).utf8
            )
        case "/version":
            return Data(
                #"{"major":"1","minor":"35","gitVersion":"v1.35.0","platform":"linux/amd64","goVersion":"go1.25.5","compiler":"gc"}"#.utf8
            )
        default:
            return nil
        }
    }

    /// One watch event line: `{"type":T,"object":O}\n`.
    static func eventLine(type: String, object: Data) -> Data {
        var line = Data(#"{"type":""#.utf8)
        line.append(contentsOf: type.utf8)
        line.append(contentsOf: #"","object":"#.utf8)
        line.append(object)
        line.append(contentsOf: "}\n".utf8)
        return line
    }

    /// JSON with Go's habits: slashes not escaped; keys in `order` first (the
    /// order Go's structs give), the rest sorted.
    static func encode(_ object: [String: Any], order: [String] = []) -> Data {
        var data = Data("{".utf8)
        var first = true
        let keys = order.filter { object[$0] != nil } + object.keys.filter { !order.contains($0) }.sorted()
        for key in keys {
            guard let value = object[key] else { continue }
            if !first { data.append(contentsOf: ",".utf8) }
            first = false
            data.append(fragment(key))
            data.append(contentsOf: ":".utf8)
            data.append(fragment(value))
        }
        data.append(contentsOf: "}".utf8)
        return data
    }

    static func fragment(_ value: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes, .sortedKeys]))
            ?? Data("null".utf8)
    }
}
