import ArgumentParser
import Foundation
import PolicyFile
import ReaperAgent
import ReaperCore

/// Options shared by the commands (design §6). A `--config` file may set them;
/// flags win.
struct NodeOptions: ParsableArguments {
    @Option(help: "YAML config file with agent settings (flags win).")
    var config: String?

    @Option(help: "Kubelet root directory (default /var/lib/kubelet).")
    var kubeletRoot: String?

    @Option(help: "The kubelet's config file, for its eviction thresholds (default /var/lib/kubelet/config.yaml).")
    var kubeletConfig: String?

    @Option(help: "Where the cgroup file systems are mounted, for the pod liveness check (default /sys/fs/cgroup).")
    var cgroupRoot: String?

    @Option(help: "Pod manifests: a file or a directory of *.json, *.yaml (default /var/lib/volume-reaper/manifests).")
    var manifests: String?

    @Option(help: "Where pods come from: files (--manifests), apiserver (LIST+WATCH) or kubelet (/pods); the config's podSource section holds their settings.")
    var podSource: String?

    @Option(help: "Policy file (default /etc/volume-reaper/policy.yaml, else the built-in default).")
    var policy: String?

    @Option(help: "State directory: access store and reaper lock (default /var/lib/volume-reaper).")
    var stateDir: String?

    @Option(help: "Unix socket of the API (default /run/volume-reaper/api.sock).")
    var socket: String?

    @Option(help: "Where logs go: auto (journald if its socket exists), journald or stderr.")
    var logTarget: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    /// Defaults, then the config file, then flags.
    func resolved() throws -> AgentConfiguration {
        var configuration = AgentConfiguration()
        if let config {
            do {
                configuration = try AgentConfiguration.load(path: config)
            } catch {
                throw CommandError("config \(error)")
            }
        }
        if let kubeletRoot { configuration.kubeletRoot = kubeletRoot }
        if let kubeletConfig { configuration.kubeletConfig = kubeletConfig }
        if let cgroupRoot { configuration.cgroupRoot = cgroupRoot }
        if let manifests { configuration.manifests = manifests }
        if let podSource {
            guard let kind = PodSourceKind(rawValue: podSource) else {
                throw ValidationError("--pod-source must be files, apiserver or kubelet (got \"\(UserText.excerpt(podSource, quoting: true))\")")
            }
            configuration.podSource.kind = kind
        }
        if let policy { configuration.policy = policy }
        if let stateDir { configuration.stateDir = stateDir }
        if let socket { configuration.socket = socket }
        if let logTarget {
            guard ["auto", "journald", "stderr"].contains(logTarget) else {
                throw ValidationError("--log-target must be auto, journald or stderr (got \"\(UserText.excerpt(logTarget, quoting: true))\")")
            }
            configuration.logTarget = logTarget
        }
        if let logLevel {
            guard Logger.Level(rawValue: logLevel) != nil else {
                throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical (got \"\(UserText.excerpt(logLevel, quoting: true))\")")
            }
            configuration.logLevel = logLevel
        }
        return configuration
    }

    /// The policy in force and where it came from.
    func loadPolicy(_ configuration: AgentConfiguration) throws -> (Policy, String) {
        do {
            let (policy, source) = try PolicyLoader.resolveDefault(explicitPath: configuration.policy)
            return (policy, source)
        } catch {
            throw CommandError("policy \(error)")
        }
    }
}

import Logging
