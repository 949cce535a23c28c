import Foundation
import ReaperCore
import Yams

extension PolicyReader {
    /// Every problem `check` can name at once (issue 19): the reader stops at
    /// the first problem, so each top-level section is read on its own and
    /// each section's first problem reported, in document order. A document
    /// that does not parse, or is not a mapping, has the one problem.
    func problems(_ yaml: String) -> [PolicyError] {
        let mapping: Node.Mapping
        do {
            let root = try document(of: yaml)
            guard case .mapping(let pairs) = root else {
                _ = try policy(from: root)
                return []
            }
            mapping = pairs
        } catch {
            return [error]
        }
        var found: [PolicyError] = []
        // Each top-level key on its own, so an unknown one is one problem
        // among the others rather than the only one reported.
        for (key, value) in mapping {
            var policy = Policy()
            do {
                for section in try entries(of: .mapping(Node.Mapping([(key, value)])), section: nil) {
                    try readSection(section, into: &policy)
                }
            } catch {
                found.append(error)
            }
        }
        return found
    }
}

extension PolicyLoader {
    /// Every problem of the policy file at `path` that can be named at once:
    /// the first of each section (`load` stops at the first of the file).
    /// Empty when the file loads.
    public static func problems(path: String) -> [PolicyError] {
        do {
            return PolicyReader(file: path).problems(try readText(path: path))
        } catch {
            return [error]
        }
    }
}
