import Foundation
import ReaperCore
import SystemCalls
import SystemPackage

/// Reads the node's pod manifests (`--manifests`) into a `PodSnapshot`.
///
/// Fails closed: a file with any problem contributes no pods and an error, so
/// the snapshot is incomplete and cannot vouch for orphans; the other files
/// still count. The snapshot is as fresh as its stalest file.
public enum ManifestReader {
    /// The extensions of manifest files in a directory (compared case-insensitively).
    public static let extensions: Set<String> = ["json", "yaml", "yml"]

    /// How long a manifest file must have been left alone (its ctime, which
    /// no `touch` can fake) before it is trusted: an in-place writer that is
    /// still writing has changed it more recently. A file that is younger is
    /// waited for once, then it is an error.
    public static let defaultSettleTime: TimeInterval = 2

    /// The default size limit of one manifest file (64 MiB; config `maxManifestBytes`).
    public static let defaultMaxFileBytes = 64 << 20

    /// Reads `path`: one manifest file (whatever its name), or a directory
    /// whose regular files named `*.json`, `*.yaml` or `*.yml` are read, in
    /// name order, not recursively. Hidden files (leading `.`, as temporary
    /// files of atomic writers are) and other names are ignored; symlinks are
    /// followed, and a dangling one is an error. Anything else with a manifest
    /// name (a directory, a FIFO, a socket, a device such as a symlink to
    /// `/dev/zero`) is an error too: its pods are unknown. A file larger than
    /// `maxFileBytes` is an error, read no further than that. A missing path
    /// gives no files and an error naming it.
    ///
    /// A file is only trusted when stable: changed no later than `settle`
    /// ago, and the same size, mtime and ctime before and after the read
    /// (on the same descriptor). A YAML file that does not end with a newline,
    /// or ends with a `---` and no document, was cut short. Each of these is
    /// an error of the snapshot, never a silent skip: orphans are kept.
    ///
    /// `files` lists every file read, parsed or not; `refreshedAt` is the
    /// OLDEST of their mtimes (nil with no files); `fingerprint` names this
    /// write of the files (see `fingerprint(path:)`). `willWait` is told
    /// the seconds `read` is about to wait for a file to settle.
    public static func read(
        path: String, settle: TimeInterval = defaultSettleTime, maxFileBytes: Int = defaultMaxFileBytes, clock: () -> Date = Date.init,
        willWait: (TimeInterval) -> Void = { _ in }
    ) -> PodSnapshot {
        let first = readOnce(path: path, settle: settle, maxFileBytes: maxFileBytes, clock: clock)
        guard let wait = first.settleWait else { return first.snapshot }
        // A file changed moments ago: wait until it has been left alone for
        // `settle`, once; if it changed again meanwhile, it is an error.
        let seconds = min(max(wait, 0.01), settle)
        willWait(seconds)
        Thread.sleep(forTimeInterval: seconds)
        return readOnce(path: path, settle: settle, maxFileBytes: maxFileBytes, clock: clock, lastAttempt: true).snapshot
    }

    /// A digest of what `read` would read, by `stat` alone: every manifest
    /// file's name, device, inode, size, mtime and ctime. Equal to the
    /// `fingerprint` of a snapshot read from the same files, so a caller can
    /// tell cheaply whether its snapshot is still current. Nil when something
    /// cannot be stat'ed (then read again).
    public static func fingerprint(path: String) -> String? {
        guard let status = try? Syscall.statxFollowing(path) else { return nil }
        if status.isRegular { return digest([FileVersion(file: path, FileIdentity(status))]) }
        guard status.isDirectory, case .success(let names) = listDirectory(path) else { return nil }
        var versions: [FileVersion] = []
        for name in names.sorted() where isManifestName(name) {
            let file = join(path, name)
            guard let fileStatus = try? Syscall.statxFollowing(file) else { return nil }
            if fileStatus.isRegular { versions.append(FileVersion(file: file, FileIdentity(fileStatus))) }
        }
        return digest(versions)
    }

    private struct Attempt {
        var snapshot: PodSnapshot
        /// Seconds to wait for the youngest file to settle; nil when none is too young.
        var settleWait: TimeInterval?
    }

    private static func readOnce(
        path: String, settle: TimeInterval, maxFileBytes: Int, clock: () -> Date, lastAttempt: Bool = false
    ) -> Attempt {
        var files: [String] = []
        var mtimes: [Date] = []
        var errors: [ManifestError] = []
        var pods: [Pod] = []
        var identities: [FileVersion] = []
        var settleWait: TimeInterval?

        func take(_ file: String) {
            files.append(file)
            let outcome = readFile(file, settle: settle, maxBytes: maxFileBytes, clock: clock)
            if let mtime = outcome.mtime { mtimes.append(mtime) }
            if let identity = outcome.identity { identities.append(identity) }
            if let wait = outcome.settleWait, !lastAttempt { settleWait = max(settleWait ?? 0, wait) }
            switch outcome.contents {
            case .failure(let error):
                errors.append(error)
            case .success(let filePods):
                pods.append(contentsOf: filePods)
            }
        }

        switch fileType(path) {
        case .failure(let error):
            errors.append(ManifestError(file: path, message: error.message))
        case .success(.directory):
            switch listDirectory(path) {
            case .failure(let error):
                errors.append(ManifestError(file: path, message: error.message))
            case .success(let names):
                for name in names.sorted() where isManifestName(name) {
                    let file = join(path, name)
                    switch fileType(file) {
                    case .success(.regular):
                        take(file)
                    case .success(let type):
                        // Never opened (a FIFO would block, /dev/zero never
                        // ends), but its pods are unknown: the snapshot is incomplete.
                        files.append(file)
                        errors.append(ManifestError(file: file, message: "is \(type.description), not a regular file"))
                    case .failure(let error):
                        // Dangling symlink, or gone between listing and reading:
                        // its pods are unknown, so the snapshot is incomplete.
                        files.append(file)
                        let message = error.message == "does not exist" ? "disappeared while the directory was read" : error.message
                        errors.append(ManifestError(file: file, message: message))
                    }
                }
            }
        case .success(.regular):
            take(path)
        case .success(let type):
            errors.append(ManifestError(file: path, message: "is \(type.description), not a regular file or a directory"))
        }

        let fingerprint = errors.isEmpty ? digest(identities) : nil
        let snapshot = PodSnapshot(
            path: path, files: files, refreshedAt: mtimes.min(), errors: errors, pods: pods, fingerprint: fingerprint
        )
        return Attempt(snapshot: snapshot, settleWait: settleWait)
    }

    /// Whether a directory entry is read as a manifest.
    static func isManifestName(_ name: String) -> Bool {
        guard !name.hasPrefix("."), let dot = name.lastIndex(of: ".") else { return false }
        return extensions.contains(name[name.index(after: dot)...].lowercased())
    }

    // MARK: - File system

    enum FileType: CustomStringConvertible {
        case regular, directory, fifo, socket, characterDevice, blockDevice, other

        init(_ status: FileStatus) {
            self = status.isRegular ? .regular : status.isDirectory ? .directory : status.isFIFO ? .fifo
                : status.isSocket ? .socket : status.isCharacterDevice ? .characterDevice
                : status.isBlockDevice ? .blockDevice : .other
        }

        var description: String {
            switch self {
            case .regular: return "a regular file"
            case .directory: return "a directory"
            case .fifo: return "a FIFO"
            case .socket: return "a socket"
            case .characterDevice: return "a character device"
            case .blockDevice: return "a block device"
            case .other: return "a special file"
            }
        }
    }

    private static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// The type of what `path` names, following symlinks.
    private static func fileType(_ path: String) -> Result<FileType, ParseError> {
        do {
            return .success(FileType(try Syscall.statxFollowing(path)))
        } catch {
            if error.isVanished, (try? Syscall.statx(nil, path)) != nil {
                return .failure(ParseError("is a dangling symlink"))
            }
            return .failure(ParseError(error.isVanished ? "does not exist" : "\(error.errno)"))
        }
    }

    private static func listDirectory(_ path: String) -> Result<[String], ParseError> {
        do {
            // A symlink to the directory is followed, as for a file.
            let directory = try Syscall.openAt(nil, path, flags: OpenFlags.readOnly | OpenFlags.directory)
            defer { Syscall.close(directory) }
            return .success(try Syscall.readDirectory(directory, path: path).map { String(decoding: $0.name.bytes, as: UTF8.self) })
        } catch {
            return .failure(ParseError("cannot list: \(error.errno)"))
        }
    }

    /// One write of one file: what the fingerprint digests.
    struct FileVersion {
        var file: String
        var identity: FileIdentity

        init(file: String, _ identity: FileIdentity) {
            self.file = file
            self.identity = identity
        }

        /// The digested line; the device as `st_dev`, so fingerprints stored
        /// before statx replaced stat(2) here still match.
        var line: String {
            let (modified, changed) = (identity.modified, identity.changed)
            return "\(file)\t\(identity.statDeviceNumber):\(identity.inode)\t\(identity.size)\t"
                + "\(modified.seconds).\(modified.nanoseconds)\t\(changed.seconds).\(changed.nanoseconds)\n"
        }
    }

    /// FNV-1a (64 bit) of the identities, as 16 hex digits: short enough to
    /// store per observation; no adversary picks inode numbers and ctimes.
    static func digest(_ identities: [FileVersion]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for identity in identities {
            for byte in identity.line.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01b3
            }
        }
        return String(hash, radix: 16).leftPadded(to: 16)
    }

    private struct FileOutcome {
        var mtime: Date?
        var identity: FileVersion?
        /// Set when the file changed less than `settle` ago.
        var settleWait: TimeInterval?
        var contents: Result<[Pod], ManifestError>
    }

    /// Opens, checks and reads one file; its mtime is taken from the same open
    /// file as its contents, so a file replaced meanwhile cannot mix the two.
    private static func readFile(_ file: String, settle: TimeInterval, maxBytes: Int, clock: () -> Date) -> FileOutcome {
        func failure(_ message: String, mtime: Date? = nil, settleWait: TimeInterval? = nil) -> FileOutcome {
            FileOutcome(mtime: mtime, settleWait: settleWait, contents: .failure(ManifestError(file: file, message: message)))
        }
        // O_NONBLOCK: a FIFO swapped in after the type check must not hang us.
        let fd: FileDescriptor
        do {
            fd = try Syscall.openAt(nil, file, flags: OpenFlags.readOnly | OpenFlags.nonBlocking | OpenFlags.noControllingTerminal)
        } catch {
            let mtime = (try? Syscall.statxFollowing(file)).map { date($0.modified) }
            return failure("cannot open: \(error.errno)", mtime: mtime)
        }
        defer { Syscall.close(fd) }
        let status: FileStatus
        do { status = try Syscall.statx(fd, path: file) } catch { return failure("cannot stat: \(error.errno)") }
        let mtime = date(status.modified)
        let type = FileType(status)
        guard type == .regular else { return failure("is \(type.description), not a regular file", mtime: mtime) }
        let before = FileIdentity(status)
        let age = clock().timeIntervalSince(date(before.changed))
        if age < settle {
            let seconds = String(format: "%.1f", max(age, 0))
            return failure(
                "changed \(seconds) s ago, less than the \(settle) s a manifest must be left alone: still being written?",
                mtime: mtime, settleWait: settle - age
            )
        }

        let bytes: Data
        switch BoundedRead.readAll(fd: fd, limit: maxBytes) {
        case .success(let data):
            bytes = data
        case .failure(.tooLarge):
            return failure("is larger than the limit of \(maxBytes) bytes (maxManifestBytes)", mtime: mtime)
        case .failure(.system(let error)):
            return failure("cannot read: \(error.errno)", mtime: mtime)
        }
        let after: FileStatus
        do { after = try Syscall.statx(fd, path: file) } catch { return failure("cannot stat: \(error.errno)", mtime: mtime) }
        guard FileIdentity(after) == before, UInt64(bytes.count) == before.size else {
            return failure("changed while being read (size, mtime or ctime moved): still being written?", mtime: mtime)
        }
        do {
            let pods = try parse(bytes, file: file)
            // A text cut short may still parse: refuse it all the same.
            if let problem = cutShort(bytes) { return failure(problem, mtime: mtime) }
            return FileOutcome(mtime: mtime, identity: FileVersion(file: file, before), contents: .success(pods))
        } catch {
            return FileOutcome(mtime: mtime, identity: FileVersion(file: file, before), contents: .failure(error))
        }
    }

    /// Signs that YAML text was cut short (a truncated JSON text never
    /// parses): every YAML writer ends its last line, so a text ending
    /// mid-line (inside an unquoted uid, say) stopped early; and a stream
    /// ending with a `---` that starts no document was cut between documents.
    /// Works on the bytes: a JSON document is never copied into a string.
    static func cutShort(_ bytes: Data) -> String? {
        let whitespace: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
        var start = bytes.startIndex
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start += 3 }
        guard let first = bytes[start...].first(where: { !whitespace.contains($0) }),
              first != UInt8(ascii: "{"), first != UInt8(ascii: "[") else { return nil }
        if bytes.last != UInt8(ascii: "\n") {
            return "does not end with a newline: cut short while being written?"
        }
        func trimmed(_ line: Data.SubSequence) -> Data.SubSequence {
            var line = line
            while let byte = line.first, whitespace.contains(byte) { line = line.dropFirst() }
            while let byte = line.last, whitespace.contains(byte) { line = line.dropLast() }
            return line
        }
        let lastLine = bytes.split(separator: UInt8(ascii: "\n")).reversed().lazy.map(trimmed)
            .first { !$0.isEmpty && $0.first != UInt8(ascii: "#") }
        if let lastLine, lastLine.elementsEqual("---".utf8) {
            return "ends with a --- that starts no document: cut short between documents?"
        }
        return nil
    }

}

private func date(_ time: KernelTime) -> Date {
    Date(timeIntervalSince1970: time.secondsSince1970)
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
