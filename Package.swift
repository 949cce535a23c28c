// swift-tools-version:6.1
// volume-reaper: a Kubernetes node agent that reaps idle pod volumes safely.
// Targets follow the data flow of design §2: discovery and manifests feed a pure
// reconciler; the reaper acts on its plan; the watcher and store feed it times;
// systemd integration and the socket API face the operator.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

// The static stdlib's link arguments export every public symbol of every
// package linked in (0.9 MiB .dynsym, 2.3 MiB .dynstr, 0.3 MiB .gnu.hash),
// and the dynamic loader reads them all at every start, so they stay
// resident. Nothing looks a symbol up in the executable: its RSS drops by
// about 4 MiB (issue 22, bench/watch-scale).
let releaseLinking: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "--no-export-dynamic"], .when(platforms: [.linux], configuration: .release)),
]

let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let httpClient = Target.Dependency.product(name: "AsyncHTTPClient", package: "async-http-client")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")

let package = Package(
    name: "volume-reaper",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "volume-reaper", targets: ["volume-reaper"]),
        // For the fuzz executables in Fuzz/, which depend on this package by path.
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // libsystemd: journald, sd_notify, socket activation.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // Linux calls Swift's Glibc module hides (getdents64, statx, O_NOATIME).
        .target(name: "CLinuxShims"),
        // Syscalls wrapped once: EINTR retried, errors carry errno and the call.
        .target(
            name: "SystemCalls",
            dependencies: ["CLinuxShims", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        // Domain: volumes, pods, policy, verdicts, plan, the pure reconciler. No I/O.
        .target(name: "ReaperCore", swiftSettings: strict),
        // The one guarded YAML reader: aliases, anchors, depth and duplicate keys
        // checked on libyaml's event stream before anything is composed.
        .target(name: "BoundedYAML", dependencies: ["ReaperCore", "Yams"], swiftSettings: strict),
        // Policy files (YAML) into the domain's Policy, with validation.
        .target(name: "PolicyFile", dependencies: ["ReaperCore", "BoundedYAML", "SystemCalls", "Yams"], swiftSettings: strict),
        // Kubelet pods tree, mounts and locks, read fd-relative.
        .target(name: "NodeDiscovery", dependencies: ["ReaperCore", "SystemCalls", logging], swiftSettings: strict),
        // Pod manifests (Pod, PodList, List; JSON or YAML) into a snapshot.
        .target(name: "PodManifests", dependencies: ["ReaperCore", "BoundedYAML", "SystemCalls", "Yams"], swiftSettings: strict),
        // How to reach the cluster: kubeconfig, in-cluster service account,
        // exec plugins, rotating tokens and client certificates, the node's name.
        .target(
            name: "ClusterAccess",
            dependencies: [
                "ReaperCore", "BoundedYAML", "SystemCalls", "Yams", logging, httpClient, nioSSL,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // Where pods come from: manifest files, the API server (LIST + WATCH),
        // or the kubelet's /pods; one snapshot type behind all three.
        .target(
            name: "PodSources",
            dependencies: [
                "ReaperCore", "PodManifests", "ClusterAccess", logging, lifecycle, httpClient, nioSSL,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Safe, fd-relative deletion of planned volumes, re-checked at the last moment.
        .target(name: "Reaper", dependencies: ["ReaperCore", "SystemCalls", "NodeDiscovery", logging], swiftSettings: strict),
        // Durable last-access times (SQLite through GRDB).
        .target(
            name: "AccessStore",
            dependencies: ["ReaperCore", "SystemCalls", .product(name: "GRDB", package: "GRDB.swift"), logging],
            swiftSettings: strict
        ),
        // inotify on the pods tree: events become per-volume access times.
        .target(name: "VolumeWatcher", dependencies: ["ReaperCore", "SystemCalls", "NodeDiscovery", logging, lifecycle], swiftSettings: strict),
        // journald log handler, sd_notify, socket activation.
        .target(name: "SystemdIntegration", dependencies: ["CSystemd", "SystemCalls", logging], swiftSettings: strict),
        // HTTP/1.1 + JSON on a Unix socket.
        .target(
            name: "SocketAPI",
            dependencies: [
                "ReaperCore", "SystemCalls", logging, lifecycle,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // One reconcile cycle and the daemon's services, shared by --plan, --once and run.
        .target(
            name: "ReaperAgent",
            dependencies: [
                "ReaperCore", "PolicyFile", "NodeDiscovery", "PodManifests", "PodSources", "ClusterAccess", "Reaper",
                "AccessStore", "VolumeWatcher", "SystemdIntegration", "SocketAPI", "BoundedYAML", "SystemCalls", "Yams",
                logging, lifecycle,
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // The binary: parses the command line and wires the parts together.
        .executableTarget(
            name: "volume-reaper",
            dependencies: [
                "ReaperCore", "PolicyFile", "ReaperAgent", "PodSources", "SystemdIntegration", "SocketAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                logging, lifecycle,
            ],
            swiftSettings: strict,
            linkerSettings: releaseLinking
        ),
        // One function per fuzzed parser, shared by the libFuzzer executables
        // (the separate package in Fuzz/) and the corpus replay test.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "ReaperCore", "PodManifests", "PolicyFile", "NodeDiscovery", "ReaperAgent", "SocketAPI", "ClusterAccess", logging,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "ReaperCoreTests", dependencies: ["ReaperCore"], swiftSettings: strict),
        .testTarget(name: "BoundedYAMLTests", dependencies: ["BoundedYAML", "Yams"], swiftSettings: strict),
        .testTarget(name: "PolicyFileTests", dependencies: ["PolicyFile", "ReaperCore", "BoundedYAML"], swiftSettings: strict),
        .testTarget(name: "PodManifestsTests", dependencies: ["PodManifests", "ReaperCore"], swiftSettings: strict),
        .testTarget(
            name: "ClusterAccessTests",
            dependencies: ["ClusterAccess", "TestSupport", "KubeTestServer", logging, nioSSL, httpClient],
            swiftSettings: strict
        ),
        .testTarget(
            name: "PodSourcesTests",
            dependencies: [
                "PodSources", "ClusterAccess", "PodManifests", "ReaperCore", "TestSupport", "KubeTestServer", logging, lifecycle,
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "NodeDiscoveryTests",
            dependencies: ["NodeDiscovery", "ReaperCore", "SystemCalls", "TestSupport", logging],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ReaperTests",
            dependencies: ["Reaper", "NodeDiscovery", "ReaperCore", "SystemCalls", "TestSupport", logging],
            swiftSettings: strict
        ),
        .testTarget(name: "AccessStoreTests", dependencies: ["AccessStore", "ReaperCore", "TestSupport", logging], swiftSettings: strict),
        .testTarget(
            name: "VolumeWatcherTests",
            dependencies: [
                "VolumeWatcher", "ReaperCore", "TestSupport", logging, lifecycle,
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SystemdIntegrationTests",
            dependencies: ["SystemdIntegration", "CSystemd", "TestSupport", logging],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SocketAPITests",
            dependencies: [
                "SocketAPI", "ReaperCore", "SystemCalls", "TestSupport", logging, lifecycle,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ReaperAgentTests",
            dependencies: [
                "ReaperAgent", "ReaperCore", "PodSources", "TestSupport", logging, lifecycle,
                // One grammar across files: the policy's, the config's and the drop-ins'.
                "PolicyFile", "BoundedYAML",
                // The real controller, watcher and store, for the reap-cycle tests.
                "AccessStore", "VolumeWatcher", "NodeDiscovery", "Reaper", "SocketAPI", "SystemdIntegration",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // The binary as a user runs it: child processes on example nodes.
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["TestSupport", "ReaperCore", "KubeTestServer"],
            swiftSettings: strict
        ),
        // Replays the committed fuzz corpus (Fuzz/corpus) through the harnesses.
        .testTarget(name: "FuzzCorpusTests", dependencies: ["FuzzTargets"], swiftSettings: strict),
        // A kube-apiserver and kubelet stand-in for the tests: NIO over TLS with
        // a CA and certificates made at test time, serving captured pod documents.
        .target(
            name: "KubeTestServer",
            dependencies: [
                "TestSupport", nioSSL, "Yams",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/KubeTestServer",
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        // The test server as a process, for the pod-source benchmarks (bench/).
        .executableTarget(
            name: "kube-test-server",
            dependencies: ["KubeTestServer"],
            path: "bench/kube-test-server",
            swiftSettings: strict
        ),
        // Temp trees, mounts and child processes for the tests.
        .target(
            name: "TestSupport",
            dependencies: ["SystemCalls"],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
