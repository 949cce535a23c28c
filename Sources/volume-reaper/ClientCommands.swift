import ArgumentParser
import Foundation
import ReaperAgent
import ReaperCore

/// Options of the commands that ask the running daemon.
struct SocketOptions: ParsableArguments {
    @Option(help: "The daemon's API socket (default /run/volume-reaper/api.sock).")
    var socket: String = "/run/volume-reaper/api.sock"

    func request(_ method: String, _ path: String) throws -> AgentClient.Response {
        do {
            return try AgentClient(socketPath: socket).request(method, path)
        } catch {
            throw CommandError("\(error)")
        }
    }

    func requireOK(_ response: AgentClient.Response) throws {
        guard (200..<300).contains(response.status) else {
            let message = (try? JSONSerialization.jsonObject(with: response.body) as? [String: Any])
                .flatMap { $0["error"] as? [String: Any] }.flatMap { $0["message"] as? String }
            throw CommandError("the daemon answered \(response.status): \(UserText.excerpt(message ?? String(decoding: response.body, as: UTF8.self), limit: 400))")
        }
    }
}

/// `volume-reaper idle [--json]`: the volumes the daemon would reap now.
struct IdleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "idle", abstract: "List the volumes the running daemon judges idle (verdict reap).")

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @OptionGroup var socket: SocketOptions

    func run() throws {
        if json {
            // The same document as GET /v1/volumes?state=idle.
            let response = try socket.request("GET", "/v1/volumes?state=idle")
            try socket.requireOK(response)
            FileHandle.standardOutput.write(response.body)
            FileHandle.standardOutput.write(Data("\n".utf8))
            return
        }
        let response = try socket.request("GET", "/v1/plan")
        try socket.requireOK(response)
        let plan: Plan
        do {
            plan = try Plan.decoder().decode(Plan.self, from: response.body)
        } catch {
            throw CommandError("unexpected answer from \(UserText.excerpt(socket.socket, limit: 120)): \(UserText.excerpt("\(error)", limit: 400))")
        }
        var idle = plan
        idle.volumes = plan.volumes.filter { $0.verdict == .reap }
        idle.recount()
        print(PlanTable.render(idle, now: Date()), terminator: "")
    }
}

/// `volume-reaper status`: the daemon's health.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the running daemon's state.")

    @OptionGroup var socket: SocketOptions

    func run() throws {
        let response = try socket.request("GET", "/healthz")
        FileHandle.standardOutput.write(response.body)
        FileHandle.standardOutput.write(Data("\n".utf8))
        if response.status != 200 { throw ExitCode(1) }
    }
}

/// `volume-reaper reconcile`: ask the daemon for a cycle now (root only).
struct ReconcileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reconcile", abstract: "Ask the running daemon to reconcile now (root only).")

    @OptionGroup var socket: SocketOptions

    func run() throws {
        let response = try socket.request("POST", "/v1/reconcile")
        try socket.requireOK(response)
        let plan = try Plan.decoder().decode(Plan.self, from: response.body)
        print(PlanTable.summaryLine(plan))
    }
}

/// `volume-reaper forecast [--within 6h] [--json]`: what becomes reclaimable, hour by hour.
struct ForecastCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast", abstract: "Chart the bytes that become reclaimable over the next hours if nothing touches them (asks the running daemon)."
    )

    @Option(help: "How far ahead, from 1h to 7d (default 6h).")
    var within: String = "6h"

    @Flag(name: .long, help: "Print JSON (the same as GET /v1/forecast).")
    var json = false

    @OptionGroup var socket: SocketOptions

    func run() throws {
        let query = within.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? within
        let response = try socket.request("GET", "/v1/forecast?within=\(query)")
        try socket.requireOK(response)
        if json {
            FileHandle.standardOutput.write(response.body)
            FileHandle.standardOutput.write(Data("\n".utf8))
            return
        }
        do {
            print(try Plan.decoder().decode(Forecast.self, from: response.body).render(), terminator: "")
        } catch {
            throw CommandError("unexpected answer from \(UserText.excerpt(socket.socket, limit: 120)): \(UserText.excerpt("\(error)", limit: 400))")
        }
    }
}
