import Foundation
import ReaperCore
import SystemCalls

/// Reads policy files (design §4, §6): YAML into the domain's `Policy`,
/// refusing anything unknown, mistyped or unsafe with one line that names the
/// file, the field and the value.
public enum PolicyLoader {
    /// Where `--policy` points when not given.
    public static let systemPath = "/etc/volume-reaper/policy.yaml"

    /// The source name given to the built-in default.
    public static let builtInSource = "built-in default"

    /// A policy file is small; anything larger is not one.
    static let maximumFileSize = 1 << 20

    /// Reads and validates the policy file at `path`.
    public static func load(path: String) throws(PolicyError) -> Policy {
        try parse(try readText(path: path), file: path)
    }

    /// Validates the YAML text of a policy; `file` names it in messages.
    public static func parse(_ yaml: String, file: String) throws(PolicyError) -> Policy {
        try PolicyReader(file: file).read(yaml)
    }

    /// The policy to use: `explicitPath` when given (a missing file is an
    /// error, never a silent fallback), else `systemPath` when anything is
    /// there (a dangling symlink or unreadable file is an error too), else the
    /// built-in default. `source` is the path read, or "built-in default".
    public static func resolveDefault(
        explicitPath: String?, systemPath: String = PolicyLoader.systemPath
    ) throws(PolicyError) -> (Policy, source: String) {
        if let explicitPath {
            return (try load(path: explicitPath), source: explicitPath)
        }
        do {
            _ = try Syscall.statx(nil, systemPath)
        } catch where error.isVanished || error.errno == .notDirectory {
            return (Policy.defaults, source: builtInSource)
        } catch {
            throw PolicyError(.cannotRead, file: systemPath, field: nil, value: nil, problem: "cannot read: \(error.errno)")
        }
        return (try load(path: systemPath), source: systemPath)
    }

    /// The whole file as UTF-8 text. Opened non-blocking and checked to be a
    /// regular file (a FIFO or a device named as the policy is refused, not
    /// waited on or read forever); a symlink is followed, since config
    /// management often links the policy into place.
    static func readText(path: String) throws(PolicyError) -> String {
        func failure(_ problem: String) -> PolicyError {
            PolicyError(.cannotRead, file: path, field: nil, value: nil, problem: problem)
        }
        let bytes: [UInt8]
        do {
            bytes = try RegularFileReader.read(path, limit: maximumFileSize, followSymlinks: true)
        } catch {
            if case .tooLarge = error { throw failure("\(error): not a policy file") }
            throw failure("cannot read: \(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw failure("not UTF-8 text: not a policy file")
        }
        return text
    }
}
