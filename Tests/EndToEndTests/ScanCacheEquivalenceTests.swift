#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ReaperCore
import Testing
import TestSupport

/// Issue 10's core test: the daemon, which re-walks only volumes the watcher
/// saw change, must judge every volume as a one-shot `--plan` walking the
/// whole node does, after any sequence of changes. Bytes and mount state are
/// compared too: a stale walk shows there first, since every change the
/// watcher sees is also an access that keeps the volume.
@Suite("scan cache equivalence", .serialized)
struct ScanCacheEquivalenceTests {
    @Test("the daemon's plan equals a fresh --plan after every batch of random operations", arguments: [11, 23, 37])
    func randomOperations(seed: UInt64) throws {
        let bench = try EquivalenceBench(seed: seed)
        defer { bench.close() }
        for batch in 0..<9 {
            // Manifests must sit still for 2 s before they are read: rewritten
            // every third batch only, first, so the batch's work overlaps the wait.
            if batch % 3 == 1 { try bench.writeManifestsIfChanged() }
            for _ in 0..<19 { try bench.randomOperation() }
            try bench.expectSamePlans(label: "seed \(seed) batch \(batch)")
        }
        #expect(bench.operations >= 170)
        // The cache was used: not every cycle walked everything.
        let health = try JSONSerialization.jsonObject(with: Data(try curl(bench.socket, "/healthz").body.utf8)) as? [String: Any]
        let scans = try #require(health?["scans"] as? [String: Any])
        #expect((scans["reused"] as? Int ?? 0) > 0, "\(scans)")
    }

    @Test("events lost to an overflowing inotify queue dirty every volume")
    func overflowDirtiesEverything() throws {
        let bench = try EquivalenceBench(seed: 5)
        defer { bench.close() }
        try bench.expectSamePlans(label: "start")
        let flooded = bench.volumes[0], quiet = bench.volumes[1]
        // Stopped, the daemon cannot read its queue: the flood fills it (16384
        // events by default; 3 per file) and the kernel drops what follows.
        kill(bench.daemon.pid, SIGSTOP)
        let queueSize = (try? String(contentsOfFile: "/proc/sys/fs/inotify/max_queued_events", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 16384
        try FileManager.default.createDirectory(atPath: flooded + "/flood", withIntermediateDirectories: true)
        for index in 0..<(queueSize / 3 + 200) {
            let fd = open(flooded + "/flood/f\(index)", O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
            if fd >= 0 { close(fd) }
        }
        // Lost: only a walk finds these bytes.
        try Data(repeating: 7, count: 48 * 1024).write(to: URL(fileURLWithPath: quiet + "/after-overflow.bin"))
        kill(bench.daemon.pid, SIGCONT)
        try bench.expectSamePlans(label: "after overflow")
    }
}

/// A daemon on the example node plus pods of our own, and the operations.
final class EquivalenceBench {
    let node: ExampleNode
    /// Started once our pods and manifests are in place.
    var daemon: BackgroundProcess!
    let socket: String
    let state: String
    var random: SplitMix
    var operations = 0
    /// Our pods: uid -> (phase, volume paths).
    var pods: [String: (phase: String, volumes: [String])] = [:]
    var nextPod = 100
    var mounts: Set<String> = []
    var locks: [String: Int32] = [:]
    var manifestsChanged = false
    var lastManifestWrite = Date.distantPast
    var volumes: [String] { pods.keys.sorted().flatMap { pods[$0]!.volumes } }
    var manifestFile: String { node.manifests + "/equivalence.json" }

    init(seed: UInt64) throws {
        random = SplitMix(seed: seed)
        node = try ExampleNode()
        state = node.directory.appending("state")
        socket = node.directory.appending("run/api.sock")
        do {
            for _ in 0..<4 { try addPod(volumes: 2) }
            try writeManifests()
            let config = node.directory.appending("config.yaml")
            try """
                kubeletRoot: \(node.kubeletRoot)
                cgroupRoot: \(node.cgroupRoot)
                manifests: \(node.manifests)
                policy: \(TestPolicies.singleSnapshot)
                stateDir: \(state)
                socket: \(socket)
                reconcileInterval: 1h
                flushInterval: 500ms
                logTarget: stderr
                """.write(toFile: config, atomically: true, encoding: .utf8)
            daemon = try BackgroundProcess(PackagePaths.binary, ["run", "--plan", "--config", config], log: node.directory.appending("daemon.log"))
        } catch {
            node.remove()
            throw error
        }
        guard try eventually(timeout: 60, { try curl(socket, "/healthz").status == 200 }) else {
            close()
            throw ExampleNodeError(message: "daemon not healthy within 60s")
        }
    }

    func close() {
        for fd in locks.values { Glibc.close(fd) }
        daemon?.stop(signal: SIGKILL)
        node.remove()
        // A mount still busy for a moment (the killed daemon's last walk) fails the first cleanup.
        if FileManager.default.fileExists(atPath: node.directory.path) {
            usleep(500_000)
            node.remove()
        }
    }

    // MARK: Comparing

    struct Judgement: Hashable, CustomStringConvertible {
        var verdict: String
        var reasons: [String]
        var bytes: UInt64
        var mounted: Bool
        var description: String { "\(verdict) \(reasons) \(bytes)B mounted=\(mounted)" }
    }

    static func judgements(_ plan: Plan) -> [String: Judgement] {
        Dictionary(uniqueKeysWithValues: plan.volumes.map {
            ($0.path, Judgement(verdict: $0.verdict.rawValue, reasons: $0.reasons.map(\.rawValue).sorted(), bytes: $0.bytes, mounted: $0.mounted))
        })
    }

    func expectSamePlans(label: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let settled = lastManifestWrite.addingTimeInterval(2.1).timeIntervalSinceNow
        if settled > 0 { Thread.sleep(forTimeInterval: settled) }
        let (status, body) = try curl(socket, "/v1/reconcile", method: "POST")
        try #require(status == 200, "\(label): POST /v1/reconcile: \(status) \(body)\n\(daemon.log.suffix(2000))")
        let daemonPlan = try Plan.decoder().decode(Plan.self, from: Data(body.utf8))
        let result = try ChildProcess.run(PackagePaths.binary, [
            "--plan", "--json", "--kubelet-root", node.kubeletRoot, "--cgroup-root", node.cgroupRoot, "--manifests", node.manifests,
            "--policy", TestPolicies.singleSnapshot, "--state-dir", state, "--log-target", "stderr",
        ])
        try #require(result.status == 0, "--plan failed: \(result.stderr)")
        let fresh = Self.judgements(try Plan.decoder().decode(Plan.self, from: Data(result.stdout.utf8)))
        let cached = Self.judgements(daemonPlan)
        #expect(Set(cached.keys) == Set(fresh.keys), "\(label): volume sets differ", sourceLocation: sourceLocation)
        for (path, judgement) in fresh.sorted(by: { $0.key < $1.key }) {
            #expect(cached[path] == judgement, "\(label): \(path): daemon \(cached[path].map(\.description) ?? "none"), --plan \(judgement)",
                    sourceLocation: sourceLocation)
        }
    }

    // MARK: Operations

    func randomOperation() throws {
        operations += 1
        let roll = random.next(100)
        switch roll {
        case 0..<14: try createFile()
        case 14..<24: try appendToFile()
        case 24..<32: readFile()
        case 32..<40: deleteEntry()
        case 40..<47: try renameEntry()
        case 47..<53: try makeDirectory()
        case 53..<59: chmodEntry()
        case 59..<66: backdate()
        case 66..<71: try toggleMount()
        case 71..<77: toggleLock()
        case 77..<81: try addPod(volumes: 1 + random.next(2)); manifestsChanged = true
        case 81..<84: try removePod()
        case 84..<87: try addVolume()
        case 87..<89: try removeVolume()
        default: try flipPhase()
        }
    }

    /// A random directory of a random volume, never inside a tmpfs we mounted.
    func someDirectory() -> String? {
        guard let volume = random.pick(volumes) else { return nil }
        let directories = entries(in: volume).filter { isDirectory($0) && !isUnderMount($0) }
        return random.pick([volume] + directories)
    }

    func someFile() -> String? {
        guard let volume = random.pick(volumes) else { return nil }
        return random.pick(entries(in: volume).filter { !isDirectory($0) && !isUnderMount($0) })
    }

    func entries(in volume: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: volume) else { return [] }
        var paths: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let path = volume + "/" + relative
            if mounts.contains(path) { enumerator.skipDescendants() }
            paths.append(path)
        }
        return paths.sorted()
    }

    func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }

    func isUnderMount(_ path: String) -> Bool {
        mounts.contains { path == $0 || path.hasPrefix($0 + "/") || $0.hasPrefix(path + "/") }
    }

    func createFile() throws {
        guard let directory = someDirectory() else { return }
        let data = Data(repeating: UInt8(random.next(256)), count: random.next(3) * 4096 + random.next(100))
        try data.write(to: URL(fileURLWithPath: directory + "/f\(random.next(1_000_000))"))
    }

    func appendToFile() throws {
        guard let file = someFile(), let handle = FileHandle(forWritingAtPath: file) else { return }
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: 1, count: 4096 * (1 + random.next(3))))
    }

    func readFile() {
        guard let file = someFile() else { return }
        _ = FileManager.default.contents(atPath: file)
    }

    func deleteEntry() {
        guard let volume = random.pick(volumes), let path = random.pick(entries(in: volume)), !isUnderMount(path) else { return }
        releaseLocks(under: path)
        try? FileManager.default.removeItem(atPath: path)
    }

    func renameEntry() throws {
        guard let volume = random.pick(volumes), let path = random.pick(entries(in: volume)), !isUnderMount(path),
              let target = someDirectory(), !target.hasPrefix(path), target.hasPrefix(volume) else { return }
        releaseLocks(under: path)
        rename(path, target + "/r\(random.next(1_000_000))")
    }

    func makeDirectory() throws {
        guard let directory = someDirectory() else { return }
        try FileManager.default.createDirectory(atPath: directory + "/d\(random.next(1_000_000))/e", withIntermediateDirectories: true)
    }

    func chmodEntry() {
        guard let file = someFile() else { return }
        chmod(file, random.next(2) == 0 ? 0o600 : 0o644)
    }

    func backdate() {
        guard let file = random.next(2) == 0 ? someFile() : someDirectory() else { return }
        _ = try? ChildProcess.run("/usr/bin/touch", ["-d", "\(2 + random.next(20)) hours ago", file])
    }

    func toggleMount() throws {
        guard isRoot else { return }
        if let mounted = random.pick(mounts.sorted()), random.next(2) == 0 {
            if try ChildProcess.run("/bin/umount", [mounted]).status == 0 { mounts.remove(mounted) }
            return
        }
        guard let directory = someDirectory(), !volumes.contains(directory) else { return }
        if try ChildProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", directory]).status == 0 { mounts.insert(directory) }
    }

    func toggleLock() {
        if let held = random.pick(locks.keys.sorted()), random.next(2) == 0 {
            Glibc.close(locks.removeValue(forKey: held)!)
            return
        }
        guard let directory = someDirectory(), locks[directory] == nil else { return }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { locks[directory] = fd } else { Glibc.close(fd) }
    }

    func releaseLocks(under path: String) {
        for (directory, fd) in locks where directory == path || directory.hasPrefix(path + "/") {
            Glibc.close(fd)
            locks.removeValue(forKey: directory)
        }
    }

    func podUID(_ number: Int) -> String { String(format: "5e1f0000-0000-4000-8000-%012d", number) }

    func addPod(volumes count: Int) throws {
        let uid = podUID(nextPod)
        nextPod += 1
        pods[uid] = (random.next(3) == 0 ? "Running" : "Succeeded", [])
        for _ in 0..<count { try addVolume(to: uid) }
    }

    func addVolume() throws {
        guard let uid = random.pick(pods.keys.sorted()) else { return }
        try addVolume(to: uid)
    }

    func addVolume(to uid: String) throws {
        let volume = node.kubeletRoot + "/pods/\(uid)/volumes/kubernetes.io~empty-dir/v\(random.next(1_000_000))"
        try FileManager.default.createDirectory(atPath: volume + "/sub", withIntermediateDirectories: true)
        try Data(repeating: 3, count: 8192).write(to: URL(fileURLWithPath: volume + "/sub/data"))
        let threeHoursAgo = Date().addingTimeInterval(-3 * 3600)
        for path in [volume + "/sub/data", volume + "/sub", volume] {
            try FileManager.default.setAttributes([.modificationDate: threeHoursAgo], ofItemAtPath: path)
        }
        pods[uid]?.volumes.append(volume)
    }

    func removeVolume() throws {
        guard let uid = random.pick(pods.keys.sorted()), let volume = random.pick(pods[uid]!.volumes), !isUnderMount(volume) else { return }
        releaseLocks(under: volume)
        try FileManager.default.removeItem(atPath: volume)
        pods[uid]?.volumes.removeAll { $0 == volume }
    }

    func removePod() throws {
        guard pods.count > 2, let uid = random.pick(pods.keys.sorted()) else { return }
        let directory = node.kubeletRoot + "/pods/\(uid)"
        guard !isUnderMount(directory) else { return }
        releaseLocks(under: directory)
        try FileManager.default.removeItem(atPath: directory)
        pods.removeValue(forKey: uid)
        manifestsChanged = true
    }

    func flipPhase() throws {
        guard let uid = random.pick(pods.keys.sorted()) else { return }
        let running = pods[uid]?.phase == "Running"
        pods[uid]?.phase = running ? "Succeeded" : "Running"
        manifestsChanged = true
    }

    func writeManifestsIfChanged() throws {
        guard manifestsChanged else { return }
        try writeManifests()
    }

    /// Our pods as a PodList (the reader trusts it 2 s after its ctime).
    func writeManifests() throws {
        manifestsChanged = false
        lastManifestWrite = Date()
        let items = pods.keys.sorted().map { uid in
            """
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"eq-\(uid.suffix(4))","namespace":"eq","uid":"\(uid)"},\
            "spec":{"nodeName":"example-node"},"status":{"phase":"\(pods[uid]!.phase)"}}
            """
        }
        let temporary = node.directory.appending("equivalence.json.tmp")
        try Data("{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"items\":[\(items.joined(separator: ","))]}".utf8)
            .write(to: URL(fileURLWithPath: temporary))
        rename(temporary, manifestFile)
    }
}

/// A small seeded generator, so a failing seed replays.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Int(z % UInt64(max(1, bound)))
    }

    mutating func pick<T>(_ items: [T]) -> T? {
        items.isEmpty ? nil : items[next(items.count)]
    }
}
