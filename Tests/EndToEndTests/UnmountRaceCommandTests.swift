import Foundation
import Testing
import TestSupport

/// Issue 13 hole 1 through the binary, the way it was found: `--once` with
/// `volumes.unmount: [tmpfs]` while a racer exchanges `a` (a tmpfs at `a/mnt`)
/// and `alink` (a symlink to an outside directory with its own tmpfs at `mnt`).
/// Each trial runs `bench/race-trial.py` in its own mount and PID namespace:
/// there the agent is PID 1's mount-namespace peer, so its unmount path runs
/// even where this machine hides the real PID 1 (the in-process unmount tests
/// skip then), and no mount of the trial leaks out. `bench/reap-races` runs
/// the same trial 20 times.
@Suite("--once: the unmount race of issue 13 hole 1", .serialized)
struct UnmountRaceCommandTests {
    static let canUnshare = isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")

    struct Trial: Decodable {
        var action: String
        var outside_unmounted: Bool
        var outside_intact: Bool
    }

    @Test("a and alink exchanged nonstop during --once: the outside tmpfs is never unmounted nor harmed (4 trials)",
          .enabled(if: canUnshare, "needs root and unshare(1): a private mount and PID namespace per trial"))
    func outsideMountSurvives() throws {
        let script = PackagePaths.root.appendingPathComponent("bench/race-trial.py").path
        let policy = PackagePaths.root.appendingPathComponent("policies/ci-runner.yaml").path
        for number in 1...4 {
            let work = try TemporaryDirectory("unmount-race")
            defer { work.remove() }
            let result = try ChildProcess.run("/usr/bin/unshare", [
                "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
                "python3", script, "1", PackagePaths.binary, policy, work.path,
            ])
            try #require(result.status == 0, "trial \(number): \(result.stderr)")
            let line = try #require(result.stdout.split(separator: "\n").last, "trial \(number) printed nothing")
            let trial = try JSONDecoder().decode(Trial.self, from: Data(line.utf8))
            #expect(!trial.outside_unmounted, "trial \(number): the outside tmpfs was unmounted (\(trial.action))")
            #expect(trial.outside_intact, "trial \(number): the outside data was harmed (\(trial.action))")
        }
    }
}
