#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Reads an open file to its end, at most `limit` bytes. The buffer grows by
/// doubling with `realloc` (large blocks move by remapping pages, not by
/// copying) and never from `st_size`: a sparse file may claim a terabyte,
/// and a size near 2^63 overflows arithmetic. Memory is bounded by the limit
/// whatever the file says or holds; reading stops one byte past it.
enum BoundedRead {
    enum Failure: Error {
        case tooLarge
        case readError(Int32)
    }

    static func readAll(fd: Int32, limit: Int) -> Result<Data, Failure> {
        let limit = min(max(limit, 0), Int.max / 4)
        var capacity = min(1 << 16, limit + 1)
        guard var buffer = malloc(capacity) else { return .failure(.readError(ENOMEM)) }
        var count = 0
        while true {
            if count == capacity {
                guard count <= limit else {
                    free(buffer)
                    return .failure(.tooLarge)
                }
                capacity = min(capacity * 2, limit + 1)
                guard let grown = realloc(buffer, capacity) else {
                    free(buffer)
                    return .failure(.readError(ENOMEM))
                }
                buffer = grown
            }
            let result = systemRead(fd, buffer + count, capacity - count)
            if result < 0 {
                let code = errno
                if code == EINTR { continue }
                free(buffer)
                return .failure(.readError(code))
            }
            if result == 0 { break }
            count += result
        }
        if count > limit {
            free(buffer)
            return .failure(.tooLarge)
        }
        return .success(Data(bytesNoCopy: buffer, count: count, deallocator: .free))
    }

    private static func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(fd, buffer, count)
        #else
        Darwin.read(fd, buffer, count)
        #endif
    }
}
