import ReaperCore

// ReaperCore's `ManifestError` is not declared an `Error`, which typed throws
// (`throws(ManifestError)`) and `Result` need. Remove this file once
// ReaperCore declares the conformance itself.
extension ManifestError: Error {}
