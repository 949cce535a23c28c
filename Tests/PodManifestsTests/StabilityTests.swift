import Foundation
import ReaperCore
import Testing
@testable import PodManifests

/// Issue 13 hole 3: truncated or half-written YAML counted as complete, and
/// running pods became orphans. Each cut here dropped a running pod from a
/// snapshot that said it was complete.
@Suite("Manifest stability and cut-short files")
struct StabilityTests {
    static let runningA = "aaaaaaaa-1111-4111-8111-111111111111"
    static let runningB = "bbbbbbbb-2222-4222-8222-222222222222"

    /// A kind-first List, as a hand-made writer emits it.
    static let kindFirstList = """
        kind: List
        apiVersion: v1
        items:
        - kind: Pod
          metadata:
            name: web-a
            namespace: shop
            uid: \(runningA)
          status:
            phase: Running
        - kind: Pod
          metadata:
            name: web-b
            namespace: shop
            uid: \(runningB)
          status:
            phase: Running

        """

    static let multiDocument = """
        kind: Pod
        metadata:
          name: web-a
          uid: \(runningA)
        status:
          phase: Running
        ---
        kind: Pod
        metadata:
          name: web-b
          uid: \(runningB)
        status:
          phase: Running

        """

    /// Writes `text` and reads the directory (no settle time: the cut is the point here).
    func read(_ text: String) throws -> PodSnapshot {
        let temp = try TempDirectory()
        try temp.write("pods.yaml", text)
        return ManifestReader.read(path: temp.path, settle: 0)
    }

    @Test("the whole files parse: both pods, complete")
    func wholeFiles() throws {
        for text in [Self.kindFirstList, Self.multiDocument] {
            let snapshot = try read(text)
            #expect(snapshot.isComplete)
            #expect(snapshot.fingerprint != nil)
            #expect(Set(snapshot.pods.map(\.uid)) == [Self.runningA, Self.runningB])
        }
    }

    @Test("a kind-first List cut inside an unquoted uid: an error, not a pod with a short uid")
    func listCutInsideUID() throws {
        let cut = try #require(Self.kindFirstList.range(of: String(Self.runningB.prefix(13))))
        let snapshot = try read(String(Self.kindFirstList[..<cut.upperBound]))
        #expect(!snapshot.isComplete)
        #expect(snapshot.pods.isEmpty)
        #expect(snapshot.fingerprint == nil)
        #expect(snapshot.errors.first?.message.contains("does not end with a newline") == true)
    }

    @Test("a List cut before its items: an error")
    func listCutBeforeItems() throws {
        let snapshot = try read("kind: List\napiVersion: v1\n")
        #expect(!snapshot.isComplete)
        #expect(snapshot.errors.first?.message.contains("has no items") == true)
        // Explicitly empty is fine.
        #expect(try read("kind: List\napiVersion: v1\nitems: []\n").isComplete)
    }

    @Test("a multi-document file cut after a separator: an error")
    func multiDocumentCutAfterSeparator() throws {
        let cut = try #require(Self.multiDocument.range(of: "---\n"))
        let snapshot = try read(String(Self.multiDocument[..<cut.upperBound]))
        #expect(!snapshot.isComplete)
        #expect(snapshot.errors.first?.message.contains("---") == true)
        // A leading separator is no cut.
        #expect(try read("---\n" + Self.multiDocument).isComplete)
    }

    @Test("a List cut at an item boundary still parses: only orphan confirmation catches it (a different fingerprint later)")
    func listCutAtItemBoundary() throws {
        let temp = try TempDirectory()
        let cut = try #require(Self.kindFirstList.range(of: "- kind: Pod\n  metadata:\n    name: web-b"))
        let file = try temp.write("pods.yaml", String(Self.kindFirstList[..<cut.lowerBound]))
        let truncated = ManifestReader.read(path: temp.path, settle: 0)
        #expect(truncated.pods.map(\.uid) == [Self.runningA])
        // The writer's next write is another write: its fingerprint differs,
        // even at the same size (a rename brings another inode).
        try Data(Self.kindFirstList.utf8).write(to: URL(fileURLWithPath: file), options: .atomic)
        let whole = ManifestReader.read(path: temp.path, settle: 0)
        #expect(whole.fingerprint != truncated.fingerprint)
        #expect(whole.pods.count == 2)
    }

    @Test("a file changed less than the settle time ago is waited for, then read")
    func youngFileWaitedFor() throws {
        let temp = try TempDirectory()
        try temp.write("pods.yaml", Self.multiDocument)
        let started = Date()
        let snapshot = ManifestReader.read(path: temp.path, settle: 0.4)
        #expect(Date().timeIntervalSince(started) >= 0.3)
        #expect(snapshot.isComplete)
        #expect(snapshot.pods.count == 2)
    }

    @Test("a file that keeps changing is an error, not skipped: the snapshot is incomplete")
    func unsettledFileIsAnError() throws {
        let temp = try TempDirectory()
        let file = try temp.write("pods.yaml", Self.multiDocument)
        // An in-place writer still at work: a touch every 50 ms for 1 s.
        let writer = Thread {
            for _ in 0..<20 {
                utimes(file, nil)
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        writer.start()
        let snapshot = ManifestReader.read(path: temp.path, settle: 0.3)
        #expect(snapshot.files == [file])
        #expect(!snapshot.isComplete)
        #expect(snapshot.pods.isEmpty)
        #expect(snapshot.errors.first?.message.contains("left alone") == true)
        Thread.sleep(forTimeInterval: 1.1)
    }

    @Test("a future mtime does not make a file look settled (ctime decides)")
    func futureMTime() throws {
        let temp = try TempDirectory()
        try temp.write("pods.yaml", Self.multiDocument, modified: Date().addingTimeInterval(86400))
        let snapshot = ManifestReader.read(path: temp.path, settle: 0.3)
        #expect(snapshot.isComplete, "waited for, then read")
        #expect(try #require(snapshot.refreshedAt) > Date().addingTimeInterval(3600), "the future mtime is reported for the reconciler to refuse")
    }

    // MARK: The stat-only fingerprint

    @Test("fingerprint(path:) equals the snapshot's until any file changes, is added or removed")
    func fingerprint() throws {
        let temp = try TempDirectory()
        let file = try temp.write("a.yaml", Self.multiDocument)
        try temp.write("ignored.txt", "x")
        let snapshot = ManifestReader.read(path: temp.path, settle: 0)
        #expect(ManifestReader.fingerprint(path: temp.path) == snapshot.fingerprint)
        try temp.write("ignored.txt", "y")
        #expect(ManifestReader.fingerprint(path: temp.path) == snapshot.fingerprint, "only manifest files count")

        try temp.write("b.yaml", "kind: List\nitems: []\n")
        let added = ManifestReader.fingerprint(path: temp.path)
        #expect(added != snapshot.fingerprint)
        try FileManager.default.removeItem(atPath: temp.path + "/b.yaml")
        #expect(ManifestReader.fingerprint(path: temp.path) == snapshot.fingerprint)

        // Same size, same mtime forced back: the ctime still moves.
        let before = try FileManager.default.attributesOfItem(atPath: file)[.modificationDate] as? Date
        Thread.sleep(forTimeInterval: 0.02)
        try temp.write("a.yaml", Self.multiDocument.replacingOccurrences(of: "web-a", with: "web-x"), modified: before)
        #expect(ManifestReader.fingerprint(path: temp.path) != snapshot.fingerprint)
        // A single file path.
        let single = ManifestReader.read(path: file, settle: 0)
        #expect(ManifestReader.fingerprint(path: file) == single.fingerprint)
    }

    @Test("the fingerprint is the one stat(2) gave before statx: stored orphan observations still match after an upgrade")
    func fingerprintKeepsStatEncoding() throws {
        let temp = try TempDirectory()
        let file = try temp.write("a.yaml", Self.multiDocument)
        // The line the stat(2)-based reader digested: st_dev as glibc encodes it.
        var info = stat()
        #expect(stat(file, &info) == 0)
        let line = "\(file)\t\(info.st_dev):\(info.st_ino)\t\(info.st_size)\t\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
            + "\t\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)\n"
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in line.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let expected = String(repeating: "0", count: 16 - String(hash, radix: 16).count) + String(hash, radix: 16)
        #expect(ManifestReader.fingerprint(path: temp.path) == expected)
        #expect(ManifestReader.read(path: temp.path, settle: 0).fingerprint == expected)
    }
}
