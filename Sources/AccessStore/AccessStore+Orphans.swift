import Foundation
import GRDB
import ReaperCore

extension AccessStore {
    /// The stored orphan sightings, by pod UID (design §4.4, `orphans.confirmAfter`).
    public func orphanObservations() throws -> [String: OrphanObservation] {
        try readTransaction("read orphan observations") { db in
            var observations: [String: OrphanObservation] = [:]
            let sql = "SELECT podUID, firstMissingAt, snapshotFingerprint, bootID, bootSeconds FROM orphanObservation"
            for row in try Row.fetchAll(db, sql: sql) {
                let uid: String = row["podUID"]
                let bootID: String? = row["bootID"]
                let bootSeconds: Double? = row["bootSeconds"]
                observations[uid] = OrphanObservation(
                    podUID: uid, firstMissingAt: Date(timeIntervalSince1970: row["firstMissingAt"]),
                    firstMissingBoot: bootID.flatMap { id in bootSeconds.map { BootInstant(bootID: id, seconds: $0) } },
                    snapshotFingerprint: row["snapshotFingerprint"]
                )
            }
            return observations
        }
    }

    /// Applies one pass's update in one transaction: forgotten UIDs go, and a
    /// sighting is stored only when its UID has none yet (the earliest wins,
    /// also against a concurrent writer).
    public func recordOrphanObservations(_ update: OrphanObservationUpdate) throws {
        guard !update.isEmpty else { return }
        try writeTransaction("record orphan observations") { db in
            for uid in update.forget {
                try db.execute(sql: "DELETE FROM orphanObservation WHERE podUID = ?", arguments: [uid])
            }
            for observation in update.missing {
                try db.execute(
                    sql: """
                        INSERT INTO orphanObservation (podUID, firstMissingAt, snapshotFingerprint, bootID, bootSeconds)
                        VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT (podUID) DO NOTHING
                        """,
                    arguments: [
                        observation.podUID, observation.firstMissingAt.storeSeconds, observation.snapshotFingerprint,
                        observation.firstMissingBoot?.bootID, observation.firstMissingBoot?.seconds,
                    ]
                )
            }
        }
    }
}
