import ClusterAccess
import Foundation
import KubeTestServer
import Logging
@testable import PodSources
import ReaperCore
import Synchronization
import Testing
import TestSupport

/// Every log entry, message and metadata, as text.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    var logger: Logger {
        Logger(label: "secrets-tests") { _ in CapturingHandler(capture: self) }
    }

    struct CapturingHandler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append("\(event.level) \(event.message) \(merged.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " "))")
        }
    }
}

/// Issue 18, item 11: no token ever reaches an error, a log line, the plan
/// or the status, whatever is wrong with it.
@Suite("Secrets never reach errors, logs or the status")
struct SecretsTests {
    /// The part of every test token that must never be seen.
    static let marker = "s3cr3tTOKENvalue"

    /// A credential failure case: how the token is delivered, with what control bytes.
    static let cases: [(name: String, token: String)] = [
        ("kubeconfig-token-crlf", "\(marker)\r\nX-Injected: 1"),
        ("kubeconfig-token-nul", "\(marker)\0tail"),
        ("kubeconfig-token-esc", "\(marker)\u{1B}[31mred"),
        ("token-file-esc-bel", "\(marker)\u{1B}\u{07}tail"),
        ("in-cluster-esc-bel", "\(marker)\u{1B}]0;title\u{07}"),
        ("exec-token-crlf", "\(marker)\r\nX-Injected: 1"),
        ("exec-token-space", "\(marker) other"),
    ]

    @Test("every credential failure: the token appears in no error, status, snapshot or log line", arguments: cases.map(\.name))
    func neverShown(_ name: String) async throws {
        let token = try #require(Self.cases.first { $0.name == name }).token
        let scratch = try TemporaryDirectory("secrets")
        defer { scratch.remove() }
        let auth: (TestPKI) throws -> [KubeconfigAuth] = { _ in
            switch name {
            case "token-file-esc-bel":
                let file = scratch.appending("token")
                try Data(token.utf8).write(to: URL(fileURLWithPath: file))
                return [.tokenFile(file)]
            case let exec where exec.hasPrefix("exec-"):
                let answer = try JSONSerialization.data(withJSONObject: [
                    "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": ["token": token],
                ])
                try answer.write(to: URL(fileURLWithPath: scratch.appending("answer.json")))
                let script = scratch.appending("plugin.sh")
                try "#!/bin/sh\ncat '\(scratch.appending("answer.json"))'\n".write(toFile: scratch.appending("plugin.source"), atomically: false, encoding: .utf8)
                _ = try ChildProcess.run("/usr/bin/install", ["-m", "755", scratch.appending("plugin.source"), script])
                return [.exec(KubeconfigExec(command: script))]
            default:
                return [.token(token)]
            }
        }
        try await TestCluster.with(clientCertificates: .notRequested, acceptedTokens: [token], auth: auth) { cluster in
            var settings = cluster.settings
            if name.hasPrefix("in-cluster") {
                let account = scratch.appending("serviceaccount")
                try FileManager.default.createDirectory(atPath: account, withIntermediateDirectories: true)
                try Data(token.utf8).write(to: URL(fileURLWithPath: account + "/token"))
                try FileManager.default.copyItem(atPath: cluster.pki.ca.certificate, toPath: account + "/ca.crt")
                settings.access.kubeconfig = nil
                settings.access.serviceAccountDirectory = account
                settings.access.environment = ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(cluster.server.port)]
            }
            let capture = LogCapture()
            let source = APIServerPodSource(settings: settings, logger: capture.logger)
            await source.listOnce()
            let snapshot = source.currentSnapshot()
            let status = source.status()
            #expect(!snapshot.synced, "\(name): a token with control bytes was sent")
            #expect(status.problemKind == "credentials", "\(name): \(status.problemKind ?? "") \(status.problem ?? "")")
            let seen = [
                snapshot.errors.map(\.description).joined(separator: "\n"), status.problem ?? "",
                String(decoding: try JSONEncoder().encode(status), as: UTF8.self), capture.text,
            ].joined(separator: "\n")
            #expect(!seen.contains(Self.marker), "\(name): the token leaked: \(UserText.excerpt(seen, limit: 2000))")
            #expect(!seen.contains("Bearer"), "\(name): an Authorization value is shown: \(UserText.excerpt(seen, limit: 2000))")
            // Nothing reached the server either.
            #expect(cluster.server.requests.allSatisfy { $0.bearerToken == nil }, "\(name)")
        }
    }

    @Test("an exec plugin's error reaches the status escaped once (issue 18, item 15b)")
    func execErrorEscapedOnce() async throws {
        let scratch = try TemporaryDirectory("exec-escape")
        defer { scratch.remove() }
        let script = scratch.appending("plugin.sh")
        try "#!/bin/sh\nprintf 'first line\\nsecond\\n' >&2\nexit 4\n".write(toFile: scratch.appending("plugin.source"), atomically: false, encoding: .utf8)
        _ = try ChildProcess.run("/usr/bin/install", ["-m", "755", scratch.appending("plugin.source"), script])
        try await TestCluster.with(clientCertificates: .notRequested, auth: { _ in [.exec(KubeconfigExec(command: script))] }) { cluster in
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            await source.listOnce()
            let problem = source.status().problem ?? ""
            #expect(problem.hasSuffix(#"exited with status 4: first line\nsecond"#), "\(problem)")
        }
    }

    @Test("a Secret describes itself as redacted, however it is printed")
    func redactedDescription() {
        let secret = Secret("Bearer \(Self.marker)")
        let shown = ["\(secret)", String(describing: secret), String(reflecting: secret), "\([secret])", "\(Optional(secret) as Any)"]
        #expect(shown.allSatisfy { !$0.contains(Self.marker) }, "\(shown)")
    }
}
