import Foundation
import PodSources
import ReaperAgent
import Testing
import TestSupport

@Suite("config file")
struct AgentConfigurationTests {
    @Test("every key is read over the defaults")
    func readsKeys() throws {
        let configuration = try AgentConfiguration.parse("""
            kubeletRoot: /srv/kubelet
            manifests: /srv/manifests
            policy: /srv/policy.yaml
            stateDir: /srv/state
            socket: /srv/api.sock
            socketGroup: adm
            reconcileInterval: 2m
            flushInterval: 500ms
            pollInterval: 10s
            maxWatches: 1000
            watchReads: true
            dryRun: true
            logTarget: journald
            logLevel: debug
            """, file: "c.yaml")
        #expect(configuration.kubeletRoot == "/srv/kubelet")
        #expect(configuration.policy == "/srv/policy.yaml")
        #expect(configuration.socketGroup == "adm")
        #expect(configuration.reconcileInterval == 120)
        #expect(configuration.flushInterval == 0.5)
        #expect(configuration.maxWatches == 1000)
        #expect(configuration.watchReads)
        #expect(configuration.dryRun)
        #expect(configuration.file == nil)
        #expect(configuration.logTarget == "journald")
        // Left out: the defaults of design §6.
        let empty = try AgentConfiguration.parse("", file: "empty.yaml")
        #expect(empty.kubeletRoot == "/var/lib/kubelet")
        #expect(empty.socket == "/run/volume-reaper/api.sock")
        #expect(empty.policy == nil)
        #expect(!empty.dryRun)
    }

    @Test("the podSource section: every key over the defaults; the pod source follows manifests and maxManifestBytes")
    func podSource() throws {
        let configuration = try AgentConfiguration.parse("""
            manifests: /srv/manifests
            maxManifestBytes: 8Mi
            podSource:
              kind: kubelet
              kubeconfig: /etc/kubernetes/kubelet.conf
              context: node
              nodeName: worker-1.example
              allowInsecureSkipTLSVerify: true
              resyncInterval: 10m
              watchTimeout: 2m
              stallTimeout: 90s
              requestTimeout: 10s
              maxBackoff: 1m
              pollInterval: 5s
              kubeletURL: https://worker-1.example:10250/
              kubeletCertificateAuthority: /etc/kubernetes/pki/kubelet-ca.crt
            """, file: "c.yaml")
        let settings = configuration.podSourceSettings
        #expect(settings.kind == .kubelet)
        #expect(settings.access.kubeconfig == "/etc/kubernetes/kubelet.conf" && settings.access.context == "node")
        #expect(settings.access.allowInsecureSkipTLSVerify)
        #expect(settings.nodeName == "worker-1.example")
        // resyncInterval, deprecated, is read as bookmarkTimeout with a notice (issue 20).
        #expect(settings.bookmarkTimeout == 600 && settings.watchTimeout == 120 && settings.stallTimeout == 90)
        #expect(settings.notices.count == 1 && settings.notices[0].contains("podSource.resyncInterval is deprecated and read as podSource.bookmarkTimeout"))
        #expect(settings.requestTimeout == 10 && settings.maxBackoff == 60 && settings.pollInterval == 5)
        #expect(settings.kubeletURL == "https://worker-1.example:10250")
        #expect(settings.kubeletCertificateAuthority == "/etc/kubernetes/pki/kubelet-ca.crt")
        #expect(settings.manifests == "/srv/manifests" && settings.maxDocumentBytes == 8 << 20)
        let defaults = try AgentConfiguration.parse("", file: "empty.yaml").podSourceSettings
        #expect(defaults.kind == .files && defaults.access.kubeconfig == nil && defaults.bookmarkTimeout == 300)
        #expect(defaults.startupSpread == 30 && defaults.notices.isEmpty)
        #expect(!defaults.events, "Kubernetes Events only when asked for (the DaemonSet's config does)")
        #expect(!defaults.access.allowInsecureSkipTLSVerify)
    }

    @Test("bad settings are refused in one line naming the file, the key and the value", arguments: [
        ("kubeletRot: /x", "kubeletRot", "unknown setting"),
        ("reconcileInterval: soon", "reconcileInterval", "\"soon\""),
        ("reconcileInterval: -5s", "reconcileInterval", "\"-5s\""),
        ("maxWatches: 0", "maxWatches", "\"0\""),
        ("watchReads: perhaps", "watchReads", "\"perhaps\""),
        ("dryRun: maybe", "dryRun", "\"maybe\""),
        ("dryRun: 1", "dryRun", "\"1\""),
        // Issue 21: one boolean grammar for every file; the policy refuses these too.
        ("dryRun: \"true\"", "dryRun", "without quotes"),
        ("watchReads: yes", "watchReads", "yes, no, on and off are not accepted"),
        ("podSource:\n  allowInsecureSkipTLSVerify: 'false'", "podSource.allowInsecureSkipTLSVerify", "without quotes"),
        ("logTarget: syslog", "logTarget", "\"syslog\""),
        ("logLevel: loud", "logLevel", "\"loud\""),
        ("socket: ''", "socket", "non-empty"),
        ("- a\n- b", "c.yaml", "mapping"),
        ("kubeletRoot: [unclosed", "c.yaml", "YAML"),
        ("podSource: apiserver", "podSource", "mapping"),
        ("podSource:\n  kind: etcd", "podSource.kind", "\"etcd\""),
        ("podSource:\n  kubeconfg: /x", "podSource.kubeconfg", "unknown setting"),
        ("podSource:\n  resyncInterval: 0s", "podSource.resyncInterval", "\"0s\""),
        ("podSource:\n  bookmarkTimeout: 0s", "podSource.bookmarkTimeout", "\"0s\""),
        ("podSource:\n  bookmarkTimeout: 5m\n  resyncInterval: 5m", "podSource.resyncInterval", "set only podSource.bookmarkTimeout"),
        ("podSource:\n  startupSpread: soon", "podSource.startupSpread", "\"soon\""),
        ("podSource:\n  events: sometimes", "podSource.events", "true or false"),
        ("podSource:\n  stallTimeout: forever", "podSource.stallTimeout", "\"forever\""),
        ("podSource:\n  kubeletURL: http://node:10250", "podSource.kubeletURL", "https://"),
        ("podSource:\n  kubeletURL: https://node:10250/?token=x", "podSource.kubeletURL", "no query"),
        ("podSource:\n  nodeName: Node_1", "podSource.nodeName", "\"Node_1\""),
        ("podSource:\n  allowInsecureSkipTLSVerify: yes please", "podSource.allowInsecureSkipTLSVerify", "true or false"),
    ])
    func refused(_ text: String, _ field: String, _ detail: String) {
        #expect {
            _ = try AgentConfiguration.parse(text, file: "c.yaml")
        } throws: { error in
            let message = "\(error)"
            return message.hasPrefix("c.yaml") && message.contains(field) && message.contains(detail) && !message.contains("\n")
        }
    }

    @Test("bookmarkTimeout and startupSpread load; startupSpread may be 0s; an old config's resyncInterval still loads, with a notice")
    func fleetSettings() throws {
        let settings = try AgentConfiguration.parse("podSource:\n  kind: apiserver\n  bookmarkTimeout: 3m\n  startupSpread: 0s\n", file: "c.yaml").podSourceSettings
        #expect(settings.bookmarkTimeout == 180 && settings.startupSpread == 0 && settings.notices.isEmpty)
        #expect(try AgentConfiguration.parse("podSource:\n  kind: apiserver\n  events: true\n", file: "c.yaml").podSourceSettings.events)
        let old = try AgentConfiguration.parse("podSource:\n  kind: apiserver\n  resyncInterval: 5m\n", file: "old.yaml").podSourceSettings
        #expect(old.bookmarkTimeout == 300)
        #expect(old.notices == [
            "old.yaml: podSource.resyncInterval is deprecated and read as podSource.bookmarkTimeout: the agent no longer relists periodically, only when watches bring no BOOKMARK for this long",
        ])
    }

    @Test("maxManifestBytes: bytes or Ki/Mi/Gi, 1 to 1Gi; anything else refused naming the key")
    func maxManifestBytes() throws {
        #expect(AgentConfiguration().maxManifestBytes == 64 << 20)
        for (text, bytes) in [("1", 1), ("4096", 4096), ("64Mi", 64 << 20), ("512Ki", 512 << 10), ("1Gi", 1 << 30)] {
            #expect(try AgentConfiguration.parse("maxManifestBytes: \(text)\n", file: "c.yaml").maxManifestBytes == bytes, "\(text)")
        }
        for text in ["0", "-1", "2Gi", "1.5Mi", "64MB", "Mi", "9223372036854775807", "99999999999999Gi", "1e9", "0x10"] {
            #expect {
                _ = try AgentConfiguration.parse("maxManifestBytes: \(text)\n", file: "c.yaml")
            } throws: { "\($0)".hasPrefix("c.yaml: maxManifestBytes: must be a size from 1 to 1Gi bytes") }
        }
    }

    @Test("a missing config file names the file and the errno text")
    func missingFile() {
        #expect {
            _ = try AgentConfiguration.load(path: "/nonexistent/volume-reaper.yaml")
        } throws: { "\($0)" == "/nonexistent/volume-reaper.yaml: cannot read: No such file or directory" }
    }
}

@Suite("socket client")
struct AgentClientTests {
    @Test("no daemon: one line that says so and how to start it")
    func noDaemon() throws {
        let directory = try TemporaryDirectory("client")
        defer { directory.remove() }
        #expect {
            _ = try AgentClient(socketPath: directory.appending("api.sock")).request("GET", "/healthz")
        } throws: { error in
            guard let error = error as? AgentClientError else { return false }
            return error.daemonMissing && "\(error)".contains("start it with") && "\(error)".contains(directory.appending("api.sock"))
        }
    }
}

@Suite("AgentConfiguration metrics section")
struct MetricsConfigurationTests {
    @Test("metrics.listen and metrics.textfile are read", arguments: [
        (":9847", "0.0.0.0:9847"), ("127.0.0.1:9847", "127.0.0.1:9847"), ("[::1]:9847", "[::1]:9847"), ("[::]:1", "[::]:1"),
    ])
    func accepted(_ listen: String, _ shown: String) throws {
        let configuration = try AgentConfiguration.parse(
            "metrics:\n  listen: \"\(listen)\"\n  textfile: /var/lib/node_exporter/textfile_collector/volume_reaper.prom\n", file: "c.yaml"
        )
        #expect(configuration.metricsListen?.description == shown)
        #expect(configuration.metricsTextfile == "/var/lib/node_exporter/textfile_collector/volume_reaper.prom")
    }

    @Test("bad metrics settings are refused in one line naming the key", arguments: [
        ("metrics:\n  listen: \"9847\"", "metrics.listen"), ("metrics:\n  listen: \"localhost:9847\"", "metrics.listen"),
        ("metrics:\n  listen: \":0\"", "metrics.listen"), ("metrics:\n  listen: \":65536\"", "metrics.listen"),
        ("metrics:\n  listen: \"::1:9847\"", "metrics.listen"), ("metrics:\n  listen: \"1.2.3:80\"", "metrics.listen"),
        ("metrics:\n  textfile: relative.prom", "metrics.textfile"), ("metrics:\n  textfile: /x/volume_reaper.txt", "metrics.textfile"),
        ("metrics:\n  port: 9847", "metrics.port"), ("metrics: 9847", "metrics"),
    ])
    func refused(_ text: String, _ field: String) {
        #expect {
            _ = try AgentConfiguration.parse(text, file: "c.yaml")
        } throws: { error in
            let message = "\(error)"
            return message.hasPrefix("c.yaml: \(field):") && !message.contains("\n")
        }
    }
}
