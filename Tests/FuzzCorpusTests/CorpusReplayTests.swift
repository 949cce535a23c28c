import Dispatch
import Foundation
import FuzzTargets
import Testing

/// Every file of the committed fuzz corpus (Fuzz/corpus/<harness>/) through
/// its harness: no trap, no broken contract, and back within `bound`. Files
/// listed in Fuzz/corpus/KNOWN-UNFIXED are skipped with a message (they still
/// hang or trap); FUZZ_REPLAY_KNOWN=1 runs them too, to see which are fixed,
/// and FUZZ_REPLAY_ONLY=harness/file replays that one file (a trap ends the
/// whole test process, so check suspects one at a time).
@Suite("Fuzz corpus replay")
struct CorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")
    static let bound: DispatchTimeInterval = .seconds(2)

    /// `harness/file` entries; `#` starts a comment.
    static let knownUnfixed: Set<String> = {
        guard let text = try? String(contentsOf: corpus.appendingPathComponent("KNOWN-UNFIXED"), encoding: .utf8) else {
            return []
        }
        return Set(text.split(separator: "\n").compactMap { line in
            let entry = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                .trimmingCharacters(in: .whitespaces)
            return entry.isEmpty ? nil : entry
        })
    }()

    static func files(of harness: String) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(
            at: corpus.appendingPathComponent(harness), includingPropertiesForKeys: nil
        ).filter { !$0.lastPathComponent.hasPrefix(".") }.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    @Test("every harness has a seed corpus")
    func everyHarnessHasSeeds() throws {
        for name in FuzzTargets.names {
            #expect(try Self.files(of: name).count >= 3, "Fuzz/corpus/\(name) has too few seeds")
        }
    }

    @Test("every KNOWN-UNFIXED entry names a corpus file")
    func knownUnfixedEntriesExist() {
        for entry in Self.knownUnfixed {
            #expect(FileManager.default.fileExists(atPath: Self.corpus.appendingPathComponent(entry).path), "\(entry)")
        }
    }

    @Test("the HTTP harness reaches the router: healthz answers 200, pipelined requests each get an answer")
    func httpHarnessReachesTheRouter() async throws {
        let healthz = try await Self.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let text = String(decoding: healthz, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 "), "\(text)")
        #expect(text.contains("\"healthy\""))
        let pipelined = try await Self.exchange("GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n")
        #expect(String(decoding: pipelined, as: UTF8.self).components(separatedBy: "HTTP/1.1 ").count == 3)
    }

    /// `FuzzTargets.httpExchange` off the cooperative pool (see `run`).
    static func exchange(_ request: String) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { () throws(FuzzFinding) in try FuzzTargets.httpExchange(Array(request.utf8)) })
            }
        }
    }

    @Test("corpus replays cleanly", arguments: FuzzTargets.names)
    func replay(harness name: String) async throws {
        let harness = try #require(FuzzTargets.harnesses[name])
        let environment = ProcessInfo.processInfo.environment
        let runKnown = environment["FUZZ_REPLAY_KNOWN"] == "1"
        let only = environment["FUZZ_REPLAY_ONLY"]
        for file in try Self.files(of: name) {
            let entry = "\(name)/\(file.lastPathComponent)"
            if let only, only != entry { continue }
            if Self.knownUnfixed.contains(entry), !runKnown {
                print("skipped \(entry): listed in Fuzz/corpus/KNOWN-UNFIXED")
                continue
            }
            let bytes = try [UInt8](Data(contentsOf: file))
            switch await Self.run(harness, bytes) {
            case .finished(nil):
                break
            case .finished(let finding?):
                Issue.record("\(entry): \(finding)")
            case .timedOut:
                Issue.record("\(entry): no answer within \(Self.bound)")
            }
        }
    }

    enum Outcome: Sendable { case finished(FuzzFinding?), timedOut }

    /// Runs the harness on a thread of its own and waits without blocking a
    /// thread of Swift's cooperative pool: the HTTP harness needs that pool
    /// while its caller waits, and the pool has as few threads as cores.
    static func run(_ harness: @escaping FuzzTargets.Harness, _ bytes: [UInt8]) async -> Outcome {
        final class Once: @unchecked Sendable {
            private let lock = NSLock()
            private var continuation: CheckedContinuation<Outcome, Never>?
            init(_ continuation: CheckedContinuation<Outcome, Never>) { self.continuation = continuation }
            func resume(_ outcome: Outcome) {
                lock.lock()
                let pending = continuation
                continuation = nil
                lock.unlock()
                pending?.resume(returning: outcome)
            }
        }
        return await withCheckedContinuation { continuation in
            let once = Once(continuation)
            Thread.detachNewThread {
                do throws(FuzzFinding) {
                    try harness(bytes)
                    once.resume(.finished(nil))
                } catch {
                    once.resume(.finished(error))
                }
            }
            // The harness thread is left running on a timeout; the bound is what failed.
            DispatchQueue.global().asyncAfter(deadline: .now() + bound) { once.resume(.timedOut) }
        }
    }
}
