import Foundation
import ReaperCore
import Yams

extension PolicyReader {
    /// Every problem `check` can name at once (issue 19): the reader stops at
    /// the first problem, so each top-level section is read on its own and
    /// each section's first problem reported, in document order. A document
    /// that does not parse, or is not a mapping, has the one problem.
    func problems(_ yaml: String) -> [PolicyError] {
        let root: Node
        let sections: [Entry]
        do {
            root = try document(of: yaml)
            guard case .mapping = root else {
                _ = try policy(from: root)
                return []
            }
            sections = try entries(of: root, section: nil)
        } catch {
            return [error]
        }
        var found: [PolicyError] = []
        for section in sections {
            var policy = Policy()
            do {
                try readSection(section, into: &policy)
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
