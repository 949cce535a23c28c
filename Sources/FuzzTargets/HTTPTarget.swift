import Dispatch
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Prometheus
import ReaperCore
import SocketAPI

extension FuzzTargets {
    /// Bytes a client sends on one connection, through the socket API's real
    /// pipeline (HTTP codec, limits, guard, router) on an in-memory channel,
    /// then the client half-closes. Every byte the server writes back must
    /// parse as a sequence of complete HTTP/1.1 responses.
    public static func http(_ bytes: [UInt8]) throws(FuzzFinding) {
        switch HTTPExchange.run(bytes) {
        case .failure(let finding):
            throw finding
        case .success(let written):
            if let problem = HTTPResponseCheck.problem(in: written) {
                throw FuzzFinding("http", "\(problem) in: \(MessageContract.excerpt(String(decoding: written, as: UTF8.self)))")
            }
        }
    }
}

extension FuzzTargets {
    /// What the server wrote back for `bytes` on one connection (for tests
    /// that the HTTP harness really reaches the router).
    public static func httpExchange(_ bytes: [UInt8]) throws(FuzzFinding) -> [UInt8] {
        try HTTPExchange.run(bytes).get()
    }
}

/// One connection's exchange, run to its end from synchronous code.
enum HTTPExchange {
    /// Made once per process: `run()` is never called, so no socket is bound;
    /// the inherited descriptor only spares the constructor the socket path's
    /// checks (it never touches the file system with one).
    static let server: APIServer = {
        do {
            return try APIServer(
                configuration: APIServerConfiguration(socketPath: "/nonexistent/fuzz.sock", inheritedListenerFD: -1),
                provider: StubProvider(), registry: PrometheusCollectorRegistry(),
                logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }
            )
        } catch {
            fatalError("fuzz harness setup: \(error)")
        }
    }()

    /// The exchange runs on a thread of its own, not Swift's cooperative pool:
    /// its callers block while waiting (libFuzzer's loop, the replay test's
    /// worker threads) and a busy pool (the whole test suite on 2 cores) must
    /// not stall it past the replay's time bound.
    static let executor = SerialTaskExecutor(label: "fuzz-http")

    static func run(_ bytes: [UInt8]) -> Result<[UInt8], FuzzFinding> {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        Task.detached(executorPreference: executor) {
            result.value = await exchange(bytes)
            done.signal()
        }
        done.wait()
        return result.value ?? .failure(FuzzFinding("http", "the exchange gave no result"))
    }

    private static func exchange(_ bytes: [UInt8]) async -> Result<[UInt8], FuzzFinding> {
        let channel = NIOAsyncTestingChannel()
        do {
            channel.allowRemoteHalfClosure = true
            let accepted = try await server.accept(channel)
            async let served: Void = server.serve(accepted)
            // Parser errors surface in the pipeline and as 400s, not here.
            _ = try? await channel.writeInbound(ByteBuffer(bytes: bytes))
            channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            await served
        } catch {
            return .failure(FuzzFinding("http", "connection setup failed: \(error)"))
        }
        var written: [UInt8] = []
        while let buffer = try? await channel.readOutbound(as: ByteBuffer.self) {
            written += buffer.readableBytesView
        }
        _ = try? await channel.close()
        return .success(written)
    }

    private final class ResultBox: @unchecked Sendable {
        // Written once before the semaphore is signalled, read after it.
        var value: Result<[UInt8], FuzzFinding>?
    }
}

/// Runs jobs one at a time on a dispatch queue of its own.
final class SerialTaskExecutor: TaskExecutor {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// The agent side, fixed: a one-volume plan, healthy, reconciles instantly.
struct StubProvider: AgentAPIProvider {
    static let generatedAt = Date(timeIntervalSince1970: 1_795_000_000)
    static let podUID = "5e1f0000-0000-4000-8000-000000000001"

    static let plan = Plan(
        generatedAt: generatedAt, kubeletRoot: "/var/lib/kubelet",
        manifests: ManifestSummary(
            path: "/var/lib/volume-reaper/manifests", refreshedAt: generatedAt, complete: true, errors: [], files: 1, pods: 1
        ),
        alerts: [],
        volumes: [
            VolumeVerdict(
                path: "/var/lib/kubelet/pods/\(podUID)/volumes/kubernetes.io~empty-dir/scratch", podUID: podUID,
                namespace: "batch", pod: "report-job-1", podPhase: "Succeeded", orphan: false, plugin: .emptyDir,
                name: "scratch", verdict: .reap, reasons: [.podTerminated, .idle],
                lastAccess: generatedAt.addingTimeInterval(-7200), lastAccessSource: .mtime, idleSeconds: 7200,
                bytes: 8192, files: 3, mounted: false, mounts: []
            ),
        ],
        orphanPodDirectories: []
    )

    func currentPlan() async -> Plan? { Self.plan }

    func health() async -> AgentHealth {
        AgentHealth(
            healthy: true, state: "running", watches: 1, volumes: 1, lastReconcile: Self.generatedAt,
            lastReconcileError: nil, dryRun: true
        )
    }

    func reconcileNow() async throws -> Plan { Self.plan }
}

/// Whether bytes are a sequence of complete HTTP/1.x responses, each with a
/// status line, well-formed headers and a body of exactly its Content-Length.
enum HTTPResponseCheck {
    static func problem(in bytes: [UInt8]) -> String? {
        var rest = bytes[...]
        var responses = 0
        while !rest.isEmpty {
            responses += 1
            guard let headEnd = rest.firstRange(of: Array("\r\n\r\n".utf8)) else {
                return "response \(responses) has no end of head"
            }
            guard let head = String(validating: rest[rest.startIndex..<headEnd.lowerBound], as: UTF8.self) else {
                return "response \(responses) head is not UTF-8"
            }
            rest = rest[headEnd.upperBound...]
            let lines = head.components(separatedBy: "\r\n")
            let status = lines[0].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard status.count >= 2, status[0] == "HTTP/1.1" || status[0] == "HTTP/1.0",
                  let code = Int(status[1]), (100...599).contains(code) else {
                return "response \(responses) has a bad status line \"\(lines[0])\""
            }
            var length: Int?
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                      !line.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                    return "response \(responses) has a bad header line \"\(line)\""
                }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                if name == "transfer-encoding" { return "response \(responses) is chunked (the API always sends a length)" }
                if name == "content-length" {
                    guard length == nil, let parsed = Int(value), parsed >= 0 else {
                        return "response \(responses) has a bad or repeated Content-Length \"\(value)\""
                    }
                    length = parsed
                }
            }
            if code < 200 {
                // An interim answer (100 Continue): no body.
                continue
            }
            guard let length else { return "response \(responses) (\(code)) has no Content-Length" }
            guard rest.count >= length else {
                return "response \(responses) body has \(rest.count) bytes, Content-Length says \(length)"
            }
            rest = rest.dropFirst(length)
        }
        return nil
    }
}
