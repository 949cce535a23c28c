import CFuzzerDriver
import FuzzTargets

// libFuzzer calls this for every input; a broken contract traps so that
// libFuzzer saves the input (built with -sanitize=fuzzer: see the Makefile).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do throws(FuzzFinding) {
        try FuzzTargets.url(bytes)
    } catch {
        fatalError("\(error)")
    }
    return 0
}

// SwiftPM links an executable with main aliased to <module>_main, which
// replaces libFuzzer's own main; this one starts libFuzzer's driver.
@_cdecl("fuzz_url_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data, size) }
}
