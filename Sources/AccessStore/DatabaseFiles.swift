import Foundation
import SystemCalls

/// The files of the database on disk: the state directory, and moving a
/// corrupt database (with its WAL and shared-memory files) aside.
enum DatabaseFiles {
    /// SQLite's companions of a WAL database, moved together with it.
    static let companions = ["-wal", "-shm"]

    static func databasePath(in directory: String) -> String {
        (directory.hasSuffix("/") ? String(directory.dropLast()) : directory) + "/" + Schema.fileName
    }

    /// Creates `directory` (mode 0700, parents as needed) when it is missing.
    /// An existing directory keeps its mode: the operator chose it.
    static func createDirectory(_ directory: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw AccessStoreError(.cannotCreateDirectory, path: directory, detail: "exists and is not a directory")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]
            )
            // mkdir honours the umask; the mode must not depend on it.
            do {
                try Syscall.changeMode(directory, to: 0o700)
            } catch {
                throw AccessStoreError(.cannotCreateDirectory, path: directory, detail: "chmod 0700: \(error.errno)")
            }
        } catch let error as AccessStoreError {
            throw error
        } catch {
            throw AccessStoreError(.cannotCreateDirectory, path: directory, detail: "\(error)")
        }
    }

    /// Renames `path` to `<path>.corrupt-<UTC time>` (a unique name) and its
    /// `-wal`/`-shm` files alongside, so the set can still be opened for a
    /// post-mortem. A stale WAL must never meet the new database: if one
    /// cannot be moved it is removed, and if that fails too this throws.
    static func moveAside(_ path: String, at date: Date) throws -> String {
        let base = path + ".corrupt-" + timestamp(date)
        var target = base
        var attempt = 1
        while ([""] + companions).contains(where: { FileManager.default.fileExists(atPath: target + $0) }) {
            attempt += 1
            target = "\(base).\(attempt)"
        }
        do {
            try Syscall.rename(path, to: target)
        } catch where !error.isVanished {
            throw AccessStoreError(.cannotMoveAside, path: path, detail: "rename to \(target): \(error.errno)")
        } catch {}
        for suffix in companions {
            do {
                try Syscall.rename(path + suffix, to: target + suffix)
            } catch where !error.isVanished {
                do {
                    try Syscall.unlink(path + suffix)
                } catch let removal where !removal.isVanished {
                    throw AccessStoreError(
                        .cannotMoveAside, path: path + suffix,
                        detail: "rename to \(target + suffix): \(error.errno), and cannot remove it either"
                    )
                } catch {}
            } catch {}
        }
        return target
    }

    /// `20250102T030405Z`: sortable, no separators a shell would mind.
    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }
}
