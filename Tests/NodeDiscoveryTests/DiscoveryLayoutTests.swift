import Foundation
import NodeDiscovery
import ReaperCore
import SystemCalls
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// What discovery lists under `<root>/pods` (design §3).
@Suite("NodeDiscovery: the pods tree")
struct DiscoveryLayoutTests {
    @Test("volumes are found with unescaped plugin names")
    func pluginNames() throws {
        let tree = try KubeletTree("plugins")
        defer { tree.remove() }
        let emptyDir = try tree.volume(KubeletTree.uid1, "kubernetes.io~empty-dir", "scratch")
        try tree.volume(KubeletTree.uid1, "kubernetes.io~csi", "pvc-0a1b")
        try tree.volume(KubeletTree.uid1, "example.com~fancy-driver", "data")

        let inventory = try tree.discover()
        #expect(inventory.kubeletRoot == tree.root)
        #expect(inventory.errors.isEmpty, "\(inventory.errors)")
        let pod = try #require(inventory.pods.first)
        #expect(inventory.pods.count == 1)
        #expect(pod.uid == KubeletTree.uid1)
        #expect(pod.path == "\(tree.pods)/\(KubeletTree.uid1)")
        #expect(Set(pod.volumes.map(\.plugin.unescaped)) == ["kubernetes.io/empty-dir", "kubernetes.io/csi", "example.com/fancy-driver"])
        let scratch = try #require(pod.volumes.first { $0.name == "scratch" })
        #expect(scratch.path == emptyDir)
        #expect(scratch.plugin == .emptyDir)
        #expect(pod.volumes.first { $0.name == "pvc-0a1b" }?.plugin.isCSI == true)
    }

    @Test("junk under pods/ is never listed")
    func junk() throws {
        let tree = try KubeletTree("junk")
        defer { tree.remove() }
        try tree.volume()
        // Names that are not a lowercase UUID nor a 32-hex config hash, with volume-like trees inside.
        for name in ["not-a-pod", "lost+found", "5E1F0000-0000-4000-8000-000000000009", "3F2A9C0D4B5E6F708192A3B4C5D6E7F8",
                     "5e1f0000-0000-4000-8000-00000000000", ".5e1f0000-0000-4000-8000-000000000009"] {
            try tree.makeDirectory("\(tree.pods)/\(name)/volumes/kubernetes.io~empty-dir/x")
        }
        try tree.write(tree.pods + "/README", text: "notes")
        // A regular file and a symlink with a valid UUID name: not directories, not followed.
        try tree.write(tree.pods + "/5e1f0000-0000-4000-8000-000000000007", text: "x")
        try tree.makeDirectory(tree.outside + "/fake-pod/volumes/kubernetes.io~empty-dir/x")
        try tree.symlink(tree.pods + "/5e1f0000-0000-4000-8000-000000000008", to: tree.outside + "/fake-pod")

        let inventory = try tree.discover()
        #expect(inventory.pods.map(\.uid) == [KubeletTree.uid1])
        #expect(inventory.pods.flatMap(\.volumes).count == 1)
        #expect(inventory.errors.isEmpty, "\(inventory.errors)")
    }

    @Test("UUID and config-hash directories are classified; a pod without volumes/ is listed empty")
    func podDirectoryKinds() throws {
        let before = Date().addingTimeInterval(-2)
        let tree = try KubeletTree("kinds")
        defer { tree.remove() }
        try tree.volume(KubeletTree.uid1)
        try tree.volume(KubeletTree.configHash)
        try tree.makeDirectory("\(tree.pods)/\(KubeletTree.uid2)/containers")
        let after = Date().addingTimeInterval(2)

        let inventory = try tree.discover()
        let kinds = Dictionary(uniqueKeysWithValues: inventory.pods.map { ($0.uid, $0.kind) })
        #expect(kinds == [KubeletTree.uid1: .uid, KubeletTree.configHash: .configHash, KubeletTree.uid2: .uid])
        #expect(inventory.pods.first { $0.uid == KubeletTree.uid2 }?.volumes.isEmpty == true)
        for pod in inventory.pods {
            #expect(pod.appearedAt >= before && pod.appearedAt <= after, "\(pod.uid) appeared at \(pod.appearedAt)")
        }
        // It is birth time (or ctime), never mtime: an old mtime does not make the pod old.
        try tree.sh("touch -d @\(KubeletTree.old) '\(tree.pods)/\(KubeletTree.uid1)'")
        let again = try tree.discover()
        #expect(again.pods.first { $0.uid == KubeletTree.uid1 }!.appearedAt >= before)
    }

    @Test("a missing pods directory throws a DiscoveryError naming it")
    func missingPodsDirectory() throws {
        let tree = try KubeletTree("missing")
        defer { tree.remove() }
        let root = tree.directory.appending("nowhere")
        let error = try #require(throws: DiscoveryError.self) {
            try NodeDiscoverer(kubeletRoot: root + "/").discover(logger: quietLogger)
        }
        #expect(error.path == root + "/pods")
        #expect(error.description.contains(root + "/pods"))
        #expect(error.description.contains("No such file"), "\(error)")
    }

    @Test("a pods path that is not a directory throws too")
    func podsIsAFile() throws {
        let tree = try KubeletTree("podsfile")
        defer { tree.remove() }
        try tree.makeDirectory(tree.directory.appending("root2"))
        try tree.write(tree.directory.appending("root2/pods"), text: "not a directory")
        let error = try #require(throws: DiscoveryError.self) {
            try NodeDiscoverer(kubeletRoot: tree.directory.appending("root2")).discover(logger: quietLogger)
        }
        #expect(error.path == tree.directory.appending("root2/pods"))
    }

    @Test("an unreadable mount table throws a DiscoveryError naming it")
    func missingMountTable() throws {
        let tree = try KubeletTree("nomountinfo")
        defer { tree.remove() }
        let missing = tree.directory.appending("no-mountinfo")
        let error = try #require(throws: DiscoveryError.self) { try tree.discover(mountInfo: missing) }
        #expect(error.path == missing)
    }

    @Test("discovery of the example node lists exactly its expected volumes")
    func exampleNode() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let inventory = try NodeDiscoverer(kubeletRoot: node.kubeletRoot).discover(logger: quietLogger)
        let volumes = inventory.pods.flatMap(\.volumes)
        #expect(Set(volumes.map(\.path)) == Set(node.expectations.map(\.path)))
        #expect(volumes.count == node.expectations.count, "no volume twice")
        #expect(inventory.errors.isEmpty, "\(inventory.errors)")
        for volume in volumes {
            #expect(volume.scan.unreadable.isEmpty, "\(volume.path): \(volume.scan.unreadable)")
            let expected = try #require(node.expectations.first { $0.path == volume.path })
            #expect(volume.scan.isMounted == expected.reasons.contains("mounted"), "\(volume.path)")
        }
    }
}
