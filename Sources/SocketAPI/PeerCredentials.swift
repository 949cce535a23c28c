import NIOCore
import SystemCalls

/// Who is at the other end of an accepted Unix socket, as the kernel says
/// (`SO_PEERCRED`: the credentials at `connect()` time).
struct PeerCredentials: Sendable, Hashable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32

    /// Reads `SO_PEERCRED` on `channel`'s socket. NIO's generic
    /// `SocketOptionProvider.unsafeGetSocketOption` calls getsockopt with the
    /// size of the value type; Glibc hides `struct ucred` (it needs
    /// `_GNU_SOURCE`), so the value is read as a tuple of its three fields,
    /// which has the same layout: `{ pid_t pid; uid_t uid; gid_t gid; }`.
    static func of(_ channel: any Channel) -> EventLoopFuture<PeerCredentials?> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        let raw: EventLoopFuture<(Int32, UInt32, UInt32)> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(PeerCredentialOption.level), name: SocketOptionName(PeerCredentialOption.name)
        )
        return raw.map { PeerCredentials(pid: $0.0, uid: $0.1, gid: $0.2) as PeerCredentials? }
            .recover { _ in nil }
    }
}
