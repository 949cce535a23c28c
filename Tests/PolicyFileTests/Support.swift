import Foundation
import PolicyFile
import ReaperCore

/// The package root, from this file's path: Tests/PolicyFileTests/Support.swift.
let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .deletingLastPathComponent()

/// A shipped policy file under `policies/`.
func shippedPolicy(_ name: String) -> URL {
    packageRoot.appendingPathComponent("policies").appendingPathComponent(name)
}

/// A fresh temporary directory, removed when `body` returns.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("policyfile-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

/// Writes `text` to `name` inside `directory`; returns its path.
@discardableResult
func write(_ text: String, to name: String, in directory: URL) throws -> String {
    let url = directory.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url.path
}

/// The error `body` throws, or nil when it throws none.
func policyError(_ body: () throws(PolicyError) -> Policy) -> PolicyError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}
