import Foundation
import Testing
import TestSupport

/// Issue 18, items 10 and 11, through the binary: a port over 65535 in a
/// kubeconfig, in `podSource.kubeletURL` or in a node name taken from the
/// kubeconfig user crashed `--plan`, `check` and `run` (SIGILL: a crash loop
/// under systemd); a token with control bytes was shown whole in the plan.
extension HostileInputTests {
    /// A config with a `podSource` section and a kubeconfig, in `directory`.
    func podSourceConfig(
        _ directory: TemporaryDirectory, kind: String, server: String, user: String = "u", token: String = "not-a-real-token",
        extra: String = ""
    ) throws -> String {
        let kubeconfig = directory.appending("kubelet.conf")
        let quotedToken = String(decoding: try JSONSerialization.data(withJSONObject: [token]), as: UTF8.self).dropFirst().dropLast()
        try """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "\(server)"}}]
            users: [{name: "\(user)", user: {token: \(quotedToken)}}]
            contexts: [{name: x, context: {cluster: c, user: "\(user)"}}]
            current-context: x
            """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory.appending("kubelet/pods"), withIntermediateDirectories: true)
        let config = directory.appending("config.yaml")
        try """
            kubeletRoot: \(directory.appending("kubelet"))
            stateDir: \(directory.appending("state"))
            socket: \(directory.appending("api.sock"))
            logTarget: stderr
            podSource:
              kind: \(kind)
              kubeconfig: \(kubeconfig)
              requestTimeout: 2s
            \(extra)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        return config
    }

    static let portCases: [(name: String, kind: String, server: String, user: String, extra: String, mention: String)] = [
        ("server-70000", "apiserver", "https://127.0.0.1:70000", "u", "  nodeName: node-1", "clusters[0].cluster.server"),
        ("server-http-65536", "apiserver", "http://127.0.0.1:65536", "u", "  nodeName: node-1", "clusters[0].cluster.server"),
        ("server-hostname-70000", "apiserver", "https://localhost:70000", "u", "  nodeName: node-1", "clusters[0].cluster.server"),
        ("node-name-port", "kubelet", "https://127.0.0.1:6443", "system:node:127.0.0.1:70000/x", "", "kubeconfig user"),
    ]

    @Test("--plan and check with a port over 65535 in the kubeconfig or the node name: no crash; check fails with one line naming it",
          arguments: portCases.map { $0.name })
    func portOutOfRange(_ name: String) throws {
        let item = try #require(Self.portCases.first { $0.name == name })
        let directory = try TemporaryDirectory("hostile-port")
        defer { directory.remove() }
        let config = try podSourceConfig(directory, kind: item.kind, server: item.server, user: item.user, extra: item.extra)
        let plan = try run(["--plan", "--json", "--config", config])
        #expect(!plan.signalled && !plan.timedOut, "\(name): --plan: \(plan)")
        #expect((plan.stdout + plan.stderr).contains(item.mention), "\(name): --plan does not say what is wrong: \(plan)")
        let check = try run(["check", "--config", config])
        #expect(!check.signalled && !check.timedOut && check.status != 0, "\(name): check: \(check)")
        let podSource = check.stdout.split(separator: "\n").filter { $0.hasPrefix("fail pod source") }
        #expect(podSource.count == 1 && podSource.first?.contains(item.mention) == true, "\(name): \(check.stdout)")
    }

    @Test("podSource.kubeletURL with a port over 65535 is a config error: one line, a failure exit", arguments: [
        "https://127.0.0.1:70000", "https://127.0.0.1:65536", "https://node-1:99999", "https://127.0.0.1:0",
    ])
    func kubeletURLPort(_ url: String) throws {
        let directory = try TemporaryDirectory("hostile-kubelet-url")
        defer { directory.remove() }
        let config = try podSourceConfig(directory, kind: "kubelet", server: "https://127.0.0.1:6443", extra: "  kubeletURL: \(url)")
        for arguments in [["--plan", "--config", config], ["check", "--config", config]] {
            let outcome = try run(arguments)
            #expect(!outcome.signalled && !outcome.timedOut && outcome.status != 0, "\(arguments[0]): \(outcome)")
            #expect((outcome.stdout + outcome.stderr).contains("podSource.kubeletURL"), "\(arguments[0]): \(outcome)")
            #expect((outcome.stdout + outcome.stderr).contains("port"), "\(arguments[0]): \(outcome)")
        }
        let plan = try run(["--plan", "--config", config])
        #expect(plan.isCleanRefusal, "\(plan)")
    }

    @Test("a kubeconfig token with CR/LF, NUL or ESC: --plan --json and check show neither the token nor an Authorization value",
          arguments: ["tok-s3cr3tMARK\r\nX-Injected: 1", "tok-s3cr3tMARK\0tail", "tok-s3cr3tMARK\u{1B}[31m"])
    func tokenNeverShown(_ token: String) throws {
        let directory = try TemporaryDirectory("hostile-token")
        defer { directory.remove() }
        let config = try podSourceConfig(directory, kind: "apiserver", server: "https://127.0.0.1:6443", token: token, extra: "  nodeName: node-1")
        for arguments in [["--plan", "--json", "--config", config], ["check", "--config", config]] {
            let outcome = try run(arguments)
            let shown = outcome.stdout + outcome.stderr
            #expect(!outcome.signalled && !outcome.timedOut, "\(arguments[0]): \(outcome)")
            #expect(!shown.contains("s3cr3tMARK") && !shown.contains("Bearer"), "\(arguments[0]) leaked the token: \(shown)")
            #expect(shown.contains("users[0].user.token"), "\(arguments[0]) does not name the field: \(shown)")
        }
    }
}
