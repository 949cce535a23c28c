import Foundation
import Logging
import ReaperCore
import SystemCalls
import SystemPackage

/// Lost signals (an overflowed queue, an event for an unknown watch): a full
/// rescan, and every volume counts as accessed (design §5.7).
extension WatchEngine {
    /// A record says events were lost. From this moment every volume counts as
    /// accessed for whoever reads the ledger (a plan, a last check), and as
    /// accessed "now" until the rescan that follows is done: nothing waits for
    /// the rescan to learn it.
    func signalsLost(at time: Date) {
        ledger.noteSignalsLost(at: time)
    }

    /// After lost signals: walk everything again; then every volume, the ones
    /// the rescan found included, counts as accessed now.
    func recoverFromLostSignals() {
        fullRescan()
        let now = clock()
        for state in volumes.values { touch(state.id, at: now) }
        flushTouches()
        guard !ledger.stopRequested else { return }
        ledger.noteRescanFinished()
    }

    /// Walks everything again, drops watches the walk did not confirm, and
    /// forgets volumes it did not find.
    func fullRescan() {
        ledger.noteRescan()
        generation &+= 1
        let before = Set(volumes.keys)
        seenVolumes = []
        crawl(skipKnown: false)
        setupManifestWatch()
        let seen = seenVolumes ?? []
        seenVolumes = nil
        guard !ledger.stopRequested else { return }
        forgetVolumes(before.subtracting(seen))
        for wd in table.watchDescriptors(where: { $0.generation != generation }) {
            if let entry = table[wd], entry.kind == .volume, let volume = volumePaths[entry.volume], volumes[volume]?.polled == true {
                // Kept, and stamped so that the wrapping generation never meets it again.
                table[wd]?.generation = generation
                continue
            }
            retire(wd)
        }
    }
}
