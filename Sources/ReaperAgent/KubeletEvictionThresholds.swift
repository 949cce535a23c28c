import BoundedYAML
import Foundation
import NodeDiscovery
import ReaperCore
import SystemCalls
import Yams

/// The kubelet's eviction thresholds for the node filesystem, from its config
/// file (`evictionHard` / `evictionSoft`: `nodefs.available`, `nodefs.inodesFree`).
public struct KubeletEvictionThresholds: Sendable, Hashable {
    public var available: SpaceAmount?
    public var inodesFree: SpaceAmount?

    public init(available: SpaceAmount? = nil, inodesFree: SpaceAmount? = nil) {
        self.available = available
        self.inodesFree = inodesFree
    }

    /// nil when the file is missing; throws a one-line error naming the file
    /// and field when it is unreadable or a value is not an amount.
    public static func load(path: String) throws -> KubeletEvictionThresholds? {
        guard let text = try KubeletConfigFile.read(path: path) else { return nil }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> KubeletEvictionThresholds {
        let documents: [Node]
        do {
            documents = try BoundedYAML.documents(text, limits: .settings)
        } catch {
            throw KubeletConfigError("\(file): \(error)")
        }
        var thresholds = KubeletEvictionThresholds()
        // Soft thresholds are reached first when both are set: the larger amount wins.
        for section in ["evictionHard", "evictionSoft"] {
            guard let node = documents.first?.mapping?[section], node.mapping != nil else { continue }
            let signals: [FieldEntry]
            do {
                signals = try schema.entries(of: node, section: section)
            } catch {
                throw KubeletConfigError("\(file): \(UserText.excerpt(error.field)): \(error.problem)")
            }
            for (key, field) in [("nodefs.available", \KubeletEvictionThresholds.available), ("nodefs.inodesFree", \.inodesFree)] {
                guard let text = signals.first(where: { $0.key == key })?.value.string else { continue }
                guard let amount = SpaceAmount.parse(text) else {
                    throw KubeletConfigError("\(file): \(section).\(key): not a percentage or a quantity (got \"\(UserText.excerpt(text, quoting: true))\")")
                }
                thresholds[keyPath: field] = larger(thresholds[keyPath: field], amount)
            }
        }
        return thresholds
    }

    /// The kubelet's eviction signals (its `evictionHard` and `evictionSoft`
    /// keys); the kubelet refuses any other, so a near miss is refused here
    /// too, naming the signal meant. Only the `nodefs` ones are read.
    public static let schema = YAMLSchema(["evictionHard", "evictionSoft"].map { section in
        YAMLSection(section, noun: "eviction signal", unknownKeys: .nearMissesRefused, keys: [
            "memory.available", "allocatableMemory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available",
            "imagefs.inodesFree", "containerfs.available", "containerfs.inodesFree", "pid.available",
        ].map { YAMLKey($0) })
    })

    /// Of two amounts, the one that asks for more free space; percentages
    /// beat sizes when they cannot be compared without the filesystem.
    static func larger(_ lhs: SpaceAmount?, _ rhs: SpaceAmount) -> SpaceAmount {
        switch (lhs, rhs) {
        case (nil, _): return rhs
        case (.percent(let a)?, .percent(let b)): return .percent(max(a, b))
        case (.absolute(let a)?, .absolute(let b)): return .absolute(max(a, b))
        case (.percent?, .absolute): return lhs!
        case (.absolute?, .percent): return rhs
        }
    }
}

/// The kubelet's config file, read without trusting it: non-blocking (a
/// FIFO cannot stall the agent), a regular file only, its size checked with
/// `fstat` before a byte is read (an 8 GiB sparse file costs nothing).
public enum KubeletConfigFile {
    public static let maxBytes = 4 << 20

    /// The text; nil when the file does not exist.
    public static func read(path: String) throws(KubeletConfigError) -> String? {
        do {
            // A symlink is followed: config management links kubelet configs.
            let bytes = try RegularFileReader.read(path, limit: maxBytes, followSymlinks: true)
            return String(decoding: bytes, as: UTF8.self)
        } catch {
            if case .system(let failure) = error, failure.isVanished { return nil }
            throw KubeletConfigError("\(UserText.excerpt(path, limit: 200)): cannot read the kubelet config: \(error)")
        }
    }

    /// `cgroupDriver` and `cgroupRoot`, for finding the pod cgroups; a file
    /// that is missing or unreadable says nothing (the search still runs).
    public static func cgroupSettings(path: String) -> KubeletCgroupSettings {
        guard let text = try? Self.read(path: path),
              let document = (try? BoundedYAML.documents(text, limits: .settings))?.first?.mapping else { return KubeletCgroupSettings() }
        return KubeletCgroupSettings(driver: document["cgroupDriver"]?.string, cgroupRoot: document["cgroupRoot"]?.string)
    }
}

/// A one-line configuration error.
public struct KubeletConfigError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
