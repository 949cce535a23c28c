import Foundation
import SystemCalls
import SystemPackage

/// Reads an open file to its end, at most `limit` bytes, into memory that
/// holds only what was read. The buffer is an anonymous mapping of
/// `limit + 1` bytes reserved up front (address space, not memory: pages
/// become resident only as bytes land in them), so it never grows, copies or
/// trusts `st_size`: a sparse file may claim a terabyte, and a size near 2^63
/// overflows arithmetic. Reading stops one byte past the limit.
enum BoundedRead {
    enum ReadError: Error {
        case tooLarge
        case system(SystemCallError)
    }

    /// The largest limit honoured (1 TiB of address space).
    static let maximumLimit = 1 << 40

    static func readAll(fd: FileDescriptor, limit: Int) -> Result<Data, ReadError> {
        let limit = min(max(limit, 0), maximumLimit)
        let reserved = limit + 1
        let base: UnsafeMutableRawPointer
        do {
            base = try Syscall.mapAnonymous(bytes: reserved)
        } catch {
            return .failure(.system(error))
        }
        var count = 0
        while count < reserved {
            let result: Int
            do {
                result = try Syscall.read(fd, into: UnsafeMutableRawBufferPointer(start: base + count, count: reserved - count))
            } catch {
                Syscall.unmap(base, bytes: reserved)
                return .failure(.system(error))
            }
            if result == 0 { break }
            count += result
        }
        guard count <= limit else {
            Syscall.unmap(base, bytes: reserved)
            return .failure(.tooLarge)
        }
        return .success(Data(bytesNoCopy: base, count: count, deallocator: .custom { pointer, _ in Syscall.unmap(pointer, bytes: reserved) }))
    }
}
