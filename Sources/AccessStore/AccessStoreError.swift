/// The one error type of the access store: what failed and on which file.
public struct AccessStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is; a struct so new codes do not break callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Kind: Sendable, Hashable {
            case cannotCreateDirectory, cannotOpen, cannotMoveAside, readOnly, unknownSession, query
        }

        private let kind: Kind

        /// The state directory is missing and could not be created.
        public static let cannotCreateDirectory = Code(kind: .cannotCreateDirectory)
        /// The database could not be opened for a reason that is no corruption
        /// (permissions, a full disk, a lock held too long, an I/O error): it is
        /// left where it is.
        public static let cannotOpen = Code(kind: .cannotOpen)
        /// The database is corrupt and could not be moved aside.
        public static let cannotMoveAside = Code(kind: .cannotMoveAside)
        /// A write on a store opened with `openReadOnly`.
        public static let readOnly = Code(kind: .readOnly)
        /// `heartbeat` or `endSession` named a session the store does not hold.
        public static let unknownSession = Code(kind: .unknownSession)
        /// A read or write of an open store failed.
        public static let query = Code(kind: .query)

        public var description: String {
            switch kind {
            case .cannotCreateDirectory: "cannot create directory"
            case .cannotOpen: "cannot open"
            case .cannotMoveAside: "cannot move corrupt database aside"
            case .readOnly: "store is read-only"
            case .unknownSession: "unknown session"
            case .query: "query failed"
            }
        }
    }

    public var code: Code
    /// The database file (or the directory, for `.cannotCreateDirectory`).
    public var path: String
    /// What was tried and what SQLite or the system said.
    public var detail: String

    public init(_ code: Code, path: String, detail: String) {
        self.code = code
        self.path = path
        self.detail = detail
    }

    /// One line: `<path>: <code>: <detail>`.
    public var description: String { "\(path): \(code): \(detail)" }
}
