/// Why the socket API could not start, naming the path, group or descriptor at fault.
public struct APIServerError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// `socketGroup` names no group.
        case unknownGroup = "unknown-group"
        /// Another process accepts connections on the socket path.
        case socketInUse = "socket-in-use"
        /// Something that is not a socket sits at the socket path; it is left alone.
        case notASocket = "not-a-socket"
        /// The path is unusable: too long, its parent not a directory, a call failed.
        case socketPath = "socket-path"
        /// The inherited descriptor is no stream socket.
        case inheritedDescriptor = "inherited-descriptor"
        /// Binding or listening failed.
        case bind = "bind"
        /// A limit in the configuration is out of range.
        case configuration = "configuration"
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
