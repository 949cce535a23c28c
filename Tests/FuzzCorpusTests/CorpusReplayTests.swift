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

    @Test("corpus replays cleanly", arguments: FuzzTargets.names)
    func replay(harness name: String) throws {
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
            switch Self.run(harness, bytes) {
            case .finished(nil):
                break
            case .finished(let finding?):
                Issue.record("\(entry): \(finding)")
            case .timedOut:
                // The harness thread is left running; the bound is what failed.
                Issue.record("\(entry): no answer within \(Self.bound)")
            }
        }
    }

    enum Outcome { case finished(FuzzFinding?), timedOut }

    static func run(_ harness: @escaping FuzzTargets.Harness, _ bytes: [UInt8]) -> Outcome {
        final class Box: @unchecked Sendable { var finding: FuzzFinding? }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do throws(FuzzFinding) { try harness(bytes) } catch { box.finding = error }
            done.signal()
        }
        guard done.wait(timeout: .now() + bound) == .success else { return .timedOut }
        return .finished(box.finding)
    }
}
