import Foundation
import TestSupport

/// Policies for the end-to-end tests.
enum TestPolicies {
    /// `policies/default.yaml` with `orphans.confirmAfter: 0`: one snapshot
    /// confirms an orphan. For tests of everything else on the example node,
    /// whose old orphan must go in one run; orphan confirmation across runs
    /// has its own tests (OrphanConfirmationCommandTests) on the default.
    static let singleSnapshot: String = {
        let shipped = PackagePaths.root.appendingPathComponent("policies/default.yaml").path
        let text = (try? String(contentsOfFile: shipped, encoding: .utf8)) ?? ""
        precondition(text.contains("  confirmAfter: 2m\n"), "policies/default.yaml no longer sets orphans.confirmAfter: 2m")
        let path = NSTemporaryDirectory() + "volume-reaper-single-snapshot-\(getpid()).yaml"
        try? Data(text.replacingOccurrences(of: "  confirmAfter: 2m\n", with: "  confirmAfter: 0s\n").utf8)
            .write(to: URL(fileURLWithPath: path), options: .atomic)
        return path
    }()
}
