import FuzzTargets

// libFuzzer calls this for every input; a broken contract traps so that
// libFuzzer saves the input (built with -sanitize=fuzzer: see Fuzz/Package.swift).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do throws(FuzzFinding) {
        try FuzzTargets.config(Array(UnsafeBufferPointer(start: data, count: size)))
    } catch {
        fatalError("\(error)")
    }
    return 0
}
