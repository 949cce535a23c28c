import Foundation
@testable import ReaperAgent
import ReaperCore
import SocketAPI
import Testing

/// The liveness and readiness rules themselves (issue 19), each case at the
/// edge the end-to-end tests cannot wait for.
@Suite("AgentProbes")
struct AgentProbesTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// A ready agent between cycles, synced, its last cycle a second ago.
    func inputs(_ change: (inout AgentProbes.Inputs) -> Void = { _ in }) -> AgentProbes.Inputs {
        var source = PodSourceStatus(kind: .apiserver, endpoint: "https://10.0.0.1:6443", state: .synced)
        source.pods = 3
        var inputs = AgentProbes.Inputs(
            now: Self.now, startedAt: Self.now.addingTimeInterval(-3600), ready: true, stopping: false, cycleStartedAt: nil,
            lastCycleEnded: Self.now.addingTimeInterval(-1), lastReconcile: Self.now.addingTimeInterval(-1), lastReconcileError: nil,
            hasPlan: true, podSource: source, stuckBound: 300, reconcileInterval: 60, watchdog: nil
        )
        change(&inputs)
        return inputs
    }

    func failing(_ result: ProbeResult) -> [String] { result.checks.filter { !$0.ok }.map(\.name) }

    @Test("a failing pod source: live, not ready, and the message says why")
    func podSourceFailing() {
        let probe = inputs {
            $0.podSource.state = .failing
            $0.podSource.problem = "https://10.0.0.1:6443/api/v1/pods: connection refused"
        }
        let live = AgentProbes.live(probe)
        #expect(live.ok)
        let ready = AgentProbes.ready(probe, live: live)
        #expect(failing(ready) == ["pod-source-synced"])
        #expect(ready.failures == "pod-source-synced: pods from apiserver failing: https://10.0.0.1:6443/api/v1/pods: connection refused")
        // Syncing (a relist) is not ready either; the files source is never asked.
        #expect(!AgentProbes.ready(inputs { $0.podSource.state = .syncing }, live: live).ok)
        #expect(AgentProbes.ready(inputs { $0.podSource = PodSourceStatus(kind: .files, endpoint: "/m", state: .failing) }, live: live).ok)
    }

    @Test("a cycle past reconcileStuckAfter fails liveness (and so readiness); up to the bound it does not")
    func stuckCycle() {
        let running = inputs { $0.cycleStartedAt = Self.now.addingTimeInterval(-299) }
        #expect(AgentProbes.live(running).ok)
        let stuck = inputs { $0.cycleStartedAt = Self.now.addingTimeInterval(-301) }
        let live = AgentProbes.live(stuck)
        #expect(failing(live) == ["reconcile-not-stuck"])
        #expect(failing(AgentProbes.ready(stuck, live: live)) == ["live"])
    }

    @Test("a loop that ends no cycle for a bound plus an interval is not live; a slow start past the bound neither")
    func wedgedLoopAndSlowStart() {
        #expect(AgentProbes.live(inputs { $0.lastCycleEnded = Self.now.addingTimeInterval(-359) }).ok)
        #expect(failing(AgentProbes.live(inputs { $0.lastCycleEnded = Self.now.addingTimeInterval(-361) })) == ["reconcile-loop"])
        let starting = inputs {
            $0.ready = false
            $0.hasPlan = false
            $0.lastCycleEnded = nil
            $0.startedAt = Self.now.addingTimeInterval(-30)
        }
        #expect(AgentProbes.live(starting).ok, "a start within the bound is live")
        #expect(failing(AgentProbes.ready(starting, live: AgentProbes.live(starting))) == ["first-plan"])
        let slow = inputs {
            $0.ready = false
            $0.startedAt = Self.now.addingTimeInterval(-301)
        }
        #expect(failing(AgentProbes.live(slow)) == ["started"])
    }

    @Test("the systemd watchdog: not fed is not live; a failed or stale last cycle is not ready, but live")
    func watchdogAndReconcile() {
        #expect(failing(AgentProbes.live(inputs { $0.watchdog = (interval: 120, fed: false) })) == ["watchdog"])
        #expect(AgentProbes.live(inputs { $0.watchdog = (interval: 120, fed: true) }).ok)
        let failed = inputs { $0.lastReconcileError = "walk failed" }
        #expect(AgentProbes.live(failed).ok)
        #expect(failing(AgentProbes.ready(failed, live: AgentProbes.live(failed))) == ["reconcile"])
        let stale = inputs { $0.lastReconcile = Self.now.addingTimeInterval(-181) }
        #expect(failing(AgentProbes.ready(stale, live: AgentProbes.live(stale))) == ["reconcile"])
        let stopping = inputs { $0.stopping = true }
        #expect(AgentProbes.live(stopping).ok)
        #expect(failing(AgentProbes.ready(stopping, live: AgentProbes.live(stopping))) == ["not-stopping"])
    }
}
