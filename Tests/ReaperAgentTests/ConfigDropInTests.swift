import Foundation
import PodSources
import ReaperAgent
import SocketAPI
import Testing
import TestSupport

/// `config.d/*.yaml` beside the config file (issue 19): merged in lexical
/// order over it, later wins per key, sections per key.
@Suite("config drop-ins")
struct ConfigDropInTests {
    /// A config file and its drop-ins (name to text) in a fresh directory.
    func layout(_ config: String, dropIns: [String: String]) throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory("dropins")
        let path = directory.appending("config.yaml")
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        if !dropIns.isEmpty {
            try FileManager.default.createDirectory(atPath: directory.appending("config.d"), withIntermediateDirectories: true)
        }
        for (name, text) in dropIns {
            try text.write(toFile: directory.appending("config.d/" + name), atomically: true, encoding: .utf8)
        }
        return (directory, path)
    }

    @Test("switching to reap mode is one drop-in; later files win, in byte order; other names are not read")
    func reapModeDropIn() throws {
        let (directory, path) = try layout("""
            dryRun: true
            reconcileInterval: 2m
            logLevel: info
            """, dropIns: [
                "50-reap.yaml": "dryRun: false\n",
                "10-pace.yaml": "reconcileInterval: 30s\nlogLevel: debug\n",
                "90-level.yaml": "logLevel: warning\n",
                // Not *.yaml, or hidden: left alone (dpkg and editors leave such files).
                "60-junk.yaml.dpkg-old": "dryRun: true\n",
                "70-notes.txt": "this is not yaml: [",
                ".80-hidden.yaml": "dryRun: true\n",
                "95-empty.yaml": "# nothing set here\n",
            ])
        defer { directory.remove() }
        let configuration = try AgentConfiguration.load(path: path)
        #expect(configuration.dryRun == false)
        #expect(configuration.reconcileInterval == 30)
        #expect(configuration.logLevel == "warning", "90-level.yaml is read after 10-pace.yaml")
        #expect(configuration.dropIns == ["10-pace.yaml", "50-reap.yaml", "90-level.yaml", "95-empty.yaml"].map { directory.appending("config.d/" + $0) })
        #expect(configuration.file == path)
    }

    @Test("podSource and metrics merge key by key: a drop-in's nodeName keeps the file's kind and kubeconfig")
    func sectionsMergePerKey() throws {
        let (directory, path) = try layout("""
            podSource:
              kind: apiserver
              kubeconfig: /etc/kubernetes/kubelet.conf
              maxBackoff: 1m
            metrics:
              listen: ":9847"
            """, dropIns: [
                "10-node.yaml": "podSource:\n  nodeName: node-7\n  maxBackoff: 2m\n",
                "20-textfile.yaml": "metrics:\n  textfile: /var/lib/node_exporter/textfile_collector/volume_reaper.prom\n",
            ])
        defer { directory.remove() }
        let configuration = try AgentConfiguration.load(path: path)
        #expect(configuration.podSource.kind == .apiserver)
        #expect(configuration.podSource.access.kubeconfig == "/etc/kubernetes/kubelet.conf")
        #expect(configuration.podSource.nodeName == "node-7")
        #expect(configuration.podSource.maxBackoff == 120)
        #expect(configuration.metricsListen == TCPListenAddress(":9847"))
        #expect(configuration.metricsTextfile == "/var/lib/node_exporter/textfile_collector/volume_reaper.prom")
    }

    @Test("an error in a drop-in names the drop-in and the key, in one line")
    func errorNamesDropIn() throws {
        let (directory, path) = try layout("dryRun: true\n", dropIns: [
            "10-ok.yaml": "logLevel: debug\n",
            "20-bad.yaml": "podSource:\n  kind: kubelet\n  maxBackoff: soon\n",
        ])
        defer { directory.remove() }
        let error = try #require(throws: ConfigurationError.self) { try AgentConfiguration.load(path: path) }
        #expect(error.file == directory.appending("config.d/20-bad.yaml"))
        #expect(error.field == "podSource.maxBackoff")
        #expect("\(error)".hasPrefix(directory.appending("config.d/20-bad.yaml") + ": podSource.maxBackoff: must be a positive duration"), "\(error)")
        #expect(!"\(error)".contains("\n"))

        try "dryRun: maybe\n".write(toFile: directory.appending("config.d/20-bad.yaml"), atomically: true, encoding: .utf8)
        let mode = try #require(throws: ConfigurationError.self) { try AgentConfiguration.load(path: path) }
        #expect("\(mode)" == directory.appending("config.d/20-bad.yaml") + ": dryRun: must be true or false (got \"maybe\")")

        // A drop-in that is not a regular file is refused by name, not waited on.
        try FileManager.default.removeItem(atPath: directory.appending("config.d/20-bad.yaml"))
        #expect(mkfifo(directory.appending("config.d/30-fifo.yaml"), 0o600) == 0)
        let fifo = try #require(throws: ConfigurationError.self) { try AgentConfiguration.load(path: path) }
        #expect(fifo.file == directory.appending("config.d/30-fifo.yaml"))
        #expect("\(fifo)".contains("a FIFO, not a regular file"), "\(fifo)")
    }

    @Test("no config.d: the config file alone; the drop-in directory is config.d beside the file")
    func noDirectory() throws {
        let (directory, path) = try layout("dryRun: true\n", dropIns: [:])
        defer { directory.remove() }
        let configuration = try AgentConfiguration.load(path: path)
        #expect(configuration.dryRun)
        #expect(configuration.dropIns.isEmpty)
        #expect(AgentConfiguration.dropInDirectory(forConfig: "/etc/volume-reaper/config.yaml") == "/etc/volume-reaper/config.d")
        #expect(AgentConfiguration.dropInDirectory(forConfig: "config.yaml") == "./config.d")
    }
}
