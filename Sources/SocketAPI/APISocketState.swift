
/// What sits at the API socket's path, for `volume-reaper check`.
public enum APISocketState: Sendable, Hashable {
    /// Nothing: the daemon can bind it.
    case absent
    /// A socket nobody accepts on (left by a crash): the daemon replaces it.
    case stale
    /// Someone accepts on it: a running agent.
    case listening
    /// The path is taken (not a socket, or unreadable), one line.
    case blocked(String)

    /// The state of `path`, probed as the server does before it binds.
    public static func of(_ path: String) -> APISocketState {
        do {
            switch try SocketFile.inspect(path) {
            case .absent: return .absent
            case .stale: return .stale
            }
        } catch {
            return error.code == .socketInUse ? .listening : .blocked(error.message)
        }
    }
}
