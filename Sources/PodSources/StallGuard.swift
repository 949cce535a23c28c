import Foundation
import ReaperCore
import Synchronization

/// Runs a body read that must show progress: no byte for `stallTimeout`
/// cancels it and throws `stalled`; reaching `deadline` cancels it and gives
/// `atDeadline` (a watch's planned end, or a LIST's failure).
/// AsyncHTTPClient's own deadline covers only the response head. Structured:
/// the read and the watchdog are two children of one task group.
enum StallGuard {
    /// What the read calls for every chunk it receives.
    final class Progress: Sendable {
        private let last = Mutex(ContinuousClock.now)
        func tick() { last.withLock { $0 = .now } }
        var idle: Duration { last.withLock { .now - $0 } }
    }

    /// `overdue`, asked at each check, ends the read early with what it
    /// gives (a watch whose bookmarks stopped, a streaming list that never ends).
    static func run<Value: Sendable>(
        stallTimeout: TimeInterval, deadline: ContinuousClock.Instant, atDeadline: Result<Value, PodSourceError>, what: String,
        overdue: (@Sendable () -> Result<Value, PodSourceError>?)? = nil,
        _ reading: @escaping @Sendable (Progress) async throws(PodSourceError) -> Value
    ) async throws(PodSourceError) -> Value {
        let progress = Progress()
        let limit = Duration.milliseconds(Int64(max(stallTimeout, 0.05) * 1000))
        let check = min(limit / 4, .milliseconds(500))
        let outcome: Result<Value, PodSourceError>? = await withTaskGroup(of: Result<Value, PodSourceError>?.self) { group in
            group.addTask {
                do throws(PodSourceError) {
                    return .success(try await reading(progress))
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    if ContinuousClock.now >= deadline { return atDeadline }
                    if let early = overdue?() { return early }
                    if progress.idle >= limit {
                        return .failure(PodSourceError(.stalled, "\(what): no byte for \(DurationText.format(stallTimeout))"))
                    }
                    try? await Task.sleep(for: check)
                }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let outcome else { throw PodSourceError(.unreachable, "\(what): cancelled") }
        return try outcome.get()
    }
}
