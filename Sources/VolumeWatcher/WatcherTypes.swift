import Foundation

/// How the watcher runs.
public struct WatcherOptions: Sendable, Hashable {
    /// Cap on inotify watches this watcher adds; nil means only the kernel's
    /// `fs.inotify.max_user_watches` limits it. Volumes it cannot cover are polled.
    public var maxWatches: Int?
    /// Also count reads (`IN_ACCESS`) as access; `IN_OPEN` already sees a reader arrive.
    public var watchReads: Bool
    /// How often volumes on the poll list (no inotify coverage) are checked for mtime changes.
    public var pollInterval: Duration
    /// The mount table to follow; a change there may hide watches under new mounts.
    public var mountInfoPath: String

    public init(
        maxWatches: Int? = nil, watchReads: Bool = false, pollInterval: Duration = .seconds(10),
        mountInfoPath: String = "/proc/self/mountinfo"
    ) {
        self.maxWatches = maxWatches
        self.watchReads = watchReads
        self.pollInterval = pollInterval
        self.mountInfoPath = mountInfoPath
    }
}

/// What happened since the last drain: last access per volume path, and volumes
/// that are gone (the store may forget them).
public struct WatcherDrain: Sendable, Hashable {
    public var accesses: [String: Date]
    public var removed: Set<String>

    public init(accesses: [String: Date] = [:], removed: Set<String> = []) {
        self.accesses = accesses
        self.removed = removed
    }

    public var isEmpty: Bool { accesses.isEmpty && removed.isEmpty }
}

/// What `VolumeWatcher.drainDirtyVolumes()` returns.
public struct DirtyVolumes: Sendable, Hashable {
    public var volumes: Set<String>
    public var everything: Bool
    public var watched: Set<String>

    public init(volumes: Set<String> = [], everything: Bool = false, watched: Set<String> = []) {
        self.volumes = volumes
        self.everything = everything
        self.watched = watched
    }
}

/// The watcher's counters, for `STATUS=`, the socket API and metrics.
public struct WatcherStatus: Sendable, Codable, Hashable {
    /// inotify watches held now.
    public var watches: Int
    /// Volumes fully covered by inotify.
    public var watchedVolumes: Int
    /// Volumes on the poll list (a watch was refused or over budget).
    public var polledVolumes: Int
    /// inotify records read.
    public var eventsHandled: UInt64
    /// `IN_Q_OVERFLOW` records seen: each marked every volume accessed and rescanned.
    public var overflows: Int
    /// Full rescans (after an overflow or an event for an unknown watch).
    public var rescans: Int
    /// When the last inotify record arrived.
    public var lastEventAt: Date?
    /// The initial crawl is done: every watch it could set is set.
    public var ready: Bool

    public init(
        watches: Int = 0, watchedVolumes: Int = 0, polledVolumes: Int = 0, eventsHandled: UInt64 = 0,
        overflows: Int = 0, rescans: Int = 0, lastEventAt: Date? = nil, ready: Bool = false
    ) {
        self.watches = watches
        self.watchedVolumes = watchedVolumes
        self.polledVolumes = polledVolumes
        self.eventsHandled = eventsHandled
        self.overflows = overflows
        self.rescans = rescans
        self.lastEventAt = lastEventAt
        self.ready = ready
    }
}

/// Why the watcher could not run.
public struct WatcherError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case alreadyStarted = "already-started"
        case inotifyUnavailable = "inotify-unavailable"
        case readFailed = "read-failed"
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// One `struct inotify_event` record.
public struct InotifyEvent: Sendable, Hashable, CustomStringConvertible {
    /// Watch descriptor; -1 for `IN_Q_OVERFLOW`.
    public var wd: Int32
    public var mask: UInt32
    /// Pairs `IN_MOVED_FROM` with `IN_MOVED_TO`.
    public var cookie: UInt32
    /// The entry inside the watched directory; empty for events on the directory itself.
    public var name: String

    public init(wd: Int32, mask: UInt32, cookie: UInt32 = 0, name: String = "") {
        self.wd = wd
        self.mask = mask
        self.cookie = cookie
        self.name = name
    }

    public var description: String {
        "wd=\(wd) mask=0x\(String(mask, radix: 16)) cookie=\(cookie) name=\(name)"
    }

    /// The fixed part of a record: wd, mask, cookie, len.
    public static let headerSize = 16

    /// Encodes the record as the kernel lays it out (name NUL-padded to 4 bytes),
    /// so tests can drive the real parsing path.
    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        let nameBytes = Array(name.utf8)
        let padded = nameBytes.isEmpty ? 0 : (nameBytes.count + 1 + 3) / 4 * 4
        for value in [UInt32(bitPattern: wd), mask, cookie, UInt32(padded)] {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        bytes.append(contentsOf: nameBytes)
        bytes.append(contentsOf: [UInt8](repeating: 0, count: padded - nameBytes.count))
        return bytes
    }
}

/// inotify mask bits as `UInt32`, whatever type Glibc imports the macros as.
enum InotifyMask {
    static let access = UInt32(IN_ACCESS)
    static let modify = UInt32(IN_MODIFY)
    static let attrib = UInt32(IN_ATTRIB)
    static let closeWrite = UInt32(IN_CLOSE_WRITE)
    static let open = UInt32(IN_OPEN)
    static let movedFrom = UInt32(IN_MOVED_FROM)
    static let movedTo = UInt32(IN_MOVED_TO)
    static let create = UInt32(IN_CREATE)
    static let delete = UInt32(IN_DELETE)
    static let deleteSelf = UInt32(IN_DELETE_SELF)
    static let moveSelf = UInt32(IN_MOVE_SELF)
    static let unmount = UInt32(IN_UNMOUNT)
    static let queueOverflow = UInt32(IN_Q_OVERFLOW)
    static let ignored = UInt32(IN_IGNORED)
    static let onlyDirectory = UInt32(IN_ONLYDIR)
    static let dontFollow = UInt32(IN_DONT_FOLLOW)
    static let isDirectory = UInt32(IN_ISDIR)

    /// Inside a volume: every event that shows use.
    static func volume(watchReads: Bool) -> UInt32 {
        open | create | modify | closeWrite | movedFrom | movedTo | delete | attrib | deleteSelf
            | (watchReads ? access : 0)
    }

    /// Above volume level: only what changes the set of pods and volumes.
    static let container = create | delete | movedFrom | movedTo | deleteSelf

    /// The manifests directory.
    static let manifests = closeWrite | movedTo | movedFrom | create | delete | deleteSelf | moveSelf

    /// A directory being opened or listed: discovery, the reaper's lock checks,
    /// `ls`, and the watcher's own walks do this to every directory. It is not a
    /// use of the data, and counting it would keep every volume alive forever.
    static func isDirectoryBrowse(_ mask: UInt32) -> Bool {
        mask & isDirectory != 0 && mask & (open | access) != 0 && mask & ~(open | access | isDirectory) == 0
    }

    /// Inside a volume, a record that only says the volume was used: no
    /// directory appeared or moved away, no watch ended. Touching the volume
    /// is all its handling.
    static func isPlainUse(_ mask: UInt32) -> Bool {
        if mask & (queueOverflow | ignored | unmount | deleteSelf | moveSelf) != 0 { return false }
        return mask & isDirectory == 0 || mask & (create | movedTo | movedFrom) == 0
    }
}

/// One record as `read(2)` left it; its name still points into the buffer.
struct RawInotifyRecord {
    var wd: Int32
    var mask: UInt32
    var cookie: UInt32
    /// The name's bytes up to its NUL.
    var name: UnsafeRawBufferPointer

    var event: InotifyEvent {
        InotifyEvent(wd: wd, mask: mask, cookie: cookie, name: String(decoding: name, as: UTF8.self))
    }
}

extension VolumeWatcher {
    /// Parses a buffer filled by `read(2)` on an inotify descriptor: variable-length
    /// `struct inotify_event` records. A truncated trailing record is dropped.
    public static func parseEvents(_ buffer: UnsafeRawBufferPointer) -> [InotifyEvent] {
        var events: [InotifyEvent] = []
        forEachRecord(in: buffer) { events.append($0.event) }
        return events
    }

    /// Calls `body` with each whole record of `buffer`, decoding nothing.
    static func forEachRecord(in buffer: UnsafeRawBufferPointer, _ body: (RawInotifyRecord) -> Void) {
        var offset = 0
        while offset + InotifyEvent.headerSize <= buffer.count {
            let wd = Int32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: Int32.self))
            let mask = UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
            let cookie = UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self))
            let length = Int(UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)))
            let nameStart = offset + InotifyEvent.headerSize
            let end = nameStart + length
            guard end <= buffer.count else { return }
            offset = end
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[nameStart..<end])
            let name = UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.firstIndex(of: 0) ?? bytes.count)])
            body(RawInotifyRecord(wd: wd, mask: mask, cookie: cookie, name: name))
        }
    }
}
