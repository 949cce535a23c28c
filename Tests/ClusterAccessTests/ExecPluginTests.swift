import ClusterAccess
import Foundation
import NIOSSL
import Testing
import TestSupport

/// A real shell-script credential plugin in a temp directory. It counts its
/// runs in `runs`, records its environment and arguments, and answers with
/// a token valid for `lifetime` seconds (or what `mode` says).
struct ExecPluginFixture {
    let dir: KubeconfigDirectory
    var runs: Int { ((try? String(contentsOfFile: dir.path + "/runs", encoding: .utf8)) ?? "").split(separator: "\n").count }

    init(mode: String = "token", lifetime: Int = 3600, apiVersion: String = "client.authentication.k8s.io/v1", extraExec: String = "") throws {
        dir = try KubeconfigDirectory()
        let pki = TestPKI.shared
        let script = """
        #!/bin/sh
        echo run >> "$PLUGIN_DIR/runs"
        n=$(wc -l < "$PLUGIN_DIR/runs" | tr -d ' ')
        printf '%s\\n' "$KUBERNETES_EXEC_INFO" > "$PLUGIN_DIR/exec-info"
        printf '%s\\n' "$@" > "$PLUGIN_DIR/args"
        exp=$(date -u -d "+$(cat "$PLUGIN_DIR/lifetime") seconds" +%Y-%m-%dT%H:%M:%SZ)
        case "$(cat "$PLUGIN_DIR/mode")" in
        token) printf '{"apiVersion":"\(apiVersion)","kind":"ExecCredential","status":{"token":"tok-%s","expirationTimestamp":"%s"}}' "$n" "$exp" ;;
        noexpiry) printf '{"apiVersion":"\(apiVersion)","kind":"ExecCredential","status":{"token":"tok-%s"}}' "$n" ;;
        cert) c=$(awk '{printf "%s\\\\n", $0}' "\(pki.clientCertificate("client-b"))"); k=$(awk '{printf "%s\\\\n", $0}' "\(pki.clientKey("client-b"))")
              printf '{"apiVersion":"\(apiVersion)","kind":"ExecCredential","status":{"clientCertificateData":"%s","clientKeyData":"%s"}}' "$c" "$k" ;;
        garbage) echo 'Unable to locate credentials. You can configure credentials by running "aws configure".' ;;
        fail) echo "boom: the role cannot be assumed" >&2; exit 3 ;;
        multiline) printf 'first line\\nsecond\\tand a \\\\ backslash\\n' >&2; exit 4 ;;
        hang) echo $$ > "$PLUGIN_DIR/pid"; exec sleep 120 ;;
        esac
        """
        // Written by `install` in a child process: a descriptor of ours open
        // for writing could be inherited by a child another test spawns at
        // that moment, and the kernel refuses to exec a file open for writing (ETXTBSY).
        try script.write(toFile: dir.path + "/plugin.source", atomically: false, encoding: .utf8)
        try ChildProcess.run("/usr/bin/install", ["-m", "755", dir.path + "/plugin.source", dir.path + "/plugin.sh"])
        try mode.write(toFile: dir.path + "/mode", atomically: false, encoding: .utf8)
        try String(lifetime).write(toFile: dir.path + "/lifetime", atomically: false, encoding: .utf8)
        try dir.write(kubeconfig(cluster: "", user: """
        exec:
          apiVersion: \(apiVersion)
          command: ./plugin.sh
          args: [eks, get-token, --cluster-name, test]
          env:
          - name: PLUGIN_DIR
            value: \(dir.path)
          installHint: install the plugin with apt-get install test-plugin
        \(indent(extraExec, by: 2))
        """))
    }

    func set(mode: String) throws {
        try mode.write(toFile: dir.path + "/mode", atomically: false, encoding: .utf8)
    }

    func credentials(timeout: Duration = .seconds(10)) throws -> ClusterCredentials {
        var settings = dir.settings()
        settings.execTimeout = timeout
        return try ClusterCredentials.load(settings, logger: testLogger)
    }
}

@Suite("exec credential plugins")
struct ExecPluginTests {
    @Test("the token is cached until its expiry, the plugin runs with KUBERNETES_EXEC_INFO, env and args")
    func cachedUntilExpiry() async throws {
        let plugin = try ExecPluginFixture(lifetime: 3600)
        defer { plugin.dir.remove() }
        let credentials = try plugin.credentials()
        #expect(plugin.runs == 0)
        #expect(try await credentials.authorization() == "Bearer tok-1")
        #expect(try await credentials.authorization() == "Bearer tok-1")
        _ = try await credentials.tlsConfiguration()
        #expect(plugin.runs == 1)

        let info = try String(contentsOfFile: plugin.dir.path + "/exec-info", encoding: .utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any])
        #expect(object["apiVersion"] as? String == "client.authentication.k8s.io/v1")
        #expect(object["kind"] as? String == "ExecCredential")
        #expect((object["spec"] as? [String: Any])?["interactive"] as? Bool == false)
        #expect(try String(contentsOfFile: plugin.dir.path + "/args", encoding: .utf8) == "eks\nget-token\n--cluster-name\ntest\n")

        // After a 401 the lead calls invalidate(): the plugin runs again.
        credentials.invalidate()
        #expect(try await credentials.authorization() == "Bearer tok-2")
        #expect(plugin.runs == 2)
    }

    @Test("a token within the expiry margin is fetched anew on each use; one without expiry is kept")
    func rerunAfterExpiry() async throws {
        let plugin = try ExecPluginFixture(lifetime: 2, apiVersion: "client.authentication.k8s.io/v1beta1")
        defer { plugin.dir.remove() }
        let credentials = try plugin.credentials()
        #expect(try await credentials.authorization() == "Bearer tok-1")
        #expect(try await credentials.authorization() == "Bearer tok-2")
        #expect(plugin.runs == 2)

        try plugin.set(mode: "noexpiry")
        #expect(try await credentials.authorization() == "Bearer tok-3")
        #expect(try await credentials.authorization() == "Bearer tok-3")
        #expect(plugin.runs == 3)
    }

    @Test("a hung plugin is killed at the timeout with a clear line")
    func hungPlugin() async throws {
        let plugin = try ExecPluginFixture(mode: "hang")
        defer { plugin.dir.remove() }
        let credentials = try plugin.credentials(timeout: .milliseconds(500))
        let started = ContinuousClock.now
        let error = await #expect(throws: ClusterAccessError.self) { try await credentials.authorization() }
        // Well before the plugin's own 120 s (loose: a loaded CI machine is slow).
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(error?.description == "\(plugin.dir.kubeconfig): users[0].user.exec.command: the plugin \(plugin.dir.path)/plugin.sh did not finish within 0.5 s; killed it")
        // Killed and reaped: the pid is gone.
        let pid = try #require(Int32(try String(contentsOfFile: plugin.dir.path + "/pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(pid, 0) == -1 && errno == ESRCH)
    }

    @Test("garbage on stdout, a non-zero exit, a missing plugin: each one line")
    func failures() async throws {
        let plugin = try ExecPluginFixture(mode: "garbage")
        defer { plugin.dir.remove() }
        let credentials = try plugin.credentials()
        let prefix = "\(plugin.dir.kubeconfig): users[0].user.exec.command: the plugin \(plugin.dir.path)/plugin.sh"

        var error = await #expect(throws: ClusterAccessError.self) { try await credentials.authorization() }
        #expect(error?.description == "\(prefix) printed no ExecCredential: not JSON (output starts \"Unable to locate credentials. You can...\")")

        try plugin.set(mode: "fail")
        error = await #expect(throws: ClusterAccessError.self) { try await credentials.tlsConfiguration() }
        #expect(error?.description == "\(prefix) exited with status 3: boom: the role cannot be assumed")

        try FileManager.default.removeItem(atPath: plugin.dir.path + "/plugin.sh")
        error = await #expect(throws: ClusterAccessError.self) { try await credentials.authorization() }
        #expect(error?.description == "\(prefix) was not found; install the plugin with apt-get install test-plugin")
    }

    @Test("plugin stderr is escaped once: a newline shows as \\n, not \\\\n (issue 18, item 15b)")
    func escapedOnce() async throws {
        let plugin = try ExecPluginFixture(mode: "multiline")
        defer { plugin.dir.remove() }
        let credentials = try plugin.credentials()
        let error = await #expect(throws: ClusterAccessError.self) { try await credentials.authorization() }
        let text = try #require(error?.description)
        #expect(text.hasSuffix(#"exited with status 4: first line\nsecond\tand a \\ backslash"#), "\(text)")
        #expect(!text.contains(#"\\n"#), "\(text)")
    }

    @Test("a bare command is looked up in PATH; not found there names PATH and the install hint")
    func pathLookup() async throws {
        let plugin = try ExecPluginFixture()
        defer { plugin.dir.remove() }
        let text = try String(contentsOfFile: plugin.dir.kubeconfig, encoding: .utf8)
        try plugin.dir.write(text.replacingOccurrences(of: "command: ./plugin.sh", with: "command: plugin.sh"))
        var settings = plugin.dir.settings()
        settings.environment["PATH"] = "/nonexistent:\(plugin.dir.path):/usr/bin:/bin"
        #expect(try await ClusterCredentials.load(settings, logger: testLogger).authorization() == "Bearer tok-1")
        settings.environment["PATH"] = "/nonexistent"
        let error = await #expect(throws: ClusterAccessError.self) {
            try await ClusterCredentials.load(settings, logger: testLogger).authorization()
        }
        #expect(error?.description == "\(plugin.dir.kubeconfig): users[0].user.exec.command: the plugin plugin.sh was not found in PATH; install the plugin with apt-get install test-plugin")
    }

    @Test("a client certificate from the plugin goes into the TLS configuration")
    func certificateFromPlugin() async throws {
        let plugin = try ExecPluginFixture(mode: "cert")
        defer { plugin.dir.remove() }
        let credentials = try plugin.credentials()
        let tls = try await credentials.tlsConfiguration()
        #expect(tls.certificateChain == [.certificate(try firstCertificate(TestPKI.shared.clientCertificate("client-b")))])
        #expect(try await credentials.authorization() == nil)
        #expect(plugin.runs == 1)
    }

    @Test("interactiveMode Always and an unknown apiVersion are refused at load")
    func refusedConfigurations() throws {
        let always = try ExecPluginFixture(extraExec: "interactiveMode: Always")
        defer { always.dir.remove() }
        #expect(loadError(always.dir.settings()) == "\(always.dir.kubeconfig): users[0].user.exec.interactiveMode: Always: the plugin needs a terminal, and an agent has none")
        let old = try ExecPluginFixture(apiVersion: "client.authentication.k8s.io/v1alpha1")
        defer { old.dir.remove() }
        #expect(loadError(old.dir.settings()) == "\(old.dir.kubeconfig): users[0].user.exec.apiVersion: \"client.authentication.k8s.io/v1alpha1\" is not supported; use client.authentication.k8s.io/v1 or v1beta1")
    }
}
