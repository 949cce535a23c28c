import AccessStore
import ReaperCore

/// Where orphan sightings persist between passes (design §4.4,
/// `orphans.confirmAfter`): the access store in the state directory, so a
/// `--once` from a timer confirms what an earlier run saw.
public protocol OrphanObservationLog: Sendable {
    func orphanObservations() throws -> [String: OrphanObservation]
    /// Stores what a pass learned. A read-only log (`--plan`) ignores it.
    func recordOrphanObservations(_ update: OrphanObservationUpdate) throws
}

extension AccessStore: OrphanObservationLog {}
