import Logging
import Synchronization

/// The mode every log entry of the process carries (`mode` metadata, the
/// journal field `MODE`): `observe` (a dry run, nothing is deleted) or `reap`.
/// Process-wide, as logging is: the command sets it once it knows, and a
/// daemon's reload changes it. Unset (a client command), entries carry none.
public enum AgentMode {
    /// 0: unset, 1: observe, 2: reap.
    private static let state = Atomic<UInt8>(0)

    public static func set(dryRun: Bool) {
        state.store(dryRun ? 1 : 2, ordering: .relaxed)
    }

    /// `observe`, `reap`, or nil while unset.
    public static var current: String? {
        switch state.load(ordering: .relaxed) {
        case 1: "observe"
        case 2: "reap"
        default: nil
        }
    }

    /// For `LoggingSystem.bootstrap`: adds `mode` to every entry once set.
    public static let metadataProvider = Logger.MetadataProvider {
        current.map { ["mode": .string($0)] } ?? [:]
    }
}
