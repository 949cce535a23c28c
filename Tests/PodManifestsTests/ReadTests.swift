import Foundation
import ReaperCore
import Testing
@testable import PodManifests

@Suite("Reading files and directories")
struct ReadTests {
    @Test("one file: its pods, itself as the only file, its mtime")
    func singleFile() throws {
        let temp = try TempDirectory()
        let modified = date("2026-11-29T07:00:00Z")
        let file = try temp.write("pods.json", Fixtures.kubeletPods, modified: modified)
        let snapshot = ManifestReader.read(path: file)
        #expect(snapshot.path == file)
        #expect(snapshot.files == [file])
        #expect(snapshot.errors.isEmpty)
        #expect(snapshot.pods.count == 5)
        #expect(snapshot.pods.allSatisfy { $0.source == file })
        #expect(snapshot.refreshedAt == modified)
        #expect(snapshot.isComplete)
        #expect(!snapshot.isEmpty)
    }

    @Test("a file given by path is read whatever its name")
    func explicitFileAnyName() throws {
        let temp = try TempDirectory()
        let file = try temp.write("pods.txt", "kind: Pod\nmetadata: {uid: u}\n")
        #expect(ManifestReader.read(path: file).pods.map(\.uid) == ["u"])
    }

    @Test("a directory with one good and one broken file")
    func goodAndBroken() throws {
        let temp = try TempDirectory()
        let good = try temp.write("a-good.yaml", "kind: Pod\nmetadata: {uid: good-uid, name: good}\nstatus: {phase: Succeeded}\n")
        let broken = try temp.write("b-broken.json", String(Fixtures.kubectlList.prefix(500)))
        let snapshot = ManifestReader.read(path: temp.path)
        #expect(snapshot.files == [good, broken])
        #expect(snapshot.pods.map(\.uid) == ["good-uid"])
        #expect(snapshot.errors.count == 1)
        #expect(snapshot.errors.first?.file == broken)
        #expect(snapshot.errors.first?.description.hasPrefix(broken + ": not valid JSON") == true)
        #expect(!snapshot.isComplete)
    }

    @Test("a file with one bad document contributes no pods")
    func halfReadFileDropped() throws {
        let temp = try TempDirectory()
        try temp.write("a.yaml", "kind: Pod\nmetadata: {uid: other}\n")
        let mixed = try temp.write("b.yaml", "kind: Pod\nmetadata: {uid: fine}\n---\nkind: Deployment\nmetadata: {uid: d}\n")
        let snapshot = ManifestReader.read(path: temp.path)
        #expect(snapshot.pods.map(\.uid) == ["other"])
        #expect(snapshot.errors == [ManifestError(file: mixed, message: "document 2 (line 4): kind Deployment is not Pod, PodList or List")])
    }

    @Test("refreshedAt is the OLDEST mtime, broken files included")
    func oldestMtime() throws {
        let temp = try TempDirectory()
        try temp.write("new.yaml", "kind: Pod\nmetadata: {uid: n}\n", modified: date("2026-11-29T07:10:00Z"))
        try temp.write("old.json", #"{"kind":"Pod","metadata":{"uid":"o"}}"#, modified: date("2026-11-29T06:50:00Z"))
        try temp.write("mid.yml", "kind: Pod\nmetadata: {uid: m}\n", modified: date("2026-11-29T07:00:00Z"))
        var snapshot = ManifestReader.read(path: temp.path)
        #expect(snapshot.refreshedAt == date("2026-11-29T06:50:00Z"))
        #expect(Set(snapshot.pods.map(\.uid)) == ["n", "o", "m"])

        try temp.write("stale-broken.yaml", "kind: [", modified: date("2026-11-29T05:00:00Z"))
        snapshot = ManifestReader.read(path: temp.path)
        #expect(snapshot.refreshedAt == date("2026-11-29T05:00:00Z"))
        #expect(snapshot.files.count == 4)
    }

    @Test("sub-second mtimes are kept")
    func subSecondMtime() throws {
        let temp = try TempDirectory()
        let file = try temp.write("p.yaml", "kind: Pod\nmetadata: {uid: u}\n")
        var times = [
            timespec(tv_sec: 1_800_000_000, tv_nsec: 250_000_000),
            timespec(tv_sec: 1_800_000_000, tv_nsec: 250_000_000),
        ]
        #expect(utimensat(AT_FDCWD, file, &times, 0) == 0)
        let refreshed = try #require(ManifestReader.read(path: file).refreshedAt)
        #expect(abs(refreshed.timeIntervalSince1970 - 1_800_000_000.25) < 0.000_001)
    }

    @Test("a missing path: no files, an error naming it")
    func missingPath() throws {
        let temp = try TempDirectory()
        let missing = temp.path + "/nope"
        let snapshot = ManifestReader.read(path: missing)
        #expect(snapshot.files.isEmpty)
        #expect(snapshot.pods.isEmpty)
        #expect(snapshot.refreshedAt == nil)
        #expect(snapshot.errors == [ManifestError(file: missing, message: "does not exist")])
        #expect(!snapshot.isComplete)
        #expect(snapshot.isEmpty)
    }

    @Test("an empty directory: no files, no errors, no snapshot to judge by")
    func emptyDirectory() throws {
        let temp = try TempDirectory()
        let snapshot = ManifestReader.read(path: temp.path)
        #expect(snapshot.files.isEmpty)
        #expect(snapshot.errors.isEmpty)
        #expect(snapshot.refreshedAt == nil)
        #expect(!snapshot.isComplete)
        #expect(snapshot.isEmpty)
    }

    @Test("only *.json, *.yaml, *.yml; hidden files, other names and subdirectories ignored")
    func selection() throws {
        let temp = try TempDirectory()
        let pod = "kind: Pod\nmetadata: {uid: u}\n"
        let json = try temp.write("a.json", #"{"kind":"Pod","metadata":{"uid":"j"}}"#)
        let yaml = try temp.write("b.yaml", pod)
        let yml = try temp.write("c.yml", pod)
        let upper = try temp.write("D.YAML", pod)
        try temp.write(".e.yaml", "garbage: [")            // an atomic writer's temp file
        try temp.write(".pods.json.tmp", "{")
        try temp.write("README.md", "# not a manifest")
        try temp.write("f.yaml.bak", "garbage: [")
        try temp.write("g.yaml~", "garbage: [")
        try temp.write("yaml", "garbage: [")
        let sub = try temp.makeDirectory("nested.yaml")     // not a file: an error, never descended into
        try Data("kind: Pod\nmetadata: {uid: deep}\n".utf8).write(to: URL(fileURLWithPath: sub + "/deep.yaml"))
        let snapshot = ManifestReader.read(path: temp.path)
        #expect(snapshot.files == [upper, json, yaml, yml, sub])
        #expect(snapshot.errors == [ManifestError(file: sub, message: "is a directory, not a regular file")])
        #expect(snapshot.pods.count == 4)
        #expect(!snapshot.pods.contains { $0.uid == "deep" })
    }

    @Test("symlinks to files are followed; a dangling one is an error")
    func symlinks() throws {
        let temp = try TempDirectory()
        let store = try temp.makeDirectory("store")
        let target = store + "/real.json"
        try Data(#"{"kind":"Pod","metadata":{"uid":"linked"}}"#.utf8).write(to: URL(fileURLWithPath: target))
        let manifests = try temp.makeDirectory("manifests")
        let link = manifests + "/pods.json"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        var snapshot = ManifestReader.read(path: manifests)
        #expect(snapshot.pods.map(\.uid) == ["linked"])
        #expect(snapshot.pods.first?.source == link)
        #expect(snapshot.isComplete)

        let dangling = manifests + "/gone.yaml"
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: store + "/missing.yaml")
        snapshot = ManifestReader.read(path: manifests)
        #expect(snapshot.pods.map(\.uid) == ["linked"])
        #expect(snapshot.errors == [ManifestError(file: dangling, message: "is a dangling symlink")])
        #expect(snapshot.files == [dangling, link])
        #expect(!snapshot.isComplete)

        #expect(ManifestReader.read(path: dangling).errors == [ManifestError(file: dangling, message: "is a dangling symlink")])
    }

    @Test("broken inputs in files: empty, comment-only, no uid, wrong kind, YAML error")
    func brokenFiles() throws {
        let temp = try TempDirectory()
        let files = [
            try temp.write("1-empty.yaml", ""),
            try temp.write("2-comments.yaml", "# managed by the node agent\n# nothing yet\n"),
            try temp.write("3-nouid.yaml", "kind: Pod\nmetadata: {name: x}\n"),
            try temp.write("4-kind.yaml", "kind: Service\nmetadata: {name: x}\n"),
            try temp.write("5-syntax.yaml", "kind: Pod\nmetadata:\n  uid: [a, b\n"),
            try temp.write("6-binary.json", "\u{7B}\u{FF}"),
        ]
        try Data([0x6B, 0x69, 0xFF, 0xFE]).write(to: URL(fileURLWithPath: files[5]))
        let snapshot = ManifestReader.read(path: temp.path)
        #expect(snapshot.files == files)
        #expect(snapshot.errors.map(\.file) == files)
        #expect(snapshot.errors[0].message == "no document (the file is empty or only comments)")
        #expect(snapshot.errors[1].message == "no document (the file is empty or only comments)")
        #expect(snapshot.errors[2].message == "document 1 (line 1), pod default/x: no metadata.uid")
        #expect(snapshot.errors[3].message == "document 1 (line 1): kind Service is not Pod, PodList or List")
        #expect(snapshot.errors[4].message.hasPrefix("not valid YAML: line "))
        #expect(snapshot.errors[5].message == "is not UTF-8 text")
        #expect(snapshot.pods.isEmpty)
        #expect(snapshot.refreshedAt != nil)
    }

    @Test("an unreadable file is an error (unless running as root)")
    func unreadable() throws {
        guard geteuid() != 0 else { return }
        let temp = try TempDirectory()
        let file = try temp.write("secret.yaml", "kind: Pod\nmetadata: {uid: u}\n", modified: date("2026-11-29T01:00:00Z"))
        #expect(chmod(file, 0) == 0)
        let snapshot = ManifestReader.read(path: temp.path)
        #expect(snapshot.errors.first?.message.hasPrefix("cannot open: ") == true)
        #expect(snapshot.refreshedAt == date("2026-11-29T01:00:00Z"))
    }
}
