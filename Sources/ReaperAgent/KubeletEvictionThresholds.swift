import BoundedYAML
import Foundation
import ReaperCore
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
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 4 << 20 else {
            throw ConfigurationProblem("\(path): cannot read the kubelet config (or larger than 4 MiB)")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> KubeletEvictionThresholds {
        let documents: [Node]
        do {
            documents = try BoundedYAML.documents(text, limits: .settings)
        } catch {
            throw ConfigurationProblem("\(file): \(error)")
        }
        var thresholds = KubeletEvictionThresholds()
        // Soft thresholds are reached first when both are set: the larger amount wins.
        for section in ["evictionHard", "evictionSoft"] {
            guard let mapping = documents.first?.mapping?[section]?.mapping else { continue }
            for (key, field) in [("nodefs.available", \KubeletEvictionThresholds.available), ("nodefs.inodesFree", \.inodesFree)] {
                guard let text = mapping[key]?.string else { continue }
                guard let amount = SpaceAmount.parse(text) else {
                    throw ConfigurationProblem("\(file): \(section).\(key): not a percentage or a quantity (got \"\(UserText.excerpt(text, quoting: true))\")")
                }
                thresholds[keyPath: field] = larger(thresholds[keyPath: field], amount)
            }
        }
        return thresholds
    }

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

/// A one-line configuration error.
public struct ConfigurationProblem: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
