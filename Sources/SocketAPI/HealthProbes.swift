import Foundation

/// One named check of a probe (`/livez`, `/readyz`), as kube-apiserver lists
/// them with `?verbose`: what was checked, whether it passed and, when not, why.
public struct ProbeCheck: Codable, Sendable, Hashable {
    /// Stable kebab-case, e.g. `reconcile-not-stuck`, `pod-source-synced`.
    public var name: String
    public var ok: Bool
    /// Why it failed (one line); null when it passed.
    public var message: String?

    public init(_ name: String, ok: Bool, message: String? = nil) {
        self.name = name
        self.ok = ok
        self.message = ok ? nil : message
    }

    enum CodingKeys: String, CodingKey { case name, ok, message }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(ok, forKey: .ok)
        try container.encode(message, forKey: .message)
    }
}

/// The answer of `/livez` or `/readyz` (and the `live` and `ready` members
/// of `/healthz`): 200 while `ok`, else 503. `ok` is every check passing.
public struct ProbeResult: Codable, Sendable, Hashable {
    public var ok: Bool
    public var checks: [ProbeCheck]

    public init(checks: [ProbeCheck]) {
        self.ok = checks.allSatisfy(\.ok)
        self.checks = checks
    }

    /// The failing checks in one line, for `status` and logs: `pod-source-synced: ...; ...`.
    public var failures: String {
        checks.filter { !$0.ok }.map { "\($0.name): \($0.message ?? "failed")" }.joined(separator: "; ")
    }
}
