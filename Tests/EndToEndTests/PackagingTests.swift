import Foundation
import Testing
import TestSupport

/// What operators install (issue 5, items 2 and 4): `make install-files` and
/// `make uninstall` into a temporary DESTDIR, the installed units through
/// `systemd-analyze verify` and `security`, the journal catalog through
/// `journalctl --update-catalog`, socket activation of the real daemon through
/// `systemd-socket-activate`, and one-line startup errors. Nothing here touches
/// the machine's /etc, /usr or /lib: every install goes below a temporary
/// directory, either as DESTDIR or as PREFIX and SYSCONFDIR.
@Suite("packaging", .serialized)
struct PackagingTests {
    static let root = PackagePaths.root.path
    static let defaultPolicy = root + "/policies/default.yaml"
    static let manPage = root + "/packaging/man/volume-reaper.8"

    // MARK: Helpers

    /// `make -s -C <root> <arguments>`, without the MAKEFLAGS of an outer
    /// `make test` (whose command-line variables would leak into this make).
    func make(_ arguments: [String]) throws -> ProcessResult {
        try ChildProcess.run(
            "/usr/bin/env", ["-u", "MAKEFLAGS", "-u", "MFLAGS", "-u", "MAKELEVEL", "/usr/bin/make", "-s", "-C", Self.root] + arguments
        )
    }

    /// Installs the debug binary (never a release build) with `make install-files`.
    func installFiles(_ variables: [String]) throws -> ProcessResult {
        try make(["install-files", "BIN=\(PackagePaths.binary)"] + variables)
    }

    func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }
    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
    func mode(_ path: String) -> Int? { (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int }

    /// The `ExecStart=` line of a unit file, without the key.
    func execStart(_ unit: String) throws -> String? {
        try read(unit).split(separator: "\n").first { $0.hasPrefix("ExecStart=") }.map { String($0.dropFirst("ExecStart=".count)) }
    }

    /// Installs with every path variable pointing into `directory` and DESTDIR
    /// empty, so the installed unit's ExecStart names a binary that exists.
    /// Returns the unit directory.
    func installIntoPrefix(_ directory: TemporaryDirectory) throws -> String {
        let prefix = directory.appending("usr")
        let unitDir = prefix + "/lib/systemd/system"
        let result = try installFiles([
            "DESTDIR=", "PREFIX=\(prefix)", "BINDIR=\(prefix)/bin", "UNITDIR=\(unitDir)",
            "CATALOGDIR=\(prefix)/lib/systemd/catalog", "SYSCONFDIR=\(directory.appending("etc"))",
        ])
        guard result.status == 0 else {
            throw ExampleNodeError(message: "make install-files failed (\(result.status)): \(result.stdout)\(result.stderr)")
        }
        return unitDir
    }

    /// The message IDs the daemon logs, read from the source of `MessageID`
    /// (EndToEndTests does not link SystemdIntegration).
    func sourceMessageIDs() throws -> Set<String> {
        let source = try read(Self.root + "/Sources/SystemdIntegration/MessageID.swift")
        let pattern = try NSRegularExpression(pattern: #"case\s+\w+\s*=\s*"([0-9a-f]{32})""#)
        let range = NSRange(source.startIndex..., in: source)
        return Set(pattern.matches(in: source, range: range).compactMap { match in
            Range(match.range(at: 1), in: source).map { String(source[$0]) }
        })
    }

    /// A config for `run --plan` on `kubeletRoot`, plus `extra` lines.
    func writeConfig(
        _ path: String, kubeletRoot: String, manifests: String, policy: String = defaultPolicy,
        state: String, socket: String, extra: String = ""
    ) throws {
        try """
            kubeletRoot: \(kubeletRoot)
            manifests: \(manifests)
            policy: \(policy)
            stateDir: \(state)
            socket: \(socket)
            reconcileInterval: 2s
            flushInterval: 500ms
            logTarget: stderr
            \(extra)
            """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// An empty kubelet tree and manifests directory below `directory`.
    func emptyNode(_ directory: TemporaryDirectory) throws -> (kubeletRoot: String, manifests: String) {
        let kubeletRoot = directory.appending("kubelet"), manifests = directory.appending("manifests")
        try FileManager.default.createDirectory(atPath: kubeletRoot + "/pods", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: manifests, withIntermediateDirectories: true)
        return (kubeletRoot, manifests)
    }

    func lines(_ text: String) -> [Substring] {
        text.split(separator: "\n", omittingEmptySubsequences: true)
    }

    // MARK: make install-files / uninstall

    @Test("make install-files puts binary, units, catalog, config and policy under DESTDIR; uninstall keeps config and policy")
    func installAndUninstall() throws {
        let destdir = try TemporaryDirectory("destdir")
        defer { destdir.remove() }
        let variables = ["DESTDIR=\(destdir.path)", "PREFIX=/usr"]
        let first = try installFiles(variables)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")

        let binary = destdir.appending("usr/bin/volume-reaper")
        let service = destdir.appending("usr/lib/systemd/system/volume-reaper.service")
        let socketUnit = destdir.appending("usr/lib/systemd/system/volume-reaper.socket")
        let catalog = destdir.appending("usr/lib/systemd/catalog/volume-reaper.catalog")
        let manPage = destdir.appending("usr/share/man/man8/volume-reaper.8")
        let config = destdir.appending("etc/volume-reaper/config.yaml")
        let policy = destdir.appending("etc/volume-reaper/policy.yaml")
        for path in [binary, service, socketUnit, catalog, manPage, config, policy] {
            #expect(exists(path), "\(path) not installed")
        }
        #expect(mode(binary) == 0o755)
        for path in [service, socketUnit, catalog, manPage, config, policy] {
            #expect(mode(path) == 0o644, "\(path): mode \(String(mode(path) ?? 0, radix: 8))")
        }
        let installedSize = try FileManager.default.attributesOfItem(atPath: binary)[.size] as? Int
        let builtSize = try FileManager.default.attributesOfItem(atPath: PackagePaths.binary)[.size] as? Int
        #expect(installedSize == builtSize)
        // Nothing but these landed in DESTDIR (no stray build products).
        let everything = try ChildProcess.run("/usr/bin/find", [destdir.path, "-type", "f", "-printf", "%P\n"]).stdout
        #expect(Set(lines(everything).map(String.init)) == [
            "usr/bin/volume-reaper", "usr/lib/systemd/system/volume-reaper.service",
            "usr/lib/systemd/system/volume-reaper.socket", "usr/lib/systemd/catalog/volume-reaper.catalog",
            "usr/share/man/man8/volume-reaper.8", "etc/volume-reaper/config.yaml", "etc/volume-reaper/policy.yaml",
        ])

        // ExecStart names $(BINDIR)/volume-reaper and the installed config; DESTDIR is not in any path.
        #expect(try execStart(service) == "/usr/bin/volume-reaper run --config /etc/volume-reaper/config.yaml")
        #expect(try !read(service).contains(destdir.path))
        #expect(try !read(service).contains("/usr/local/bin"))
        #expect(try read(socketUnit) == read(Self.root + "/packaging/systemd/volume-reaper.socket"))
        #expect(try read(catalog) == read(Self.root + "/packaging/journal/volume-reaper.catalog"))
        #expect(try read(manPage) == read(Self.manPage))
        #expect(try read(policy) == read(Self.defaultPolicy))
        #expect(try read(config).contains("\npolicy: /etc/volume-reaper/policy.yaml\n"))
        // A fresh install observes: nothing is deleted until dryRun: false and a reload.
        #expect(try read(config).contains("\ndryRun: true\n"))

        // A second install keeps edited config and policy files.
        let editedConfig = try read(config) + "# edited by the operator\nlogLevel: debug\n"
        let editedPolicy = try read(policy) + "# edited by the operator\n"
        try editedConfig.write(toFile: config, atomically: true, encoding: .utf8)
        try editedPolicy.write(toFile: policy, atomically: true, encoding: .utf8)
        let second = try installFiles(variables)
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        #expect(try read(config) == editedConfig)
        #expect(try read(policy) == editedPolicy)
        #expect(exists(binary) && exists(service))

        // Uninstall removes binary, units and catalog; config and policy stay.
        let removed = try make(["uninstall"] + variables)
        #expect(removed.status == 0, "\(removed.stdout)\(removed.stderr)")
        for path in [binary, service, socketUnit, catalog, manPage] {
            #expect(!exists(path), "\(path) left behind")
        }
        #expect(try read(config) == editedConfig)
        #expect(try read(policy) == editedPolicy)
        // Uninstalling twice is fine.
        #expect(try make(["uninstall"] + variables).status == 0)
    }

    @Test("PREFIX, BINDIR and SYSCONFDIR end up in ExecStart and the installed config")
    func installHonoursPaths() throws {
        let destdir = try TemporaryDirectory("destdir")
        defer { destdir.remove() }
        let result = try installFiles(["DESTDIR=\(destdir.path)", "PREFIX=/opt/vr", "SYSCONFDIR=/etc/opt"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(exists(destdir.appending("opt/vr/bin/volume-reaper")))
        let service = destdir.appending("opt/vr/lib/systemd/system/volume-reaper.service")
        #expect(try execStart(service) == "/opt/vr/bin/volume-reaper run --config /etc/opt/volume-reaper/config.yaml")
        let config = try read(destdir.appending("etc/opt/volume-reaper/config.yaml"))
        #expect(config.contains("\npolicy: /etc/opt/volume-reaper/policy.yaml\n"))
        #expect(exists(destdir.appending("opt/vr/lib/systemd/catalog/volume-reaper.catalog")))
        #expect(exists(destdir.appending("etc/opt/volume-reaper/policy.yaml")))
    }

    @Test("install-files without a binary fails with one line saying so")
    func installFilesNeedsABinary() throws {
        let destdir = try TemporaryDirectory("destdir")
        defer { destdir.remove() }
        let result = try make(["install-files", "BIN=\(destdir.appending("nothing-here"))", "DESTDIR=\(destdir.path)", "PREFIX=/usr"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("no volume-reaper binary at \(destdir.appending("nothing-here"))"))
        #expect(!exists(destdir.appending("usr")))
    }

    @Test("the shipped config and policy, as installed, are accepted by the binary")
    func shippedConfigIsValid() throws {
        let directory = try TemporaryDirectory("shipped")
        defer { directory.remove() }
        _ = try installIntoPrefix(directory)
        let policy = directory.appending("etc/volume-reaper/policy.yaml")
        let check = try ChildProcess.run(PackagePaths.binary, ["policy", "check", policy])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")

        // Every key of the installed config stays; only the host paths move into the temp dir.
        let node = try emptyNode(directory)
        let replacements = [
            "kubeletRoot": node.kubeletRoot, "manifests": node.manifests, "policy": policy,
            "stateDir": directory.appending("state"), "socket": directory.appending("api.sock"),
        ]
        var replaced = Set<String>()
        let installed = try read(directory.appending("etc/volume-reaper/config.yaml"))
        let rewritten = installed.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            for (key, value) in replacements where line.hasPrefix(key + ":") {
                replaced.insert(key)
                return "\(key): \(value)"
            }
            return String(line)
        }.joined(separator: "\n")
        #expect(replaced == Set(replacements.keys))
        let config = directory.appending("config.yaml")
        try rewritten.write(toFile: config, atomically: true, encoding: .utf8)
        let plan = try ChildProcess.run(PackagePaths.binary, ["--plan", "--config", config, "--log-target", "stderr"])
        #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stdout.contains("0 volumes in \(node.kubeletRoot)"))
    }

    // MARK: Version

    @Test("--version prints the VERSION file, which the Makefile stamps into the package and the image")
    func version() throws {
        let version = try read(Self.root + "/VERSION").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(version.split(separator: ".").count == 3 && version.allSatisfy { $0.isNumber || $0 == "." }, "\(version)")
        let result = try ChildProcess.run(PackagePaths.binary, ["--version"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == version + "\n")
    }

    // MARK: systemd-analyze

    @Test("systemd-analyze verify passes the installed units without a complaint about them")
    func verifyUnits() throws {
        let directory = try TemporaryDirectory("verify")
        defer { directory.remove() }
        let unitDir = try installIntoPrefix(directory)
        let service = unitDir + "/volume-reaper.service"
        // ExecStart points at the installed binary, which exists: verify checks it.
        let start = try #require(try execStart(service))
        #expect(start.hasPrefix(directory.appending("usr/bin/volume-reaper") + " run --config " + directory.appending("etc/volume-reaper/config.yaml")))
        #expect(FileManager.default.isExecutableFile(atPath: directory.appending("usr/bin/volume-reaper")))

        // systemd 252's `verify --root=` needs a whole OS tree (sysinit.target,
        // /bin/kill) under the root, so the unit files are verified by path.
        let result = try ChildProcess.run("/usr/bin/systemd-analyze", ["verify", service, unitDir + "/volume-reaper.socket"])
        let ours = lines(result.stdout + result.stderr).filter { $0.contains("volume-reaper") }
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(ours.isEmpty, "\(ours.joined(separator: "\n"))")

        // The check has teeth: a unit whose binary is missing is refused.
        try FileManager.default.removeItem(atPath: directory.appending("usr/bin/volume-reaper"))
        let broken = try ChildProcess.run("/usr/bin/systemd-analyze", ["verify", service])
        #expect(broken.status != 0)
        #expect(broken.stderr.contains("volume-reaper.service"))
    }

    @Test("systemd-analyze security --offline=true rates the installed service at most 2.0")
    func securityExposure() throws {
        let directory = try TemporaryDirectory("security")
        defer { directory.remove() }
        let unitDir = try installIntoPrefix(directory)
        let result = try ChildProcess.run(
            "/usr/bin/systemd-analyze", ["security", "--offline=true", "--no-pager", unitDir + "/volume-reaper.service"]
        )
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let marker = "Overall exposure level for volume-reaper.service: "
        let line = try #require(lines(result.stdout).first { $0.contains(marker) }, "\(result.stdout)\(result.stderr)")
        let number = line.components(separatedBy: marker)[1].split(separator: " ").first.map(String.init) ?? ""
        let exposure = try #require(Double(number), "cannot parse \(line)")
        #expect(exposure <= 2.0, "\(result.stdout)")
    }

    // MARK: Journal catalog

    @Test("journalctl --update-catalog accepts the installed catalog and lists every message ID")
    func catalog() throws {
        let destdir = try TemporaryDirectory("catalog")
        defer { destdir.remove() }
        let install = try installFiles(["DESTDIR=\(destdir.path)", "PREFIX=/usr"])
        #expect(install.status == 0, "\(install.stdout)\(install.stderr)")
        #expect(exists(destdir.appending("usr/lib/systemd/catalog/volume-reaper.catalog")))

        let update = try ChildProcess.run("/usr/bin/journalctl", ["--root=\(destdir.path)", "--update-catalog"])
        #expect(update.status == 0, "\(update.stdout)\(update.stderr)")
        #expect(exists(destdir.appending("var/lib/systemd/catalog/database")))

        let list = try ChildProcess.run("/usr/bin/journalctl", ["--root=\(destdir.path)", "--list-catalog", "--no-pager"])
        #expect(list.status == 0, "\(list.stderr)")
        let listed = Set(lines(list.stdout).filter { $0.contains(" volume-reaper: ") }.compactMap { $0.split(separator: " ").first.map(String.init) })
        let ids = try sourceMessageIDs()
        #expect(ids.count >= 8)
        #expect(ids.subtracting(listed).isEmpty, "missing from the catalog: \(ids.subtracting(listed).sorted())")
        #expect(listed.count >= 8)

        // `journalctl -x` text: the subject of the reaped entry comes from our file.
        let shown = try ChildProcess.run("/usr/bin/journalctl", [
            "--root=\(destdir.path)", "--list-catalog", "--no-pager", "5109ffc17eb34ec3bd6968d5b3c35abc",
        ])
        #expect(shown.stdout.contains("Idle pod volume @VOLUME_PATH@ was reaped"))
    }

    // MARK: The man page

    /// The long option names and subcommand names the binary's help shows,
    /// from swift-argument-parser's `--experimental-dump-help` (what the
    /// generate-manual plugin reads).
    func helpNames() throws -> (options: Set<String>, subcommands: Set<String>) {
        let dump = try ChildProcess.run(PackagePaths.binary, ["--experimental-dump-help"])
        try #require(dump.status == 0, "\(dump.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        var options: Set<String> = [], subcommands: Set<String> = []
        func walk(_ command: [String: Any], top: Bool) {
            if !top, let name = command["commandName"] as? String { subcommands.insert(name) }
            for argument in command["arguments"] as? [[String: Any]] ?? [] where argument["shouldDisplay"] as? Bool != false {
                for name in argument["names"] as? [[String: Any]] ?? [] where name["kind"] as? String == "long" {
                    if let long = name["name"] as? String { options.insert(long) }
                }
            }
            for subcommand in command["subcommands"] as? [[String: Any]] ?? [] { walk(subcommand, top: false) }
        }
        walk(try #require(json["command"] as? [String: Any]), top: true)
        return (options, subcommands)
    }

    @Test("volume-reaper(8) is current: every option and subcommand of the binary's help is in it (else: make man)")
    func manPageCurrent() throws {
        let page = try read(Self.manPage)
        #expect(page.hasPrefix(".\\\" \"Generated by swift-argument-parser\""), "made by the generate-manual plugin")
        #expect(page.contains("\n.Dt VOLUME-REAPER 8\n"))
        #expect(page.contains("\n.Nm volume-reaper\n"))
        let (options, subcommands) = try helpNames()
        #expect(options.contains("kubelet-root") && subcommands.contains("check"), "the help dump was read")
        for option in options.sorted() {
            #expect(page.contains("Fl -\(option)") || page.contains(", -\(option)"), "--\(option) is not in the man page: run make man")
        }
        for subcommand in subcommands.sorted() {
            #expect(page.contains(".It Em \(subcommand)\n") || page.contains(".It Em \"\(subcommand),"), "\(subcommand) is not in the man page: run make man")
        }
        // The journal catalog's entries cite it.
        #expect(try read(Self.root + "/packaging/journal/volume-reaper.catalog").contains("Documentation: man:volume-reaper(8)"))
    }

    @Test("man renders volume-reaper(8) without a warning, as lintian checks it")
    func manPageRenders() throws {
        let result = try ChildProcess.run("/usr/bin/man", ["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", Self.manPage], environment: ["MANROFFSEQ": ""])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        let text = try ChildProcess.run("/usr/bin/man", ["-l", "-P", "cat", Self.manPage], environment: ["MANWIDTH": "80"])
        #expect(text.stdout.contains("volume-reaper"), "\(text.stderr)")
    }

    // MARK: Socket activation

    @Test("systemd-socket-activate hands its socket to the real daemon, which answers on it and leaves it in place on SIGTERM")
    func socketActivation() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let socket = node.directory.appending("api.sock")
        let config = node.directory.appending("config.yaml")
        try writeConfig(
            config, kubeletRoot: node.kubeletRoot, manifests: node.manifests,
            state: node.directory.appending("state"), socket: socket
        )
        let notify = try NotifySocket(path: node.directory.appending("notify.sock"))
        // systemd-socket-activate closes every inherited descriptor before it
        // execs, among them the one Foundation's Process watches to notice a
        // child's exit (its monitor thread would then block in wait4 for good).
        // So bash is the child and keeps that descriptor; the activator runs
        // under it and writes its pid, which becomes the daemon's after exec.
        let pidFile = node.directory.appending("activator.pid")
        let wrapper = try BackgroundProcess(
            "/bin/bash",
            ["-c", #"/usr/bin/systemd-socket-activate "$@" & echo $! > "$0"; wait $!"#, pidFile,
             // The activator passes only -E variables (and LISTEN_*) to the daemon.
             "-l", socket, "--fdname=api", "-E", "NOTIFY_SOCKET=\(notify.path)",
             PackagePaths.binary, "run", "--plan", "--config", config],
            log: node.directory.appending("daemon.log")
        )
        var daemonPID: pid_t = 0
        defer {
            if daemonPID > 0 { kill(daemonPID, SIGKILL) }
            wrapper.stop(signal: SIGKILL)
        }
        func writtenPID() -> pid_t? { pid_t((try? read(pidFile))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") }
        #expect(eventually(timeout: 20) { exists(socket) && writtenPID() != nil }, "\(wrapper.log)")
        daemonPID = try #require(writtenPID())

        // systemd-socket-activate execs the daemon on the first connection, so
        // the first request starts it (and may see it still starting: 503).
        let first = try curl(socket, "/healthz")
        #expect(first.status == 200 || first.status == 503, "\(first.body)\n\(wrapper.log)")
        let ready = notify.waitFor("READY=1", timeout: 60)
        try #require(ready != nil, "no READY=1; log:\n\(wrapper.log)")

        // Healthy once the first plan, which follows READY=1, is made.
        #expect(try eventually(timeout: 60) { try curl(socket, "/healthz").status == 200 }, "\(wrapper.log)")
        let (_, body) = try curl(socket, "/healthz")
        #expect(body.contains("\"healthy\" : true"))
        #expect(try curl(socket, "/v1/plan").status == 200)
        let log = wrapper.log
        #expect(log.contains("using the socket passed by systemd"), "\(log)")
        #expect(log.contains("activation=systemd"))
        // The activator exec'ed the daemon: its pid is the daemon's.
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(daemonPID)/exe")
        #expect(URL(fileURLWithPath: exe).lastPathComponent == "volume-reaper")

        // SIGTERM to that pid: the daemon stops cleanly (bash passes its status on).
        kill(daemonPID, SIGTERM)
        #expect(wrapper.stop(signal: 0, timeout: 30) == 0, "\(wrapper.log)")
        daemonPID = 0
        #expect(notify.waitFor("STOPPING=1", timeout: 5) != nil)
        #expect(wrapper.log.contains("access store flushed"))
        // The socket file belongs to the activator (systemd): the daemon leaves it.
        var info = stat()
        #expect(lstat(socket, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
    }

    // MARK: Startup errors

    @Test("an unknown key in the config file: one line naming the file and the key, non-zero exit")
    func unknownConfigKey() throws {
        let directory = try TemporaryDirectory("badconfig")
        defer { directory.remove() }
        let node = try emptyNode(directory)
        let config = directory.appending("bad.yaml")
        try writeConfig(
            config, kubeletRoot: node.kubeletRoot, manifests: node.manifests, state: directory.appending("state"),
            socket: directory.appending("api.sock"), extra: "reconcileIntervall: 5s"
        )
        let result = try ChildProcess.run(PackagePaths.binary, ["run", "--plan", "--config", config])
        #expect(result.status != 0)
        let errorLines = lines(result.stderr)
        #expect(errorLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(config))
        #expect(result.stderr.contains("reconcileIntervall"))
        #expect(!exists(directory.appending("api.sock")))
        #expect(!exists(directory.appending("state")))
    }

    @Test("a missing policy file: one line naming it, non-zero exit")
    func missingPolicy() throws {
        let directory = try TemporaryDirectory("nopolicy")
        defer { directory.remove() }
        let node = try emptyNode(directory)
        let config = directory.appending("config.yaml")
        let policy = directory.appending("no-such-policy.yaml")
        try writeConfig(
            config, kubeletRoot: node.kubeletRoot, manifests: node.manifests, policy: policy,
            state: directory.appending("state"), socket: directory.appending("api.sock")
        )
        let result = try ChildProcess.run(PackagePaths.binary, ["run", "--plan", "--config", config])
        #expect(result.status != 0)
        #expect(lines(result.stderr).count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(policy))
        #expect(!exists(directory.appending("api.sock")))
    }

    @Test("a socket path whose parent is a regular file: non-zero exit, the error names it, and no READY=1")
    func socketParentIsAFile() throws {
        let directory = try TemporaryDirectory("badsocket")
        defer { directory.remove() }
        let node = try emptyNode(directory)
        let parent = directory.appending("not-a-directory")
        _ = FileManager.default.createFile(atPath: parent, contents: Data("x".utf8))
        let config = directory.appending("config.yaml")
        try writeConfig(
            config, kubeletRoot: node.kubeletRoot, manifests: node.manifests,
            state: directory.appending("state"), socket: parent + "/api.sock"
        )
        let notify = try NotifySocket(path: directory.appending("notify.sock"))
        let result = try ChildProcess.run(
            PackagePaths.binary, ["run", "--plan", "--config", config], environment: ["NOTIFY_SOCKET": notify.path]
        )
        #expect(result.status != 0)
        let last = try #require(lines(result.stderr).last)
        #expect(last.contains(parent) && last.contains("not a directory"), "\(result.stderr)")
        #expect(try read(parent) == "x")
        var messages: [String] = []
        while let message = notify.receive(timeout: 0.2) { messages.append(message) }

        // The socket path is checked before anything starts: one line, no READY=1.
        #expect(lines(result.stderr).count == 1, "\(result.stderr)")
        #expect(!messages.joined().contains("READY=1"), "\(messages)")
    }
}
