import PodSources
import Reaper
import ReaperCore

/// A cycle's reaps as Kubernetes Events (issue 19): one Event per pod and
/// outcome kind per cycle, about the pod, its note the journald MESSAGEs of
/// those volumes; orphans' volumes (no pod the API server knows) and orphan
/// circuit breaker trips about the node. Would-reaps, keeps and refusals by
/// limits are no Events: nothing happened to the pod.
enum ReapClusterEvents {
    static func events(_ report: ReapReport, plan: Plan) -> [ClusterEvent] {
        var events: [ClusterEvent] = []
        for alert in plan.alerts where alert.code == .limitOrphanFraction || alert.code == .podViewShrank {
            events.append(ClusterEvent(
                .warning, regarding: .node, reason: "OrphanCircuitBreakerTripped", action: "Keep",
                note: "\(alert.code.rawValue): \(alert.message)"
            ))
        }
        // Grouped in the order the reaper acted, so that notes read as the journal does.
        // Keyed by the Event without its note.
        var groups: [(key: ClusterEvent, messages: [String])] = []
        for outcome in report.outcomes {
            guard let (severity, reason) = kind(outcome.action) else { continue }
            let key = ClusterEvent(severity, regarding: regarding(outcome.verdict), reason: reason, action: "Reap", note: "")
            let message = ReapMessageText.message(outcome)
            if let index = groups.firstIndex(where: { $0.key == key }) {
                groups[index].messages.append(message)
            } else {
                groups.append((key, [message]))
            }
        }
        for (key, messages) in groups {
            var event = key
            event.note = messages.joined(separator: "; ")
            events.append(event)
        }
        return events
    }

    private static func kind(_ action: ReapOutcome.Action) -> (ClusterEvent.Severity, String)? {
        switch action {
        case .reaped: (.normal, "VolumeReaped")
        case .partiallyReaped: (.warning, "VolumeReapIncomplete")
        case .failed: (.warning, "VolumeReapFailed")
        case .wouldReap, .keptAtLastCheck, .refusedByLimits: nil
        }
    }

    private static func regarding(_ verdict: VolumeVerdict) -> ClusterEvent.Regarding {
        guard let name = verdict.pod, let namespace = verdict.namespace else { return .node }
        // A static pod's directory is its config hash; the API server knows
        // its mirror pod by another UID, so the reference names it only.
        let uid = PodDirectoryKind(directoryName: verdict.podUID) == .uid ? verdict.podUID : nil
        return .pod(namespace: namespace, name: name, uid: uid)
    }
}

/// Queues each cycle's Events on the recorder, never awaited: a slow or
/// refusing API server costs the cycle nothing.
struct ClusterEventsObserver: CycleObserver {
    let recorder: EventRecorder

    func cycleEnded(_ outcome: CycleOutcome) {
        guard let planned = outcome.planned else { return }
        for event in ReapClusterEvents.events(planned.report, plan: planned.plan) { recorder.record(event) }
    }
}
