import Foundation
import KubeTestServer
import ReaperCore
import Testing
import TestSupport

/// Issue 8 as an operator runs it: `volume-reaper run --config C` with
/// `podSource.kind: apiserver` and a kubeconfig shaped like kubeadm's
/// kubelet.conf (client certificate files, user `system:node:<node>`)
/// pointing at the test server, which serves pods a real cluster wrote
/// (Tests/KubeTestServer/Fixtures/SOURCES.md). The node's pod directories
/// are made for those pods.
@Suite("volume-reaper run: pods from the API server", .serialized)
struct PodSourceDaemonTests {
    static let metricsServer = "5e5613d6-fccb-40d6-967b-447697d4d871"  // Running, emptyDir tmp-dir
    static let failJob = "0961a396-5fff-45fe-a970-19b2aac96e5d"  // Failed, projected volume
    static let orphan = "7f3a9c2e-1b4d-4e5f-8a6b-9c0d1e2f3a4b"  // no pod of this UID anywhere
    static let reapedMessageID = "5109ffc17eb34ec3bd6968d5b3c35abc"

    /// `TestPolicies.singleSnapshot`, but kube-system is not excluded (the
    /// captured cluster's Running pod lives there) and the orphan circuit
    /// breaker lets a small node's orphans go (three pod directories here).
    static let policy: String = {
        let text = (try? String(contentsOfFile: TestPolicies.singleSnapshot, encoding: .utf8)) ?? ""
        precondition(text.contains("excludeNamespaces: [kube-system]") && text.contains("maxOrphanFraction: 0.5"))
        let path = NSTemporaryDirectory() + "volume-reaper-pod-source-\(getpid()).yaml"
        try? Data(text.replacingOccurrences(of: "excludeNamespaces: [kube-system]", with: "excludeNamespaces: []")
            .replacingOccurrences(of: "maxOrphanFraction: 0.5", with: "maxOrphanFraction: 1").utf8)
            .write(to: URL(fileURLWithPath: path), options: .atomic)
        return path
    }()

    /// Volume directories for `pods` (the local plugins only), every
    /// timestamp three hours old; plus an orphan. Returns the volume paths by UID.
    static func makeNode(_ kubeletRoot: String, pods: [CapturedPods.Pod], orphans: [String] = [orphan]) throws -> [String: [String]] {
        let plugins = [
            "emptyDir": "kubernetes.io~empty-dir", "projected": "kubernetes.io~projected", "configMap": "kubernetes.io~configmap",
            "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
        ]
        var volumes: [String: [String]] = [:]
        for pod in pods {
            for volume in pod.volumes {
                guard let plugin = plugins[volume.type] else { continue }
                volumes[pod.uid, default: []].append("\(kubeletRoot)/pods/\(pod.uid)/volumes/\(plugin)/\(volume.name)")
            }
        }
        for uid in orphans { volumes[uid] = ["\(kubeletRoot)/pods/\(uid)/volumes/kubernetes.io~empty-dir/scratch"] }
        try FileManager.default.createDirectory(atPath: kubeletRoot + "/pods", withIntermediateDirectories: true)
        for path in volumes.values.flatMap({ $0 }) {
            try FileManager.default.createDirectory(atPath: path + "/sub", withIntermediateDirectories: true)
            try Data("data\n".utf8).write(to: URL(fileURLWithPath: path + "/sub/file"))
        }
        let stamp = Int(Date().timeIntervalSince1970) - 3 * 3600
        let touched = try ChildProcess.run("/usr/bin/find", [kubeletRoot + "/pods", "-exec", "touch", "-h", "-d", "@\(stamp)", "{}", "+"])
        guard touched.status == 0 else { throw ExampleNodeError(message: touched.stderr) }
        return volumes
    }

    /// A running daemon against a started test server.
    struct Running {
        let directory: TemporaryDirectory
        let pki: TestPKI
        let server: KubeTestServer
        let daemon: BackgroundProcess
        let notify: NotifySocket
        let socket: String
        let volumes: [String: [String]]

        func stop() async {
            daemon.stop(signal: SIGKILL)
            await server.stop()
            pki.remove()
            directory.remove()
        }

        func plan() throws -> Plan {
            let (status, body) = try curl(socket, "/v1/plan")
            guard status == 200 else { throw ExampleNodeError(message: "GET /v1/plan: \(status) \(body)") }
            return try Plan.decoder().decode(Plan.self, from: Data(body.utf8))
        }

        func verdict(_ path: String) throws -> VolumeVerdict? {
            try plan().volumes.first { $0.path == path }
        }
    }

    /// Starts the server with the captured API server pods and the daemon
    /// with `podSource.kind: apiserver`; waits for READY=1.
    static func start(
        dryRun: Bool, logTarget: String = "stderr", acceptedTokens: Set<String> = [], auth: ((TestPKI) -> [KubeconfigAuth])? = nil,
        waitHealthy: Bool = true, extraConfig: String = "", policy: String = Self.policy,
        prepare: (KubeTestServer) throws -> Void = { _ in }
    ) async throws -> Running {
        let directory = try TemporaryDirectory("apiserver-daemon")
        let pki = try TestPKI(directory: directory.appending("pki"), nodeName: CapturedPods.nodeName)
        let server = try await KubeTestServer.start(.init(
            pki: pki, clientCertificates: auth == nil ? .required : .notRequested, acceptedTokens: acceptedTokens
        ))
        do {
            try server.loadPods(document: CapturedPods.json(CapturedPods.kubectlPods))
            try prepare(server)
            let kubeconfig = directory.appending("kubelet.conf")
            if let auth {
                _ = try Kubeconfig.single(
                    server: server.url, trust: .certificateAuthorityFile(pki.ca.certificate), auth: auth(pki),
                    user: "system:node:\(CapturedPods.nodeName)"
                ).write(to: kubeconfig)
            } else {
                _ = try pki.kubeletKubeconfig(server: server.url).write(to: kubeconfig)
            }
            let kubeletRoot = directory.appending("kubelet")
            let volumes = try makeNode(kubeletRoot, pods: CapturedPods.pods(in: CapturedPods.kubectlPods))
            let socket = directory.appending("api.sock")
            let config = directory.appending("config.yaml")
            // reconcileInterval 10m: every cycle after the first is one a pod change started.
            try FileManager.default.createDirectory(atPath: directory.appending("cgroup/kubepods.slice"), withIntermediateDirectories: true)
            try """
                kubeletRoot: \(kubeletRoot)
                cgroupRoot: \(directory.appending("cgroup"))
                policy: \(policy)
                stateDir: \(directory.appending("state"))
                socket: \(socket)
                reconcileInterval: 10m
                flushInterval: 500ms
                logTarget: \(logTarget)
                podSource:
                  kind: apiserver
                  kubeconfig: \(kubeconfig)
                  maxBackoff: 500ms
                  startupSpread: 0s
                \(extraConfig)
                """.write(toFile: config, atomically: true, encoding: .utf8)
            let notify = try NotifySocket(path: directory.appending("notify.sock"))
            let daemon = try BackgroundProcess(
                PackagePaths.binary, ["run"] + (dryRun ? ["--plan"] : []) + ["--config", config],
                environment: ["NOTIFY_SOCKET": notify.path], log: directory.appending("daemon.log")
            )
            let running = Running(directory: directory, pki: pki, server: server, daemon: daemon, notify: notify, socket: socket, volumes: volumes)
            guard notify.waitFor("READY=1", timeout: 60) != nil else {
                let log = daemon.log
                await running.stop()
                throw ExampleNodeError(message: "no READY=1 within 60s; log:\n\(log)")
            }
            if waitHealthy {
                guard await waitUntil(timeout: 30, { (try? curl(socket, "/healthz"))?.status == 200 }) else {
                    let log = daemon.log
                    await running.stop()
                    throw ExampleNodeError(message: "not healthy within 30s; log:\n\(log)")
                }
                // The first cycle may run before the first LIST answers
                // (everything kept, manifests-empty); the tests start from a
                // plan made with the server's pods.
                guard await waitUntil(timeout: 30, { (try? running.plan())?.manifests.synced == true }) else {
                    let log = daemon.log
                    await running.stop()
                    throw ExampleNodeError(message: "no plan from a synced pod view within 30s; log:\n\(log)")
                }
            }
            return running
        } catch {
            await server.stop()
            pki.remove()
            directory.remove()
            throw error
        }
    }

    @Test("the daemon follows the server: a pod that turns Succeeded is reaped within one reconcile, with its journald entry")
    func succeededIsReaped() async throws {
        let running = try await Self.start(dryRun: false, logTarget: "journald")
        defer { running.daemon.stop(signal: SIGKILL) }
        do {
            let metricsVolume = try #require(running.volumes[Self.metricsServer]?.first { $0.hasSuffix("/tmp-dir") })
            let failVolumes = try #require(running.volumes[Self.failJob])
            // The first cycle: the Failed Job's idle volume and the orphan go; the Running pod's stays.
            #expect(await waitUntil(timeout: 20) { failVolumes.allSatisfy { !FileManager.default.fileExists(atPath: $0) } })
            #expect(await waitUntil(timeout: 20) { !FileManager.default.fileExists(atPath: running.volumes[Self.orphan]![0]) })
            let before = try #require(try running.verdict(metricsVolume))
            #expect(before.verdict == .keep && before.reasons == [.podRunning] && before.podPhase == "Running", "\(before)\n\(running.daemon.log)")
            #expect(try running.plan().manifests.source == .apiserver)

            try running.server.setPhase(uid: Self.metricsServer, "Succeeded", terminateContainers: false)
            // reconcileInterval is 10m: only the watch event can start this cycle.
            #expect(await waitUntil(timeout: 15) { !FileManager.default.fileExists(atPath: metricsVolume) }, "\(running.daemon.log)")
            var entry: [String: String]?
            _ = await waitUntil(timeout: 10) {
                let result = try? ChildProcess.run("/usr/bin/journalctl", [
                    "_PID=\(running.daemon.pid)", "POD_UID=\(Self.metricsServer)", "-o", "json", "--no-pager",
                ])
                entry = (result?.stdout ?? "").split(separator: "\n").compactMap { line -> [String: String]? in
                    (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?.compactMapValues { $0 as? String }
                }.first { $0["MESSAGE_ID"] == Self.reapedMessageID }
                return entry != nil
            }
            let reaped = try #require(entry, "no journald entry for the reap")
            #expect(reaped["VOLUME_PATH"] == metricsVolume)
            #expect(reaped["POD_NAME"] == "metrics-server-9d74bb658-c6nnt")
            #expect(reaped["REASON"]?.contains("pod-terminated") == true)
        }
        await running.stop()
    }

    @Test("a pod deleted on the server makes an orphan (still judged idle or not); a pod directory born after the last LIST under a silently dead watch is manifests-older-than-pod")
    func deletedAndBornLater() async throws {
        let running = try await Self.start(dryRun: true)
        defer { running.daemon.stop(signal: SIGKILL) }
        do {
            let failVolume = try #require(running.volumes[Self.failJob]?.first)
            let metricsVolume = try #require(running.volumes[Self.metricsServer]?.first { $0.hasSuffix("/tmp-dir") })
            #expect(try running.verdict(failVolume)?.reasons == [.podTerminated, .idle])
            try running.server.deletePod(uid: Self.failJob)
            try running.server.deletePod(uid: Self.metricsServer)
            #expect(await waitUntil(timeout: 15) { (try? running.verdict(failVolume))?.orphan == true })
            let orphaned = try #require(try running.verdict(failVolume))
            #expect(orphaned.verdict == .reap && orphaned.reasons == [.orphan, .idle] && orphaned.pod == nil, "\(orphaned)")
            // `volume-reaper idle` says the same.
            let idle = try ChildProcess.run(PackagePaths.binary, ["idle", "--json", "--socket", running.socket])
            #expect(idle.status == 0 && idle.stdout.contains(failVolume), "\(idle.stdout)\(idle.stderr)")
            // Still subject to the idle rule: a fresh write keeps the other one.
            try Data("new\n".utf8).write(to: URL(fileURLWithPath: metricsVolume + "/sub/fresh"))
            _ = try curl(running.socket, "/v1/reconcile", method: "POST")
            let written = try #require(try running.verdict(metricsVolume))
            #expect(written.orphan && written.verdict == .keep && written.reasons.contains(.recentAccess), "\(written.reasons)")

            // The watch goes silent (no bytes, no close): a pod created now is
            // missing from the view, and its directory is newer than the view.
            running.server.stall()
            let late = "2b8c4d6e-0f1a-4b3c-9d5e-7f8091a2b3c4"
            let lateVolume = running.directory.appending("kubelet/pods/\(late)/volumes/kubernetes.io~empty-dir/cache")
            try FileManager.default.createDirectory(atPath: lateVolume, withIntermediateDirectories: true)
            try Data("x\n".utf8).write(to: URL(fileURLWithPath: lateVolume + "/file"))
            _ = try ChildProcess.run("/usr/bin/touch", ["-d", "-3 hours", lateVolume + "/file", lateVolume])
            _ = try curl(running.socket, "/v1/reconcile", method: "POST")
            let born = try #require(try running.verdict(lateVolume))
            #expect(born.orphan && born.verdict == .keep && born.reasons.contains(.manifestsOlderThanPod), "\(born.reasons)")
            running.server.releaseStall()

            // The watch is cut and the relist fails: the view is unsynced, and
            // the orphan that was reapable a moment ago is kept.
            running.server.setFailure(500, for: [.list])
            running.server.dropWatches(.midLine)
            #expect(await waitUntil(timeout: 20) {
                guard let body = (try? curl(running.socket, "/healthz"))?.body,
                      let health = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return false }
                return (health["podSource"] as? [String: Any])?["state"] as? String == "failing"
            })
            _ = try curl(running.socket, "/v1/reconcile", method: "POST")
            let unsynced = try #require(try running.verdict(failVolume))
            #expect(unsynced.orphan && unsynced.verdict == .keep && unsynced.reasons == [.podSourceUnsynced], "\(unsynced.reasons)")
            #expect(try running.plan().manifests.synced == false)
        }
        await running.stop()
    }

    @Test("wrong credentials: one clear log line, a degraded /healthz and STATUS=, and nothing is reaped")
    func wrongCredentials() async throws {
        let running = try await Self.start(
            dryRun: false, acceptedTokens: ["the-right-token"], auth: { _ in [.token("a-wrong-token")] }, waitHealthy: false
        )
        defer { running.daemon.stop(signal: SIGKILL) }
        do {
            #expect(await waitUntil(timeout: 20) { (try? curl(running.socket, "/healthz"))?.status == 503 })
            // Several retries later, still one line for the one state.
            // Streaming lists (WatchList) or LISTs: the daemon asks with either.
            #expect(await waitUntil(timeout: 20) { running.server.listCount + running.server.watchCount >= 4 })
            let (status, body) = try curl(running.socket, "/healthz")
            #expect(status == 503)
            let health = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            #expect(health["state"] as? String == "degraded")
            let source = try #require(health["podSource"] as? [String: Any])
            #expect(source["state"] as? String == "failing" && source["problemKind"] as? String == "unauthorized", "\(source)")
            let failing = running.daemon.log.split(separator: "\n").filter { $0.contains("pod source failing") }
            #expect(failing.count == 1, "\(failing)")
            #expect(failing.first?.contains("HTTP 401") == true)
            #expect(running.notify.waitFor("pods from apiserver failing (unauthorized)", timeout: 10) != nil)
            // Nothing is known: every volume stays.
            for path in running.volumes.values.flatMap({ $0 }) { #expect(FileManager.default.fileExists(atPath: path), "\(path)") }
            let plan = try running.plan()
            #expect(plan.summary.reap == 0)
            #expect(plan.manifests.synced == false)
        }
        await running.stop()
    }
}

/// `--plan --pod-source kubelet` against the test server's `/pods`, serving a
/// kubelet answer captured on a real node, judges every volume as the files
/// source judges the same document in a file.
@Suite("volume-reaper --plan: the kubelet source judges as the files source")
struct KubeletSourcePlanTests {
    @Test("same verdicts and reasons for a captured kubelet /pods document, but the orphan: kept, the kubelet cannot vouch for absence", arguments: [CapturedPods.kubeletPods, CapturedPods.kubeletPodsOld])
    func sameAsFiles(_ fixture: String) async throws {
        let directory = try TemporaryDirectory("kubelet-source")
        defer { directory.remove() }
        let pki = try TestPKI(directory: directory.appending("pki"), nodeName: CapturedPods.nodeName)
        let server = try await KubeTestServer.start(.init(pki: pki, clientCertificates: .required))
        do {
            let document = try CapturedPods.load(fixture)
            server.setKubeletPods(document)
            let kubeletRoot = directory.appending("kubelet")
            let volumes = try PodSourceDaemonTests.makeNode(kubeletRoot, pods: CapturedPods.pods(in: fixture))
            let manifests = directory.appending("manifests")
            try FileManager.default.createDirectory(atPath: manifests, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory.appending("cgroup/kubepods.slice"), withIntermediateDirectories: true)
            try document.write(to: URL(fileURLWithPath: manifests + "/pods.json"))
            let kubeconfig = try pki.kubeletKubeconfig(server: server.url).write(to: directory.appending("kubelet.conf"))
            let config = directory.appending("config.yaml")
            try """
                podSource:
                  kind: kubelet
                  kubeconfig: \(kubeconfig)
                  kubeletURL: \(server.url)
                """.write(toFile: config, atomically: true, encoding: .utf8)
            let common = [
                "--plan", "--json", "--kubelet-root", kubeletRoot, "--cgroup-root", directory.appending("cgroup"), "--policy", PodSourceDaemonTests.policy,
                "--state-dir", directory.appending("state"), "--log-target", "stderr",
            ]
            let fromFiles = try ChildProcess.run(PackagePaths.binary, common + ["--pod-source", "files", "--manifests", manifests])
            let fromKubelet = try ChildProcess.run(PackagePaths.binary, common + ["--config", config])
            #expect(fromFiles.status == 0 && fromKubelet.status == 0, "\(fromFiles.stderr)\(fromKubelet.stderr)")
            let files = try Plan.decoder().decode(Plan.self, from: Data(fromFiles.stdout.utf8))
            let kubelet = try Plan.decoder().decode(Plan.self, from: Data(fromKubelet.stdout.utf8))
            #expect(files.manifests.complete && kubelet.manifests.complete, "\(files.manifests.errors) \(kubelet.manifests.errors)")
            #expect(kubelet.manifests.source == .kubelet && files.manifests.source == .files)
            #expect(server.kubeletPodsCount == 1)
            #expect(files.volumes.count == volumes.values.flatMap { $0 }.count && !files.volumes.isEmpty)
            func judged(_ plan: Plan) -> [String: String] {
                Dictionary(uniqueKeysWithValues: plan.volumes.map { volume in
                    (volume.path, "\(volume.verdict) \(volume.reasons.map(\.rawValue)) orphan=\(volume.orphan) phase=\(volume.podPhase ?? "-") pod=\(volume.pod ?? "-")")
                })
            }
            // Every pod the kubelet lists is judged as from the files; the
            // orphan is not: the kubelet's /pods never vouches for absence.
            let orphanVolume = try #require(volumes[PodSourceDaemonTests.orphan]?.first)
            #expect(judged(kubelet).filter { $0.key != orphanVolume } == judged(files).filter { $0.key != orphanVolume })
            #expect(files.volumes.first { $0.path == orphanVolume }?.reasons == [.orphan, .idle])
            let kept = try #require(kubelet.volumes.first { $0.path == orphanVolume })
            #expect(kept.verdict == .keep && kept.orphan && kept.reasons == [.podSourceCannotVouch], "\(kept.reasons)")
            // The captured Failed Job is reaped by both.
            #expect(files.summary.reap >= 1, "\(fromFiles.stdout)")
        } catch {
            await server.stop()
            pki.remove()
            throw error
        }
        await server.stop()
        pki.remove()
    }
}
