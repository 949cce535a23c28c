// swift-tools-version:6.1
// The libFuzzer executables, one per harness of the main package's FuzzTargets
// library. A package of its own so that the main package never builds with
// sanitizer flags: build with `make fuzz-build` (the flags are there).
import Foundation
import PackageDescription

let harnesses = ["manifest", "policy", "config", "mountinfo", "http", "url"]

// SwiftPM names a path dependency after its directory: the checkout's name.
let mainPackage = URL(fileURLWithPath: Context.packageDirectory)
    .deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "volume-reaper-fuzz",
    dependencies: [.package(path: "../..")],
    targets: [.target(name: "CFuzzerDriver")] + harnesses.map { name in
        .executableTarget(
            name: "fuzz-\(name)",
            dependencies: ["CFuzzerDriver", .product(name: "FuzzTargets", package: mainPackage)]
        )
    },
    swiftLanguageModes: [.v6]
)
