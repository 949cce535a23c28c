import Foundation
import ReaperCore
import SystemCalls
import SystemPackage

/// A path the reaper may act on, checked against safety rule 1 (design §5.1):
/// `<root>/pods/<uid>/volumes/<plugin>/<volume>`, or an orphan's `<root>/pods/<uid>`.
/// Opening walks it component by component with `O_NOFOLLOW`, so a symlink
/// planted anywhere below the root cannot redirect the reaper.
struct KubeletPath {
    var kubeletRoot: String
    var podUID: String
    var podKind: PodDirectoryKind
    var plugin: PluginName
    var pluginDirectoryName: String
    var volumeName: String

    var podDirectory: String { kubeletRoot + "/pods/" + podUID }
    var volumePath: String { podDirectory + "/volumes/" + pluginDirectoryName + "/" + volumeName }

    init?(volumePath: String, kubeletRoot: String) {
        let prefix = kubeletRoot + "/pods/"
        guard volumePath.hasPrefix(prefix) else { return nil }
        let rest = volumePath.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard rest.count == 4, rest[1] == "volumes", let kind = PodDirectoryKind(directoryName: rest[0]),
              Self.isPlainName(rest[2]), Self.isPlainName(rest[3]) else { return nil }
        self.kubeletRoot = kubeletRoot
        podUID = rest[0]
        podKind = kind
        pluginDirectoryName = rest[2]
        plugin = PluginName(rest[2])
        volumeName = rest[3]
    }

    init?(podDirectory: String, kubeletRoot: String) {
        let prefix = kubeletRoot + "/pods/"
        guard podDirectory.hasPrefix(prefix) else { return nil }
        let uid = String(podDirectory.dropFirst(prefix.count))
        guard let kind = PodDirectoryKind(directoryName: uid), kind == .uid else { return nil }
        self.kubeletRoot = kubeletRoot
        podUID = uid
        podKind = kind
        pluginDirectoryName = ""
        plugin = PluginName("")
        volumeName = ""
    }

    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\0")
    }

    /// Descriptors down to the plugin directory, and when the pod dir appeared.
    struct OpenVolume {
        var plugin: FileDescriptor
        var podAppearedAt: Date
        fileprivate var others: [FileDescriptor]

        func close() {
            Syscall.close(plugin)
            for fd in others { Syscall.close(fd) }
        }
    }

    /// `<root>/pods`, the root itself may be a symlink the operator chose.
    func openPodsDirectory() throws(RemovalError) -> FileDescriptor {
        do {
            let root = try Syscall.openAt(nil, kubeletRoot, flags: OpenFlags.readOnly | OpenFlags.directory)
            defer { Syscall.close(root) }
            return try Syscall.openDirectory(root, "pods")
        } catch {
            throw RemovalError.from(error, path: kubeletRoot + "/pods")
        }
    }

    func open() throws(RemovalError) -> OpenVolume {
        let pods = try openPodsDirectory()
        var opened: [FileDescriptor] = [pods]
        do {
            let podStatus = try Syscall.statx(pods, podUID)
            let born = podStatus.born ?? podStatus.changed
            let pod = try Syscall.openDirectory(pods, podUID)
            opened.append(pod)
            let volumes = try Syscall.openDirectory(pod, "volumes")
            opened.append(volumes)
            let plugin = try Syscall.openDirectory(volumes, pluginDirectoryName)
            return OpenVolume(plugin: plugin, podAppearedAt: Date(timeIntervalSince1970: born.secondsSince1970), others: opened)
        } catch {
            for fd in opened { Syscall.close(fd) }
            throw RemovalError.from(error, path: volumePath)
        }
    }
}
