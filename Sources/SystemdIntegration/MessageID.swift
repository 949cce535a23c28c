import Logging

/// Stable journal `MESSAGE_ID`s, one per kind of event (design §6).
///
/// Operators select events with `journalctl MESSAGE_ID=<id>` and
/// `journalctl -x` shows the explanation from
/// `packaging/journal/volume-reaper.catalog`. Generated once with
/// `systemd-id128 new`; never change a value, since alerts and dashboards
/// match on them.
public enum MessageID: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// A volume was deleted.
    case volumeReaped = "5109ffc17eb34ec3bd6968d5b3c35abc"
    /// Dry run: a volume would have been deleted.
    case volumeWouldReap = "873eb2545ffb4446a02d5feeaef56747"
    /// A volume planned for deletion was kept by the re-check just before deleting.
    case volumeKeptAtLastCheck = "5661200e54274e74995802201514a162"
    /// Per-cycle limits or the circuit breaker refused a planned reap.
    case reapRefusedByLimits = "e38ff83d3481443f900476a6495c8067"
    /// Deleting a volume failed, or stopped part way (`partially-reaped`:
    /// `FILES_REMOVED` and `BYTES_FREED` say what had already gone).
    case reapFailed = "bb98c67db6d64152bb15f4ea04c0a40b"
    /// Alert: too many orphans in one cycle, so none was reaped.
    case orphanCircuitBreaker = "9078cc8ffe814a7b98e004d1b4dd6b69"
    /// The daemon started.
    case daemonStarted = "5531b5d2cee64591921fddb325926781"
    /// The daemon stopped.
    case daemonStopped = "b48b38e15dc846a5a461aa72424295df"
    /// An orphan's pod directory (what was left once its volumes were gone) was removed.
    case podDirectoryReaped = "53e58b467c374cc2b621a77744db5e48"
    /// A filesystem holding volumes fell below the pressure threshold: pressure mode began.
    case diskPressureBegan = "c63f9cac57f04e6aa3dc1e2d9817b3a9"
    /// A filesystem was back above the threshold plus the hysteresis: pressure mode ended.
    case diskPressureEnded = "8351cbfd5a4e46078e327fe3a92f8111"

    /// The metadata key that ``JournaldLogHandler`` sends as `MESSAGE_ID`.
    public static let metadataKey = "message_id"

    /// `["message_id": id]`, to merge into a log call's metadata.
    public var metadata: Logger.Metadata { [Self.metadataKey: .string(self.rawValue)] }

    /// The 32 lowercase hex digits.
    public var description: String { self.rawValue }
}
