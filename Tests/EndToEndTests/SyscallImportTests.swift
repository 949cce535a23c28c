import Foundation
import Testing
import TestSupport

/// Syscalls are wrapped once, in SystemCalls (and the systemd calls in
/// SystemdIntegration): everywhere else reaches libc only through them, so
/// every call retries EINTR and fails with errno, call and path.
///
/// Foundation re-exports Glibc, so dropping `import Glibc` alone changes
/// nothing: the check also looks for libc calls made directly.
@Suite("Sources: libc only through SystemCalls")
struct SyscallImportTests {
    /// Targets that wrap libc (the C shims hold no Swift).
    static let allowed: Set<String> = ["SystemCalls", "SystemdIntegration", "CLinuxShims", "CSystemd"]
    /// Files outside those that may still call libc directly, path to why
    /// (`"Sources/T/F.swift": "reason"`). Empty: nothing is owed.
    static let allowedFiles: [String: String] = [:]
    static let libcModules = ["Glibc", "Musl", "Darwin"]
    static let importKinds: Set<String> = ["struct", "class", "enum", "protocol", "typealias", "func", "var", "let"]

    /// libc calls that have (or would need) a SystemCalls wrapper. An own
    /// method may not share one of these names unqualified: `read(...)` inside
    /// a type reads as read(2), so such methods are named for what they do.
    /// (`access` is left out: closures named `access` are common here.)
    static let libcFunctions = [
        "open", "openat", "opendir", "fdopendir", "readdir", "closedir", "stat", "lstat", "fstat", "fstatat", "statx",
        "statvfs", "fstatvfs", "read", "pread", "write", "pwrite", "close", "lseek", "unlink", "unlinkat", "rmdir",
        "mkdir", "mkdirat", "rename", "renameat", "chmod", "fchmod", "chown", "fchown", "readlink", "readlinkat",
        "realpath", "faccessat", "flock", "fsync", "ftruncate", "fcntl", "ioctl", "dup", "dup2", "mmap", "munmap",
        "socket", "socketpair", "connect", "bind", "listen", "accept", "setsockopt", "getsockopt",
        "pipe", "pipe2", "fork", "execve", "posix_spawn", "waitpid", "kill", "getpid", "getuid", "geteuid",
        "umount2", "mount", "usleep", "nanosleep", "clock_gettime", "sysconf", "strerror", "poll", "epoll_wait",
        "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "getgrnam_r", "getpwnam_r",
    ]

    /// A libc function called directly (not `.read(`, `func read(` or a
    /// `case read(` declaration), `errno` (not an `errno:` label), or
    /// anything qualified by a libc module.
    static let rawCall = try! NSRegularExpression(
        pattern: #"(?<![.\w])(?<!func )(?<!case )\b(?:"# + libcFunctions.joined(separator: "|")
            + #")\s*\(|(?<![.\w])\berrno\b(?!\s*:)|\b(?:Glibc|Musl|Darwin)\."#
    )

    /// Every Swift file of every target outside `allowed`, as `Sources/target/file` and its lines.
    static func sourceFiles(under sources: URL) throws -> [(name: String, lines: [Substring])] {
        var result: [(String, [Substring])] = []
        let targets = try FileManager.default.contentsOfDirectory(atPath: sources.path).sorted()
        for target in targets where !allowed.contains(target) {
            guard let files = FileManager.default.enumerator(atPath: sources.appendingPathComponent(target).path) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: sources.appendingPathComponent(target).appendingPathComponent(file), encoding: .utf8)
                result.append(("Sources/\(target)/\(file)", text.split(separator: "\n", omittingEmptySubsequences: false)))
            }
        }
        return result.sorted { $0.0 < $1.0 }
    }

    /// `Sources/target/file:line: text` of every libc import outside the allowed targets.
    static func offendingImports(under sources: URL) throws -> [String] {
        var found: [String] = []
        for (name, lines) in try sourceFiles(under: sources) {
            for (index, line) in lines.enumerated() {
                let words = line.split(whereSeparator: \.isWhitespace)
                // `import Glibc`, `@_exported import Glibc`, `import struct Glibc.stat`.
                guard let at = words.firstIndex(of: "import") else { continue }
                let path = words[(at + 1)...].first { !Self.importKinds.contains(String($0)) } ?? ""
                let module = path.split(separator: ".").first ?? ""
                if libcModules.contains(String(module)) {
                    found.append("\(name):\(index + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        return found
    }

    /// `Sources/target/file:line: text` of every direct libc call outside the
    /// allowed targets and files.
    static func offendingCalls(under sources: URL) throws -> [String] {
        var found: [String] = []
        for (name, lines) in try sourceFiles(under: sources) where allowedFiles[name] == nil {
            var inMultilineString = false
            for (index, line) in lines.enumerated() {
                let code = codeOnly(line, inMultilineString: &inMultilineString)
                let range = NSRange(code.startIndex..., in: code)
                if rawCall.firstMatch(in: code, range: range) != nil {
                    found.append("\(name):\(index + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        return found
    }

    /// `line` with comments and the text of string literals blanked (the code
    /// inside `\( )` interpolations kept), so `"cannot read (EIO)"` is not a call.
    static func codeOnly(_ line: Substring, inMultilineString: inout Bool) -> String {
        var output = ""
        var rest = line[...]
        // The closing delimiter of the literal we are in, nil in code.
        var closing: String? = inMultilineString ? "\"\"\"" : nil
        // Open parentheses in the current `\( )` interpolation, nil outside one.
        var interpolation: Int?
        while let next = rest.first {
            if let delimiter = closing, interpolation == nil {
                if rest.hasPrefix(delimiter) {
                    rest = rest.dropFirst(delimiter.count)
                    closing = nil
                    output += "\"\""
                } else if rest.hasPrefix("\\(") {
                    rest = rest.dropFirst(2)
                    interpolation = 1
                    output += "("
                } else {
                    rest = rest.dropFirst(next == "\\" ? 2 : 1)
                }
                continue
            }
            if rest.hasPrefix("//") { break }
            if let depth = interpolation {
                interpolation = next == "(" ? depth + 1 : next == ")" ? depth - 1 : depth
                if interpolation == 0 { interpolation = nil }
            } else if let opening = ["#\"\"\"", "\"\"\"", "#\"", "\""].first(where: { rest.hasPrefix($0) }) {
                rest = rest.dropFirst(opening.count)
                closing = opening.hasPrefix("#") ? String(opening.dropFirst()) + "#" : opening
                continue
            }
            output.append(next)
            rest = rest.dropFirst()
        }
        inMultilineString = closing?.hasPrefix("\"\"\"") ?? false
        return output
    }

    @Test("no file outside SystemCalls and SystemdIntegration imports Glibc, Musl or Darwin")
    func noLibcImports() throws {
        let offending = try Self.offendingImports(under: PackagePaths.root.appendingPathComponent("Sources"))
        if !offending.isEmpty {
            Issue.record("libc reached around SystemCalls (add a wrapper there):\n\(offending.joined(separator: "\n"))")
        }
    }

    @Test("no file outside SystemCalls and SystemdIntegration calls libc directly")
    func noRawLibcCalls() throws {
        let offending = try Self.offendingCalls(under: PackagePaths.root.appendingPathComponent("Sources"))
        if !offending.isEmpty {
            Issue.record("libc called around SystemCalls (use or add a wrapper there):\n\(offending.joined(separator: "\n"))")
        }
    }

    @Test("the check sees calls in code and interpolations, not in strings, comments or method calls")
    func checkFindsRawCalls() {
        func flagged(_ line: Substring) -> Bool {
            var multiline = false
            let code = Self.codeOnly(line, inMultilineString: &multiline)
            return Self.rawCall.firstMatch(in: code, range: NSRange(code.startIndex..., in: code)) != nil
        }
        #expect(flagged("let fd = open(path, O_RDONLY)"))
        #expect(flagged("guard stat(path, &info) == 0 else { return nil }"))
        #expect(flagged("let code = errno"))
        #expect(flagged("_ = Glibc.close(fd)"))
        #expect(flagged("_ = Darwin.read(fd, buffer, count)"))
        #expect(flagged("let text = \"pid \\(getpid())\""))
        #expect(!flagged("try Syscall.read(fd, into: buffer)"))
        #expect(!flagged("func read(_ label: String) {"))
        #expect(!flagged("case read(Reading)"))
        #expect(!flagged("let message = \"cannot read (EIO)\""))
        #expect(!flagged("fd.close() // close(fd) once"))
        #expect(!flagged("let error = SystemCallError(call: \"socket\", errno: code)"))
    }
}
