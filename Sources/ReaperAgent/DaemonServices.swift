import AccessStore
import Dispatch
import Foundation
import Logging
import ReaperCore
import ServiceLifecycle
import SocketAPI
import SystemCalls
import SystemdIntegration
import UnixSignals
import VolumeWatcher

/// Writes what the watcher saw to the store every `flushInterval`, and once
/// more at shutdown; records the daemon's heartbeat and its clean stop.
struct AccessFlushService: Service {
    let controller: AgentController
    let interval: Duration

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let interval = interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            await controller.flushAccesses()
            await controller.heartbeat()
            if Task.isShuttingDownGracefully { break }
        }
        // Shutdown (this service is first in the group, so it stops last).
        await controller.flushAccesses()
        await controller.endSession()
        controller.logger.info("access store flushed", metadata: ["state_dir": "\(controller.configuration.stateDir)"])
    }
}

/// Reconciles every `reconcileInterval`, when the pods change (a manifest
/// file, or the API server's or kubelet's view), when free space crosses into
/// disk pressure, on SIGHUP and on API request. Sends READY=1 once every watch is set, the socket
/// listens and the first cycle ran; WATCHDOG=1 from its loop.
struct ReconcileService: Service {
    let controller: AgentController
    let api: APIServer
    /// The watcher's manifest changes, or the network pod source's.
    let podChanges: AsyncStream<Void>
    let interval: Duration

    func run() async throws {
        let controller = controller
        // However this ends (cancelled before the loop began, or with it),
        // no reconcile request may be left waiting.
        defer { controller.closeTriggers() }
        await controller.watcher.waitUntilReady()
        // READY=1 only with every watch set and the socket accepting; if the
        // API failed, the group is stopping: never claim readiness.
        guard await api.waitUntilListening(), !Task.isCancelled, !Task.isShuttingDownGracefully else { return }
        // Ready as soon as events are seen and queries answered; the first plan
        // follows at once (until then /healthz says "starting" and /v1/plan 503).
        controller.markReady()
        try? controller.notifier.ready()
        controller.logger.notice("volume-reaper ready", metadata: MessageID.daemonStarted.metadata.merging([
            "kubelet_root": "\(controller.configuration.kubeletRoot)", "dry_run": "\(controller.dryRun)",
            "socket": "\(controller.configuration.socket)",
        ]) { $1 })
        _ = try? await controller.reconcile(trigger: "start")

        await withTaskGroup(of: Bool.self) { group in
            // Timer: also feeds the watchdog.
            group.addTask {
                while !Task.isCancelled {
                    do { try await Task.sleep(for: interval) } catch { return false }
                    controller.trigger(.timer)
                }
                return false
            }
            // Free space between cycles: a crossing into pressure starts a
            // cycle at once rather than at the next interval.
            group.addTask {
                while !Task.isCancelled {
                    do { try await Task.sleep(for: controller.pressureCheckWait(idle: interval)) } catch { return false }
                    if await controller.pressureWantsCycle() { controller.trigger(.diskPressure) }
                }
                return false
            }
            let podChanges = podChanges
            group.addTask {
                for await _ in podChanges {
                    controller.trigger(.manifestsChanged)
                }
                return false
            }
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    controller.trigger(.reload)
                }
                return false
            }
            if let watchdog = controller.notifier.watchdogInterval {
                group.addTask {
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: watchdog / 2) } catch { return false }
                        // Only while cycles complete: a wedged cycle stops the pings.
                        if controller.isLive(limit: watchdog) { try? controller.notifier.watchdog() }
                    }
                    return false
                }
            }
            group.addTask {
                await withGracefulShutdownHandler {
                    for await trigger in controller.triggers {
                        switch trigger {
                        case .timer:
                            _ = try? await controller.reconcile(trigger: "timer")
                        case .diskPressure:
                            _ = try? await controller.reconcile(trigger: "disk-pressure")
                        case .manifestsChanged:
                            // Pod changes come in bursts (a rollout, a
                            // watch replaying after a relist): at most one
                            // cycle per four cycle-durations, so they take at
                            // most a fifth of a core however fast they come;
                            // changes meanwhile join the queued cycle.
                            if let wait = controller.podChangeCooldown() {
                                try? await Task.sleep(for: wait)
                            }
                            controller.podChangeTaken()
                            _ = try? await controller.reconcile(trigger: "pods")
                        case .reload:
                            try? controller.notifier.reloading()
                            await controller.reloadMode()
                            await controller.reloadPolicy()
                            _ = try? await controller.reconcile(trigger: "reload")
                            try? controller.notifier.ready()
                        case .request:
                            await controller.answerRequests()
                        }
                        if Task.isShuttingDownGracefully { break }
                    }
                } onGracefulShutdown: {
                    controller.markStopping()
                    try? controller.notifier.stopping()
                    controller.closeTriggers()
                }
                // Stopped or cancelled: requests still waiting get an error
                // (503 shutting-down), never silence.
                controller.closeTriggers()
                return true
            }
            // Run until the trigger loop ends (graceful shutdown), then stop the rest.
            while let finished = await group.next() {
                if finished { break }
            }
            group.cancelAll()
        }
        controller.logger.notice("volume-reaper stopping", metadata: MessageID.daemonStopped.metadata)
    }
}

/// Bounds shutdown. SIGTERM starts a graceful stop, which waits for the
/// running cycle; a cycle blocked in the kernel (a hung NFS mount, a wedged
/// file) never returns, and the agent would stay `stopping` until systemd's
/// own timeout killed it. `grace` after the signal this logs and exits the
/// process (status 1) without the final store flush: the next start treats
/// the stop as unclean and restarts every clock, which only delays reaps.
/// Last in the group, so the first to hear of the shutdown.
struct ShutdownDeadline: Service {
    static let grace: Duration = .seconds(15)
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        // Cancelled rather than asked to stop: the group is ending anyway.
        guard Task.isShuttingDownGracefully else { return }
        let logger = logger
        let seconds = Self.grace.components.seconds
        // A timer on a dispatch queue: the cooperative pool may be the thing that is stuck.
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(seconds))) {
            logger.critical(
                "shutdown did not finish within \(seconds) s (a cycle blocked in the kernel?): exiting without the final flush",
                metadata: MessageID.daemonStopped.metadata
            )
            Syscall.exitNow(1)
        }
    }
}
