#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

extension Syscall {
    /// `ftruncate(2)`: cuts (or extends) the open file to `length` bytes.
    public static func truncate(_ fd: FileDescriptor, to length: Int, path: String? = nil) throws(SystemCallError) {
        _ = try retryingEINTR("ftruncate", path: path) { Glibc.ftruncate(fd.rawValue, off_t(length)) }
    }

    /// `pwrite(2)` of every byte of `bytes` at `offset`, leaving the file offset alone.
    public static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8], at offset: Int, path: String? = nil) throws(SystemCallError) {
        var written = 0
        while written < bytes.count {
            let start = written
            written += try retryingEINTR("pwrite", path: path) {
                bytes.withUnsafeBytes { Glibc.pwrite(fd.rawValue, $0.baseAddress! + start, $0.count - start, off_t(offset + start)) }
            }
        }
    }
}

// MARK: Memory

extension Syscall {
    /// An anonymous private mapping of `bytes` (`mmap(2)` with
    /// `MAP_NORESERVE`): address space reserved, memory used only as pages
    /// are written. Release it with `unmap`.
    public static func mapAnonymous(bytes: Int) throws(SystemCallError) -> UnsafeMutableRawPointer {
        guard let base = Glibc.mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              base != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw SystemCallError(call: "mmap", errno: Errno(rawValue: Glibc.errno))
        }
        return base
    }

    /// `munmap(2)` of a mapping `mapAnonymous` made.
    public static func unmap(_ base: UnsafeMutableRawPointer, bytes: Int) {
        _ = Glibc.munmap(base, bytes)
    }
}
