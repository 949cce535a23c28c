import ReaperCore

/// Checks for the names a policy holds. Each returns nil when the name is
/// fine, else the problem (and an optional better spelling) for the message.
/// A misspelt name would never match anything and silently widen or narrow
/// what is reaped (design §5.9), so they are refused instead.
enum NameRules {
    // MARK: Kubernetes names

    /// `[prefix/]name`: prefix a DNS-1123 subdomain, name at most 63 of
    /// `[A-Za-z0-9._-]`, starting and ending alphanumeric.
    static func annotationKeyProblem(_ key: String) -> String? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return "an annotation key holds at most one \"/\" ([prefix/]name)" }
        let name = String(parts.last ?? "")
        if parts.count == 2 {
            let prefix = String(parts[0])
            guard isDNSSubdomain(prefix) else {
                return "the prefix of an annotation key must be a lowercase DNS subdomain such as example.com"
            }
        }
        guard !name.isEmpty, name.utf8.count <= 63,
              name.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }),
              let first = name.utf8.first, let last = name.utf8.last, isAlphanumeric(first), isAlphanumeric(last)
        else {
            return "not an annotation key: the name part must be 1-63 letters, digits, '-', '_' or '.', starting and ending alphanumeric"
        }
        return nil
    }

    /// A namespace name: a DNS-1123 label.
    static func namespaceProblem(_ name: String) -> String? {
        isDNSLabel(name) ? nil : "not a namespace name (lowercase letters, digits and '-', at most 63, e.g. kube-system)"
    }

    /// Owner kinds the kubelet's pods carry; a case slip in one of them would never match.
    static let wellKnownKinds = [
        "DaemonSet", "Node", "Job", "CronJob", "ReplicaSet", "ReplicationController", "StatefulSet", "Deployment", "Pod",
    ]

    /// A kind name (`DaemonSet`): letters and digits, starting with a letter, well-known kinds spelt exactly.
    static func kindProblem(_ kind: String) -> (problem: String, suggestion: String?)? {
        guard let first = kind.utf8.first, isLetter(first), kind.utf8.allSatisfy(isAlphanumeric) else {
            return ("not a kind name (letters and digits, e.g. DaemonSet)", nil)
        }
        if let known = wellKnownKinds.first(where: { $0.lowercased() == kind.lowercased() }), known != kind {
            return ("kinds are case-sensitive; did you mean \"\(known)\"?", known)
        }
        return nil
    }

    // MARK: Plugins

    /// A plugin name in either form: `kubernetes.io/empty-dir` or `kubernetes.io~empty-dir`.
    static func pluginProblem(_ text: String) -> String? {
        let allowed = text.utf8.allSatisfy {
            isAlphanumeric($0) || [UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "/"), UInt8(ascii: "~")].contains($0)
        }
        guard allowed, !text.isEmpty else {
            return "not a plugin name (e.g. kubernetes.io/empty-dir or kubernetes.io~empty-dir)"
        }
        guard text.contains("/") || text.contains("~") else {
            let guess = PluginName("kubernetes.io/" + text)
            let hint = guess.isLocal || guess.isCSI ? "; did you mean \"\(guess.unescaped)\"?" : " (e.g. kubernetes.io/\(text))"
            return "a plugin name has a vendor prefix\(hint)"
        }
        let parts = PluginName(text).escaped.split(separator: "~", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            return "a plugin name is <vendor>/<name> (e.g. kubernetes.io/empty-dir)"
        }
        return nil
    }

    /// The local kinds, as people write them, for messages.
    static var localKindsList: String {
        PluginName.localKinds.sorted().map(\.unescaped).joined(separator: ", ")
    }

    // MARK: File system types

    /// Network and cluster file systems: unmounting them is the kubelet's job
    /// (design §5.5), so `volumes.unmount` refuses them. `fuse` and every
    /// `fuse.*` are refused too: a FUSE mount in a pod volume is almost always
    /// a remote store (s3fs, gcsfuse, sshfs, glusterfs...).
    static let networkFilesystemTypes: Set<String> = [
        "nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "ceph", "cephfs", "glusterfs", "lustre", "gpfs",
        "beegfs", "ocfs2", "gfs2", "9p", "virtiofs", "afs", "openafs", "ncpfs", "coda", "davfs", "orangefs",
        "pvfs2", "rbd", "iscsi", "quobyte", "sshfs", "s3fs", "cvmfs", "panfs", "mfs", "moosefs", "lizardfs",
        "juicefs", "wekafs", "fuse", "fuseblk", "fusectl",
    ]

    static func filesystemTypeProblem(_ type: String) -> (code: PolicyError.Code, problem: String)? {
        let valid = !type.isEmpty && type.utf8.allSatisfy {
            isLowerAlphanumeric($0) || [UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "+")].contains($0)
        }
        guard valid else {
            let lowered = type.lowercased()
            if lowered != type, filesystemTypeProblem(lowered) == nil {
                return (.invalidFilesystemType, "file system types are lowercase as /proc/self/mountinfo shows them; did you mean \"\(lowered)\"?")
            }
            return (.invalidFilesystemType, "not a file system type name (e.g. tmpfs, ramfs, ext4, xfs, overlay)")
        }
        if networkFilesystemTypes.contains(type) || type.hasPrefix("fuse.") || type.hasPrefix("nfs") {
            return (.networkFilesystem, "network and cluster file systems are never unmounted by volume-reaper, that is the kubelet's job; only local types such as tmpfs, ramfs, ext4, xfs, overlay may be listed")
        }
        return nil
    }

    // MARK: Characters

    static func isDNSLabel(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 63, let first = bytes.first, let last = bytes.last else { return false }
        return isLowerAlphanumeric(first) && isLowerAlphanumeric(last)
            && bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    static func isDNSSubdomain(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNSLabel(String($0)) }
    }

    static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    static func isAlphanumeric(_ byte: UInt8) -> Bool { isLetter(byte) || isDigit(byte) }

    static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || isDigit(byte)
    }
}
