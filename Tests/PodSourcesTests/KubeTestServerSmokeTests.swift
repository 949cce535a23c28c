import Foundation
import KubeTestServer
import TestSupport
import Testing

/// The test server as curl sees it: real TLS with the PKI's certificates, the
/// real protocol, the captured documents (Tests/KubeTestServer/Fixtures/SOURCES.md).
@Suite("KubeTestServer smoke")
struct KubeTestServerSmokeTests {
    static let node = CapturedPods.nodeName

    struct Answer {
        var exitStatus: Int32
        var httpStatus: Int
        var body: String
        var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }
    }

    /// `curl` against the server; the body and the HTTP status.
    static func curl(
        _ url: String, pki: TestPKI, clientCertificate: Bool = true, token: String? = nil, caFile: String? = nil
    ) throws -> Answer {
        var arguments = ["-s", "--max-time", "5", "--cacert", caFile ?? pki.ca.certificate, "-o", "-", "-w", "\n%{http_code}"]
        if clientCertificate { arguments += ["--cert", pki.client.certificate, "--key", pki.client.key] }
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        let result = try ChildProcess.run("/usr/bin/curl", arguments + [url])
        var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.popLast() ?? "") ?? 0
        return Answer(exitStatus: result.status, httpStatus: status, body: lines.joined(separator: "\n"))
    }

    /// A watch read by a background curl until the server ends the stream.
    final class WatchReader {
        let process = Process()
        let output: String

        init(_ url: String, pki: TestPKI, scratch: TemporaryDirectory) throws {
            output = scratch.appending("watch.out")
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = [
                "-s", "-N", "--max-time", "10", "--cacert", pki.ca.certificate,
                "--cert", pki.client.certificate, "--key", pki.client.key, url,
            ]
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        /// Waits for curl to exit; its status and what it received.
        func finish() async -> (status: Int32, text: String) {
            for _ in 0..<3000 where process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            return (process.terminationStatus, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
    }

    static func withServer(
        _ configure: (KubeTestServer.Configuration) -> KubeTestServer.Configuration = { $0 },
        _ body: (KubeTestServer, TestPKI, TemporaryDirectory) async throws -> Void
    ) async throws {
        let scratch = try TemporaryDirectory("kube-test-server")
        defer { try? FileManager.default.removeItem(atPath: scratch.path) }
        let pki = try TestPKI(directory: scratch.appending("pki"), nodeName: node)
        let server = try await KubeTestServer.start(configure(.init(pki: pki)))
        do {
            try server.loadPods(document: CapturedPods.json(CapturedPods.kubectlPods))
            try await body(server, pki, scratch)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    static func lines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    static func waitForOpenWatch(_ server: KubeTestServer) async throws {
        for _ in 0..<3000 where server.openWatchCount == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.openWatchCount == 1)
    }

    @Test("LIST answers the captured pods of the node, as the apiserver writes a PodList")
    func list() async throws {
        try await Self.withServer { server, pki, _ in
            let answer = try Self.curl(server.url + "/api/v1/pods?fieldSelector=spec.nodeName%3D\(Self.node)", pki: pki)
            #expect(answer.exitStatus == 0)
            #expect(answer.httpStatus == 200)
            let list = try #require(answer.json)
            #expect(list["kind"] as? String == "PodList")
            #expect((list["metadata"] as? [String: Any])?["resourceVersion"] as? String == String(server.resourceVersion))
            let items = try #require(list["items"] as? [[String: Any]])
            #expect(items.allSatisfy { $0["kind"] == nil && $0["apiVersion"] == nil })
            let uids = items.compactMap { ($0["metadata"] as? [String: Any])?["uid"] as? String }
            #expect(uids == (try CapturedPods.pods(in: CapturedPods.kubectlPods)).map(\.uid))
            let request = try #require(server.requests.last)
            #expect(request.kind == .list)
            #expect(request.clientCommonName == "system:node:\(Self.node)")
            #expect(request.query["fieldSelector"] == "spec.nodeName=\(Self.node)")

            let elsewhere = try Self.curl(server.url + "/api/v1/pods?fieldSelector=spec.nodeName%3Dother-node", pki: pki)
            #expect((elsewhere.json?["items"] as? [Any])?.isEmpty == true)
        }
    }

    @Test("a watch streams MODIFIED and BOOKMARK lines and records its query")
    func watch() async throws {
        try await Self.withServer { server, pki, scratch in
            let pods = try CapturedPods.pods(in: CapturedPods.kubectlPods)
            let running = try #require(pods.first { $0.name == "metrics-server-9d74bb658-c6nnt" })
            let from = server.resourceVersion
            let query = "watch=true&fieldSelector=spec.nodeName%3D\(Self.node)&resourceVersion=\(from)&allowWatchBookmarks=true&timeoutSeconds=300"
            let reader = try WatchReader(server.url + "/api/v1/pods?" + query, pki: pki, scratch: scratch)
            try await Self.waitForOpenWatch(server)
            let rv = try server.setPhase(uid: running.uid, "Succeeded")
            server.sendBookmark()
            server.dropWatches(.endOfStream)
            let (status, text) = await reader.finish()
            #expect(status == 0, "a clean end of the stream")
            let events = Self.lines(text)
            #expect(events.map { $0["type"] as? String } == ["MODIFIED", "BOOKMARK"])
            let modified = try #require(events.first?["object"] as? [String: Any])
            #expect(modified["kind"] as? String == "Pod")
            let podStatus = try #require(modified["status"] as? [String: Any])
            #expect(podStatus["phase"] as? String == "Succeeded")
            let container = try #require((podStatus["containerStatuses"] as? [[String: Any]])?.first)
            #expect(((container["state"] as? [String: Any])?["terminated"] as? [String: Any])?["exitCode"] as? Int == 0)
            #expect((modified["metadata"] as? [String: Any])?["resourceVersion"] as? String == String(rv))
            let bookmark = try #require(events.last?["object"] as? [String: Any])
            #expect((bookmark["metadata"] as? [String: Any])?["resourceVersion"] as? String == String(rv))
            let request = try #require(server.requests.first { $0.kind == .watch })
            #expect(request.query["allowWatchBookmarks"] == "true")
            #expect(request.query["timeoutSeconds"] == "300")
            #expect(request.query["resourceVersion"] == String(from))
        }
    }

    @Test("timeoutSeconds ends the watch cleanly; without a resourceVersion it starts with ADDED for every pod")
    func timeoutAndInitialState() async throws {
        try await Self.withServer { server, pki, _ in
            let answer = try Self.curl(
                server.url + "/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3D\(Self.node)&timeoutSeconds=1", pki: pki
            )
            #expect(answer.exitStatus == 0)
            let events = Self.lines(answer.body)
            #expect(events.map { $0["type"] as? String } == ["ADDED", "ADDED", "ADDED"])
        }
    }

    @Test("a watch from a compacted resourceVersion gets one ERROR event with a 410 Expired Status, then the end")
    func expired() async throws {
        try await Self.withServer { server, pki, _ in
            let old = server.resourceVersion - 1
            server.expireHistory()
            let answer = try Self.curl(
                server.url + "/api/v1/pods?watch=true&resourceVersion=\(old)&fieldSelector=spec.nodeName%3D\(Self.node)", pki: pki
            )
            #expect(answer.exitStatus == 0)
            #expect(answer.httpStatus == 200)
            let events = Self.lines(answer.body)
            #expect(events.count == 1)
            #expect(events.first?["type"] as? String == "ERROR")
            let status = try #require(events.first?["object"] as? [String: Any])
            #expect(status["kind"] as? String == "Status")
            #expect(status["code"] as? Int == 410)
            #expect(status["reason"] as? String == "Expired")
            #expect(status["message"] as? String == "too old resource version: \(old) (\(server.resourceVersion))")
        }
    }

    @Test("no credentials or an unknown token get 401, a refused node 403, an unrelated CA no handshake")
    func refusals() async throws {
        try await Self.withServer({ var c = $0; c.acceptedTokens = ["good-token"]; return c }) { server, pki, _ in
            let url = server.url + "/api/v1/pods?fieldSelector=spec.nodeName%3D\(Self.node)"
            let anonymous = try Self.curl(url, pki: pki, clientCertificate: false)
            #expect(anonymous.httpStatus == 401)
            #expect(anonymous.json?["reason"] as? String == "Unauthorized")
            #expect(try Self.curl(url, pki: pki, clientCertificate: false, token: "bad-token").httpStatus == 401)
            #expect(try Self.curl(url, pki: pki, clientCertificate: false, token: "good-token").httpStatus == 200)
            server.setAcceptedTokens(["rotated-token"])
            #expect(try Self.curl(url, pki: pki, clientCertificate: false, token: "good-token").httpStatus == 401)

            server.setForbidden(true)
            let forbidden = try Self.curl(url, pki: pki)
            #expect(forbidden.httpStatus == 403)
            #expect(forbidden.json?["reason"] as? String == "Forbidden")
            server.setForbidden(false)

            let wrongCA = try Self.curl(url, pki: pki, caFile: pki.unrelatedCA.certificate)
            #expect(wrongCA.exitStatus != 0)
            #expect(server.requests.count == 5, "the wrong-CA attempt never became a request")

            let impostor = try await KubeTestServer.start(
                .init(pki: pki, servingCertificate: try pki.issueUntrustedServerCertificate(name: "impostor"))
            )
            let refused = try Self.curl(impostor.url + "/api/v1/pods", pki: pki)
            await impostor.stop()
            #expect(refused.exitStatus == 60, "curl: the server's certificate is not from the trusted CA")
            #expect(impostor.requests.isEmpty)
        }
    }

    @Test("GET /pods serves the captured kubelet document byte for byte")
    func kubeletPods() async throws {
        try await Self.withServer { server, pki, scratch in
            let captured = try CapturedPods.load(CapturedPods.kubeletPods)
            server.setKubeletPods(captured)
            let saved = scratch.appending("pods.json")
            let result = try ChildProcess.run(
                "/usr/bin/curl",
                ["-s", "--fail", "--cacert", pki.ca.certificate, "--cert", pki.client.certificate, "--key", pki.client.key,
                 "-o", saved, server.url + "/pods"]
            )
            #expect(result.status == 0)
            #expect(try Data(contentsOf: URL(fileURLWithPath: saved)) == captured)
            let staticPod = try #require(try CapturedPods.pods(in: CapturedPods.kubeletPods).first { $0.isStaticPod })
            #expect(staticPod.uid == "07bd11a0a13dfe5450a17a39eb8e32d2")
            let mirror = try #require(try CapturedPods.pods(in: CapturedPods.kubectlPods).first { $0.configMirror != nil })
            #expect(mirror.configMirror == staticPod.uid && mirror.uid != staticPod.uid)
            let old = try CapturedPods.pods(in: CapturedPods.kubeletPodsOld)
            #expect(old.map(\.isStaticPod) == [true, false])
            server.setKubeletPods(try CapturedPods.load(CapturedPods.kubeletPodsOld))
            #expect(try Self.curl(server.url + "/pods", pki: pki).body == String(decoding: try CapturedPods.load(CapturedPods.kubeletPodsOld), as: UTF8.self))
            #expect(server.kubeletPodsCount == 2)
        }
    }

    @Test("a watch cut mid-line ends curl with an error after half a line")
    func cutMidLine() async throws {
        try await Self.withServer { server, pki, scratch in
            let reader = try WatchReader(
                server.url + "/api/v1/pods?watch=true&resourceVersion=\(server.resourceVersion)", pki: pki, scratch: scratch
            )
            try await Self.waitForOpenWatch(server)
            server.dropWatches(.midLine)
            let (status, text) = await reader.finish()
            #expect(status != 0)
            #expect(!text.isEmpty && !text.hasSuffix("\n"))
            #expect(Self.lines(text).isEmpty)
        }
    }

    @Test("a stall sends headers and holds the bytes until released; garbage modes answer what is not JSON")
    func stallAndGarbage() async throws {
        try await Self.withServer { server, pki, scratch in
            server.stall()
            let reader = try WatchReader(
                server.url + "/api/v1/pods?watch=true&resourceVersion=\(server.resourceVersion)&allowWatchBookmarks=true",
                pki: pki, scratch: scratch
            )
            try await Self.waitForOpenWatch(server)
            server.sendBookmark()
            try await Task.sleep(for: .milliseconds(200))
            #expect(try String(contentsOfFile: reader.output, encoding: .utf8).isEmpty, "nothing while stalled")
            server.releaseStall()
            server.dropWatches(.endOfStream)
            let (status, text) = await reader.finish()
            #expect(status == 0)
            #expect(Self.lines(text).map { $0["type"] as? String } == ["BOOKMARK"])

            server.setGarbage(.listBody)
            let garbage = try Self.curl(server.url + "/api/v1/pods", pki: pki)
            #expect(garbage.httpStatus == 200)
            #expect(garbage.json == nil)
            server.setGarbage(.watchLine)
            let garbageWatch = try Self.curl(server.url + "/api/v1/pods?watch=1&timeoutSeconds=1&resourceVersion=\(server.resourceVersion)", pki: pki)
            #expect(garbageWatch.body.hasPrefix("this is not JSON"))
            server.setGarbage([])
            server.setFailure(500, for: [.list])
            #expect(try Self.curl(server.url + "/api/v1/pods", pki: pki).httpStatus == 500)
            #expect(server.listCount == 2)
            #expect(server.watchCount == 2)
        }
    }

    @Test("automatic bookmarks reach watches that asked for them; stop() ends open streams")
    func automaticBookmarksAndStop() async throws {
        let scratch = try TemporaryDirectory("kube-test-server")
        defer { try? FileManager.default.removeItem(atPath: scratch.path) }
        let pki = try TestPKI(directory: scratch.appending("pki"), nodeName: Self.node)
        let server = try await KubeTestServer.start(.init(pki: pki, clientCertificates: .required))
        server.setAutomaticBookmarks(every: .milliseconds(100))
        let reader = try WatchReader(
            server.url + "/api/v1/pods?watch=true&resourceVersion=\(server.resourceVersion)&allowWatchBookmarks=true",
            pki: pki, scratch: scratch
        )
        try await Self.waitForOpenWatch(server)
        try await Task.sleep(for: .milliseconds(450))
        await server.stop()
        let (status, text) = await reader.finish()
        #expect(status != 0, "the stream was cut, not ended")
        #expect(Self.lines(text).filter { $0["type"] as? String == "BOOKMARK" }.count >= 2)
        #expect(try Self.curl(server.url + "/api/v1/pods", pki: pki).exitStatus == 7, "nothing listens any more")
    }
}
