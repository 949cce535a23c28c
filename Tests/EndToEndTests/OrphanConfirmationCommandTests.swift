import Foundation
import ReaperCore
import Testing
import TestSupport

/// Issue 13 hole 3, as it was found: a truncated manifest made running pods
/// orphans. With orphan confirmation a pod directory goes only once missing
/// from two different writes `orphans.confirmAfter` apart, across `--once` runs.
@Suite("--once: orphan confirmation across runs", .serialized)
struct OrphanConfirmationCommandTests {
    static func uid(_ number: Int) -> String { String(format: "5e1f0000-0000-4000-8000-%012d", number) }

    /// A node: pods 1-3 Running (listed), pod 9 an orphan (listed nowhere),
    /// each with an old emptyDir; the default policy with confirmAfter 1s.
    struct Node {
        let directory: TemporaryDirectory
        var root: String { directory.appending("kubelet") }
        var manifests: String { directory.appending("manifests") }
        var policy: String { directory.appending("policy.yaml") }

        init() throws {
            directory = try TemporaryDirectory("confirm")
            // An empty kubelet pod cgroup tree: without one every orphan is kept (liveness-unknown).
            var setup = "set -e; mkdir -p '\(directory.appending("manifests"))' '\(directory.appending("cgroup/kubepods.slice"))'\n"
            for number in [1, 2, 3, 9] {
                let volume = "\(directory.appending("kubelet"))/pods/\(uid(number))/volumes/kubernetes.io~empty-dir/data"
                // The whole pod directory is old: its rest obeys the idle rule too.
                let pod = "\(directory.appending("kubelet"))/pods/\(uid(number))"
                setup += "mkdir -p '\(volume)' && echo payload > '\(volume)/file' && find '\(pod)' -exec touch -d '3 hours ago' {} +\n"
            }
            let result = try ChildProcess.shell(setup)
            try #require(result.status == 0, "\(result.stderr)")
            let shipped = try String(contentsOfFile: PackagePaths.root.appendingPathComponent("policies/default.yaml").path, encoding: .utf8)
            try Data(shipped.replacingOccurrences(of: "  confirmAfter: 2m\n", with: "  confirmAfter: 1s\n").utf8)
                .write(to: URL(fileURLWithPath: directory.appending("policy.yaml")))
        }

        /// A kind-first List of `numbers`, written atomically (a new inode each time).
        func writeManifests(_ numbers: [Int]) throws {
            var text = "kind: List\napiVersion: v1\nitems:\n"
            for number in numbers {
                text += "- kind: Pod\n  metadata:\n    name: web-\(number)\n    namespace: shop\n    uid: \(uid(number))\n  status:\n    phase: Running\n"
            }
            try Data(text.utf8).write(to: URL(fileURLWithPath: manifests + "/pods.yaml"), options: .atomic)
        }

        func run(_ mode: String) throws -> ProcessResult {
            try ChildProcess.run(PackagePaths.binary, [
                mode, "--json", "--kubelet-root", root, "--cgroup-root", directory.appending("cgroup"), "--manifests", manifests, "--policy", policy,
                "--state-dir", directory.appending("state"), "--log-target", "stderr",
            ])
        }

        func plan() throws -> Plan {
            let result = try run("--plan")
            try #require(result.status == 0, "\(result.stderr)")
            return try Plan.decoder().decode(Plan.self, from: Data(result.stdout.utf8))
        }

        func volume(_ number: Int) -> String { "\(root)/pods/\(uid(number))/volumes/kubernetes.io~empty-dir/data" }
        func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
    }

    @Test("a fresh state keeps the orphan (orphan-unconfirmed, orphan: true); another write later confirms it")
    func confirmsAcrossRuns() throws {
        let node = try Node()
        defer { node.directory.remove() }
        try node.writeManifests([1, 2, 3])

        var once = try node.run("--once")
        #expect(once.status == 0, "\(once.stderr)")
        #expect(node.exists(node.volume(9) + "/file"), "the first run keeps the orphan")
        let verdict = try #require(try node.plan().volumes.first { $0.path == node.volume(9) })
        #expect(verdict.orphan)
        #expect(verdict.reasons == [.orphanUnconfirmed])

        // Later, but the same write: still unconfirmed.
        Thread.sleep(forTimeInterval: 1.1)
        once = try node.run("--once")
        #expect(once.status == 0, "\(once.stderr)")
        #expect(node.exists(node.volume(9) + "/file"), "the same write twice confirms nothing")

        // Another write, still without pod 9: confirmed, reaped with its pod directory.
        try node.writeManifests([1, 2, 3])
        once = try node.run("--once")
        #expect(once.status == 0, "\(once.stderr)")
        #expect(!node.exists("\(node.root)/pods/\(Self.uid(9))"), "confirmed: reaped")
        for number in [1, 2, 3] { #expect(node.exists(node.volume(number) + "/file")) }
    }

    @Test("a List truncated at an item boundary and left alone never makes the lost running pod an orphan")
    func truncatedWriteLeftStable() throws {
        let node = try Node()
        defer { node.directory.remove() }
        // The writer was cut short after pods 1 and 2: pod 3 is Running, but
        // missing from this write, which parses and then stays as it is.
        try node.writeManifests([1, 2])
        for _ in 0..<2 {
            let once = try node.run("--once")
            #expect(once.status == 0, "\(once.stderr)")
            Thread.sleep(forTimeInterval: 1.1)
        }
        #expect(node.exists(node.volume(3) + "/file"), "a single bad write reaped a running pod")
        #expect(node.exists(node.volume(9) + "/file"))
        // The writer's next, complete write lists pod 3 again: its sighting is forgotten.
        try node.writeManifests([1, 2, 3])
        let once = try node.run("--once")
        #expect(once.status == 0, "\(once.stderr)")
        #expect(node.exists(node.volume(3) + "/file"))
        let verdict = try #require(try node.plan().volumes.first { $0.path == node.volume(3) })
        #expect(verdict.reasons.contains(.podRunning))
    }

    @Test("manifests with an mtime a day ahead (touch -d '+1 day') keep orphans: manifests-time-invalid")
    func futureManifests() throws {
        let node = try Node()
        defer { node.directory.remove() }
        try node.writeManifests([1, 2, 3])
        let touched = try ChildProcess.shell("touch -d '+1 day' '\(node.manifests)/pods.yaml'")
        try #require(touched.status == 0)
        for _ in 0..<2 {
            let once = try node.run("--once")
            #expect(once.status == 0, "\(once.stderr)")
            Thread.sleep(forTimeInterval: 1.1)
        }
        try ChildProcess.shell("touch -d '+1 day' '\(node.manifests)/pods.yaml'")
        let verdict = try #require(try node.plan().volumes.first { $0.path == node.volume(9) })
        #expect(verdict.reasons == [.manifestsTimeInvalid])
        #expect(node.exists(node.volume(9) + "/file"))
    }
}
