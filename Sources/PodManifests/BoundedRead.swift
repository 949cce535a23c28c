import Foundation

/// Reads an open file to its end, at most `limit` bytes, into memory that
/// holds only what was read. The buffer is an anonymous mapping of
/// `limit + 1` bytes reserved up front (address space, not memory: pages
/// become resident only as bytes land in them), so it never grows, copies or
/// trusts `st_size`: a sparse file may claim a terabyte, and a size near 2^63
/// overflows arithmetic. Reading stops one byte past the limit.
enum BoundedRead {
    enum ReadError: Error {
        case tooLarge
        case readError(Int32)
    }

    /// The largest limit honoured (1 TiB of address space).
    static let maximumLimit = 1 << 40

    static func readAll(fd: Int32, limit: Int) -> Result<Data, ReadError> {
        let limit = min(max(limit, 0), maximumLimit)
        let reserved = limit + 1
        #if canImport(Glibc)
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        #else
        let flags = MAP_PRIVATE | MAP_ANON
        #endif
        guard let base = mmap(nil, reserved, PROT_READ | PROT_WRITE, flags, -1, 0),
              base != UnsafeMutableRawPointer(bitPattern: -1) else {
            return .failure(.readError(errno))
        }
        var count = 0
        while count < reserved {
            let result = systemRead(fd, base + count, reserved - count)
            if result < 0 {
                let code = errno
                if code == EINTR { continue }
                munmap(base, reserved)
                return .failure(.readError(code))
            }
            if result == 0 { break }
            count += result
        }
        guard count <= limit else {
            munmap(base, reserved)
            return .failure(.tooLarge)
        }
        return .success(Data(bytesNoCopy: base, count: count, deallocator: .custom { pointer, _ in munmap(pointer, reserved) }))
    }

    private static func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(fd, buffer, count)
        #else
        Darwin.read(fd, buffer, count)
        #endif
    }
}
