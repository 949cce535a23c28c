// kube-test-server: the tests' Kubernetes API server / kubelet stand-in as a
// process, for the pod-source benchmarks. See `kube-test-server --help`.
import Foundation
import KubeTestServer

let usage = """
    usage: kube-test-server --dir DIR [--node NAME] [--pods N] [--fixture kubectl|kubelet]
                            [--kubelet-fixture] [--token TOKEN] [--bookmark-seconds S]
                            [--no-watch-list] [--bookmark-before-timeout]

    Starts the test API server on 127.0.0.1 (ephemeral port) with a PKI made by
    openssl in DIR (ca.crt, server.crt/key, client.crt/key with
    CN=system:node:NAME), writes DIR/kubeconfig (CA and client certificate
    files, context system:node:NAME@kubernetes), loads pods, and prints
    `url <https://127.0.0.1:PORT>` then `ready` on stdout.

      --dir DIR            where the PKI and kubeconfig go (created)
      --node NAME          node name (default bench-node)
      --pods N             N synthetic Running pods on NODE, each with an emptyDir
                           `scratch`; UIDs 00000000-0000-4000-8000-<12-digit index>
      --fixture F          also load the captured `kubectl` (API server) or `kubelet`
                           document's pods (their node is datagen-1-35)
      --kubelet-fixture    serve the captured kubelet document at GET /pods
      --token TOKEN        also accept this bearer token
      --bookmark-seconds S send a BOOKMARK to watches every S seconds
      --no-watch-list      refuse sendInitialEvents=true with 422, as a server
                           without the WatchList feature gate does
      --bookmark-before-timeout
                           a BOOKMARK 2 s before each watch's timeoutSeconds,
                           as the watch cache sends

    Commands on stdin, one per line:
      modify <uid> <phase>    set status.phase (containers terminated unless Running);
                              for each watch the event is written to, prints
                              `written <uid> <resourceVersion> <ns>`, ns being
                              CLOCK_MONOTONIC (DispatchTime uptime) when the write
                              to the socket completed
      burst <count> <rate>    <count> MODIFIED events at <rate> per second, round-robin
                              over the pods (an annotation changes, the phase stays);
                              prints `burst-done <count> <seconds>`
      delete <uid>            delete a pod
      bookmark                send a BOOKMARK now
      expire                  compact the history (open watches get 410 and end)
      drop end|line|mid       end open watches: clean end, cut between lines, cut mid-line
      stall / release         hold / send every byte of open and new responses
      fail <code>|off         answer LIST and WATCH with <code> (401, 403, 500) / normally
      restart                 close every connection, as a restarted server
      restart-compacted       the same, and watches from before now get 410
      down / up               close every connection and every new one at once / serve again
      stats                   prints `stats lists=<n> watches=<n> open=<n> rv=<rv>
                              bytes=<n> refused=<n> requests=<n>`
      requests                prints `request <kind> <status> <uptime ns> <query>` for each
                              request so far, then `requests-end`
      quit                    stop and exit
    """

/// The resourceVersions whose writes `modify` reports.
final class ReportedVersions: @unchecked Sendable {
    private let lock = NSLock()
    private var versions: Set<Int> = []
    func insert(_ version: Int) { lock.withLock { _ = versions.insert(version) } }
    func contains(_ version: Int) -> Bool { lock.withLock { versions.contains(version) } }
}

/// One line on stdout, whole (the event loop reports writes concurrently).
@Sendable func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("kube-test-server: " + message + "\n").utf8))
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
var directory: String?
var node = "bench-node"
var syntheticPods = 0
var fixture: String?
var kubeletFixture = false
var tokens: Set<String> = []
var bookmarkSeconds: Int?
var watchList = true
var bookmarkBeforeTimeout = false
while !arguments.isEmpty {
    let flag = arguments.removeFirst()
    func value() -> String {
        guard !arguments.isEmpty else { fail("\(flag) needs a value") }
        return arguments.removeFirst()
    }
    switch flag {
    case "--help", "-h": print(usage); exit(0)
    case "--dir": directory = value()
    case "--node": node = value()
    case "--pods": syntheticPods = Int(value()) ?? { fail("--pods needs a number") }()
    case "--fixture": fixture = value()
    case "--kubelet-fixture": kubeletFixture = true
    case "--token": tokens.insert(value())
    case "--bookmark-seconds": bookmarkSeconds = Int(value()) ?? { fail("--bookmark-seconds needs a number") }()
    case "--no-watch-list": watchList = false
    case "--bookmark-before-timeout": bookmarkBeforeTimeout = true
    default: fail("unknown argument \(flag); see --help")
    }
}
guard let directory else { fail("--dir is required; see --help") }

func syntheticPod(index: Int, node: String) -> Data {
    let uid = String(format: "00000000-0000-4000-8000-%012d", index)
    let pod: [String: Any] = [
        "metadata": [
            "name": "bench-pod-\(index)", "namespace": "bench", "uid": uid,
            "creationTimestamp": "2026-01-01T00:00:00Z", "labels": ["app": "bench"],
        ],
        "spec": [
            "nodeName": node, "restartPolicy": "Always",
            "volumes": [["name": "scratch", "emptyDir": [String: Any]()]],
            "containers": [["name": "main", "image": "busybox", "volumeMounts": [["name": "scratch", "mountPath": "/scratch"]]]],
        ],
        "status": [
            "phase": "Running", "startTime": "2026-01-01T00:00:01Z",
            "containerStatuses": [[
                "name": "main", "ready": true, "restartCount": 0, "image": "busybox",
                "containerID": "containerd://\(uid)", "state": ["running": ["startedAt": "2026-01-01T00:00:02Z"]],
            ]],
        ],
    ]
    return (try? JSONSerialization.data(withJSONObject: pod)) ?? Data()
}

do {
    let pki = try TestPKI(directory: directory, nodeName: node)
    let server = try await KubeTestServer.start(
        .init(pki: pki, clientCertificates: .optional, acceptedTokens: tokens)
    )
    try pki.kubeletKubeconfig(server: server.url).write(to: directory + "/kubeconfig")
    for index in 0..<syntheticPods { try server.putPod(json: syntheticPod(index: index, node: node)) }
    switch fixture {
    case nil: break
    case "kubectl": try server.loadPods(document: CapturedPods.json(CapturedPods.kubectlPods))
    case "kubelet": try server.loadPods(document: CapturedPods.json(CapturedPods.kubeletPods))
    default: fail("--fixture is kubectl or kubelet")
    }
    if kubeletFixture { server.setKubeletPods(try CapturedPods.load(CapturedPods.kubeletPods)) }
    if let bookmarkSeconds { server.setAutomaticBookmarks(every: .seconds(bookmarkSeconds)) }
    server.setWatchListSupported(watchList)
    server.setBookmarksBeforeTimeout(bookmarkBeforeTimeout)

    // Only events a `modify` made are reported, not a burst's.
    let reported = ReportedVersions()
    server.setOnEventWritten { event in
        if event.type == "MODIFIED", reported.contains(event.resourceVersion) { say("written \(event.uid ?? "-") \(event.resourceVersion) \(event.uptimeNanoseconds)") }
    }
    say("url \(server.url)")
    say("kubeconfig \(directory)/kubeconfig")
    say("ready")

    var burstSequence = 0
    commands: while let line = readLine() {
        let words = line.split(separator: " ").map(String.init)
        guard let command = words.first else { continue }
        do {
            switch command {
            case "modify" where words.count == 3:
                // Registered before the change, so the write cannot outrun it.
                let next = server.resourceVersion + 1
                reported.insert(next)
                let rv = try server.setPhase(uid: words[1], words[2], terminateContainers: words[2] != "Running")
                if rv != next { say("error resourceVersion raced: \(rv) != \(next)") }
            case "burst" where words.count == 3:
                guard let count = Int(words[1]), let rate = Double(words[2]), rate > 0 else { say("error burst <count> <rate>"); continue }
                let uids = server.podUIDs
                guard !uids.isEmpty else { say("error no pods"); continue }
                let start = ContinuousClock.now
                for index in 0..<count {
                    let due = start + .nanoseconds(Int64(Double(index) / rate * 1e9))
                    let now = ContinuousClock.now
                    if due > now { try await Task.sleep(for: due - now) }
                    burstSequence += 1
                    let sequence = burstSequence
                    try server.modifyPod(uid: uids[index % uids.count]) { pod in
                        var metadata = pod["metadata"] as? [String: Any] ?? [:]
                        var annotations = metadata["annotations"] as? [String: Any] ?? [:]
                        annotations["bench.volume-reaper/sequence"] = String(sequence)
                        metadata["annotations"] = annotations
                        pod["metadata"] = metadata
                    }
                }
                let elapsed = ContinuousClock.now - start
                say("burst-done \(count) \(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)")
            case "delete" where words.count == 2: try server.deletePod(uid: words[1])
            case "bookmark": server.sendBookmark()
            case "expire": server.expireHistory()
            case "drop" where words.count == 2:
                switch words[1] {
                case "end": server.dropWatches(.endOfStream)
                case "line": server.dropWatches(.atLineBoundary)
                case "mid": server.dropWatches(.midLine)
                default: say("error drop end|line|mid")
                }
            case "stall": server.stall()
            case "release": server.releaseStall()
            case "fail" where words.count == 2:
                if words[1] == "off" { server.setFailure(nil) } else if let code = Int(words[1]) {
                    server.setFailure(code, for: [.list, .watch])
                } else { say("error fail <code>|off") }
            case "restart": server.restart(compacted: false)
            case "restart-compacted": server.restart(compacted: true)
            case "down": server.setRefusingConnections(true)
            case "up": server.setRefusingConnections(false)
            case "stats":
                say(
                    "stats lists=\(server.listCount) watches=\(server.watchCount) open=\(server.openWatchCount) rv=\(server.resourceVersion)"
                        + " bytes=\(server.bytesSent) refused=\(server.refusedConnections) requests=\(server.requests.count)"
                )
            case "requests":
                for request in server.requests {
                    let query = request.query.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
                    say("request \(request.kind.rawValue) \(request.status) \(request.uptimeNanoseconds) \(query.isEmpty ? "-" : query)")
                }
                say("requests-end")
            case "quit": break commands
            default: say("error unknown command: \(line)")
            }
        } catch {
            say("error \(error)")
        }
    }
    await server.stop()
} catch {
    fail("\(error)")
}
