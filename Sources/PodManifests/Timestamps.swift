import Foundation
import ReaperCore

/// `finishedAt` times, RFC 3339 as Kubernetes writes them.
enum Timestamps {
    static func parse(_ text: String) -> Date? {
        RFC3339.parse(text)
    }
}
