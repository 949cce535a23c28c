#if canImport(Glibc)
import Glibc
#endif

/// The node's boot clock: `CLOCK_BOOTTIME` (monotonic, counts suspend, never
/// stepped by NTP) and the boot it counts from. Intervals that guard a
/// deletion are measured on it and stored with the boot ID, so a wall-clock
/// step cannot shorten them and a reboot starts them again.
public enum BootClock {
    /// Seconds since boot.
    public static func seconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_BOOTTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// `/proc/sys/kernel/random/boot_id`, one UUID per boot; nil when it
    /// cannot be read (then nothing measured on the boot clock is trusted).
    public static func bootID(path: String = "/proc/sys/kernel/random/boot_id") -> String? {
        // procfs reports a size of 0; a UUID and a newline are 37 bytes.
        guard let bytes = try? RegularFileReader.read(path, limit: 64, followSymlinks: false) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }
        return text.isEmpty ? nil : text
    }
}
