import Foundation
import ReaperCore
import Testing
@testable import PodManifests

/// Issue 12: anything named like a manifest that is not a readable regular
/// file, and files of any size, end as an error in the snapshot (orphans
/// kept), promptly and in bounded memory.
@Suite("Hostile manifest files")
struct HostileFileTests {
    static let pod = "kind: Pod\nmetadata: {uid: u}\n"

    /// Reads `path` and returns the snapshot and the seconds it took.
    func timedRead(_ path: String, maxFileBytes: Int = ManifestReader.defaultMaxFileBytes) -> (PodSnapshot, Double) {
        let start = Date()
        let snapshot = ManifestReader.read(path: path, settle: 0, maxFileBytes: maxFileBytes)
        return (snapshot, Date().timeIntervalSince(start))
    }

    @Test("a FIFO named *.json is an error naming it, without blocking")
    func fifo() throws {
        let temp = try TempDirectory()
        let pipe = temp.path + "/feed.json"
        #expect(mkfifo(pipe, 0o600) == 0)
        let good = try temp.write("p.yaml", Self.pod)
        let (snapshot, seconds) = timedRead(temp.path)
        #expect(seconds < 2)
        #expect(snapshot.pods.map(\.uid) == ["u"])
        #expect(snapshot.errors == [ManifestError(file: pipe, message: "is a FIFO, not a regular file")])
        #expect(snapshot.files == [pipe, good])
        #expect(!snapshot.isComplete)
        #expect(ManifestReader.read(path: pipe, settle: 0).errors == [ManifestError(file: pipe, message: "is a FIFO, not a regular file or a directory")])
    }

    @Test("a socket named *.yaml is an error")
    func socketFile() throws {
        let temp = try TempDirectory()
        let path = temp.path + "/api.yaml"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: Array(path.utf8) + [0])
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        try temp.write("p.yaml", Self.pod)
        let snapshot = ManifestReader.read(path: temp.path, settle: 0)
        #expect(snapshot.errors == [ManifestError(file: path, message: "is a socket, not a regular file")])
        #expect(!snapshot.isComplete)
    }

    @Test("a directory named *.yaml is an error (its pods are unknown)")
    func directory() throws {
        let temp = try TempDirectory()
        let sub = try temp.makeDirectory("nested.yaml")
        try temp.write("p.yaml", Self.pod)
        let snapshot = ManifestReader.read(path: temp.path, settle: 0)
        #expect(snapshot.errors == [ManifestError(file: sub, message: "is a directory, not a regular file")])
        #expect(snapshot.pods.map(\.uid) == ["u"])
        #expect(!snapshot.isComplete)
    }

    @Test("a symlink to /dev/zero named *.json is an error, never read")
    func devZero() throws {
        let temp = try TempDirectory()
        let link = try temp.symlink("zero.json", to: "/dev/zero")
        try temp.write("p.yaml", Self.pod)
        let (snapshot, seconds) = timedRead(temp.path)
        #expect(seconds < 2)
        #expect(snapshot.errors == [ManifestError(file: link, message: "is a character device, not a regular file")])
        #expect(!snapshot.isComplete)
        #expect(ManifestReader.read(path: link, settle: 0).errors.first?.message == "is a character device, not a regular file or a directory")
    }

    @Test("a sparse 1 TiB file is refused at the size limit, within a second, without allocating its size")
    func sparseTebibyte() throws {
        let temp = try TempDirectory()
        let file = try temp.write("huge.json", "")
        #expect(truncate(file, 1 << 40) == 0)
        try temp.write("p.yaml", Self.pod)
        let (snapshot, seconds) = timedRead(temp.path, maxFileBytes: 1 << 20)
        #expect(seconds < 1)
        #expect(snapshot.errors == [ManifestError(file: file, message: "is larger than the limit of 1048576 bytes (maxManifestBytes)")])
        #expect(snapshot.files.contains(file))
        #expect(snapshot.refreshedAt != nil)
        #expect(!snapshot.isComplete)
    }

    @Test("a file whose size is near 2^63 is refused, not an arithmetic trap")
    func sizeNearInt64Max() throws {
        let temp = try TempDirectory()
        let file = try temp.write("max.json", "")
        // The largest size the file system allows (ext4: 16 TiB, tmpfs and xfs: 2^63 - 1).
        var size = Int64.max
        while truncate(file, off_t(size)) != 0, size > 1 << 40 { size /= 2 }
        #expect(size > 1 << 40)
        let (snapshot, seconds) = timedRead(file, maxFileBytes: 4096)
        #expect(seconds < 1)
        #expect(snapshot.errors.first?.message == "is larger than the limit of 4096 bytes (maxManifestBytes)")
    }

    @Test("3 GiB of NUL bytes under the default limit: refused after 64 MiB, in bounded memory")
    func gibibytesOfNul() throws {
        let temp = try TempDirectory()
        let file = try temp.write("nul.json", "")
        #expect(truncate(file, 3 << 30) == 0)
        let before = peakResidentBytes()
        let (snapshot, seconds) = timedRead(file)
        #expect(seconds < 2)
        #expect(snapshot.errors.first?.message == "is larger than the limit of 67108864 bytes (maxManifestBytes)")
        // At most the limit itself was ever held (other tests run beside this one).
        #expect(peakResidentBytes() - before < 256 << 20)
    }

    @Test("the limit is inclusive: a file of exactly the limit parses, one byte more does not")
    func exactLimit() throws {
        let temp = try TempDirectory()
        let text = #"{"kind":"Pod","metadata":{"uid":"u"}}"#
        let file = try temp.write("p.json", text)
        #expect(ManifestReader.read(path: file, settle: 0, maxFileBytes: text.utf8.count).pods.map(\.uid) == ["u"])
        #expect(ManifestReader.read(path: file, settle: 0, maxFileBytes: text.utf8.count - 1).errors.first?.message
            == "is larger than the limit of \(text.utf8.count - 1) bytes (maxManifestBytes)")
    }

    /// The process' peak resident set so far (`ru_maxrss`).
    func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }
}
