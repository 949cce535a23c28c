import Foundation
import SystemCalls
import SystemPackage

/// Drop-ins (issue 19): `<directory of --config>/config.d/*.yaml`, read in
/// lexical (byte) order after the config file, each merged over what came
/// before: a later file wins per key, and the sections (`podSource`,
/// `metrics`) merge per key inside, so a drop-in that sets
/// `podSource.nodeName` keeps the file's `podSource.kind`. Switching to reap
/// mode is one file (`dryRun: false`) that no package upgrade touches, so
/// upgrades never prompt about an edited conffile.
extension AgentConfiguration {
    /// The drop-in directory beside a config file.
    public static func dropInDirectory(forConfig path: String) -> String {
        let parent = (path as NSString).deletingLastPathComponent
        switch parent {
        case "": return "./config.d"
        case "/": return "/config.d"
        default: return parent + "/config.d"
        }
    }

    /// More drop-ins than this is a mistake (a directory of the wrong files).
    static let maximumDropIns = 256

    /// The `*.yaml` files of `directory`, sorted by their bytes (`C` locale
    /// order: `10-a.yaml` before `20-b.yaml` before `a.yaml`); hidden files
    /// are skipped, as editors and Kubernetes' ConfigMap volumes (`..data`)
    /// leave them. No directory: none.
    static func dropInFiles(in directory: String) throws(ConfigurationError) -> [String] {
        let fd: FileDescriptor
        do {
            // A symlinked directory is followed (config management links them).
            fd = try Syscall.openAt(nil, directory, flags: OpenFlags.readOnly | OpenFlags.directory | OpenFlags.nonBlocking)
        } catch where error.errno == .noSuchFileOrDirectory {
            return []
        } catch {
            throw ConfigurationError(file: directory, field: nil, message: "cannot read the drop-in directory: \(error.errno)")
        }
        defer { Syscall.close(fd) }
        let entries: [DirectoryEntry]
        do {
            entries = try Syscall.readDirectory(fd, path: directory)
        } catch {
            throw ConfigurationError(file: directory, field: nil, message: "cannot list the drop-in directory: \(error.errno)")
        }
        let names = entries.map(\.name).filter { name in
            guard let text = name.string else { return false }
            return text.hasSuffix(".yaml") && !text.hasPrefix(".")
        }.sorted()
        guard names.count <= maximumDropIns else {
            throw ConfigurationError(file: directory, field: nil, message: "\(names.count) drop-ins; at most \(maximumDropIns) are read")
        }
        return names.compactMap(\.string).map { directory + "/" + $0 }
    }

    /// The text of one config file or drop-in: a regular file (a symlink to
    /// one is followed) of at most `maximumFileSize`, opened non-blocking.
    static func readSettingsFile(_ path: String) throws(ConfigurationError) -> String {
        let bytes: [UInt8]
        do {
            bytes = try RegularFileReader.read(path, limit: maximumFileSize, followSymlinks: true)
        } catch {
            throw ConfigurationError(file: path, field: nil, message: "cannot read: \(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigurationError(file: path, field: nil, message: "cannot read: not UTF-8 text")
        }
        return text
    }
}
