import Foundation
import Testing
import TestSupport
@testable import VolumeWatcher

@Test(.enabled(if: ProcessInfo.processInfo.environment["VW_SCALE"] != nil))
func scaleProbe() async throws {
    let tree = try PodTree("scale")
    defer { tree.remove() }
    let script = """
    cd '\(tree.pods)'
    for p in $(seq 1 100); do uid=$(printf '%08x-0000-4000-8000-%012x' $p $p); for v in $(seq 1 10); do d="$uid/volumes/kubernetes.io~empty-dir/v$v"; mkdir -p "$d"; (cd "$d" && mkdir -p $(seq -f 'd%g' 1 99)); done; done
    find . -type d | wc -l
    """
    print(try ChildProcess.shell(script).stdout)
    func rss() -> String { ((try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.hasPrefix("VmRSS") }.joined() }
    print("baseline", rss())
    let watcher = makeWatcher(tree)
    let start = ContinuousClock.now
    try await withRunningWatcher(watcher) { watcher in
        print("ready after", ContinuousClock.now - start, watcher.status)
        let rss = try String(contentsOfFile: "/proc/self/status", encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("VmRSS") || $0.hasPrefix("VmHWM") }
        print(rss)
        let t0 = ContinuousClock.now
        watcher.handle([InotifyEvent(wd: -1, mask: InotifyMask.queueOverflow)])
        print("rescan", ContinuousClock.now - t0, watcher.status)
        try await Task.sleep(for: .seconds(1))
        print("after", watcher.status)
    }
    let r = try ChildProcess.shell("""
    cd '\(tree.root)'; start=$(date +%s.%N); inotifywait -m -r pods 2>/tmp/vw/iw.err >/dev/null & pid=$!
    until grep -q 'Watches established' /tmp/vw/iw.err; do sleep 0.005; done; end=$(date +%s.%N)
    echo "inotifywait ready $(echo "$end - $start" | bc)"; grep VmHWM /proc/$pid/status; kill -9 $pid
    """)
    print(r.stdout, r.stderr)
}
