// swift-tools-version: 6.1
// Benchmarks: each runs our code and a peer in the same run and prints ratios. Kept out of the
// main package so that they build in release mode on their own:
//   swift run -c release --package-path Benchmarks <name>
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "FlotillaBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named, so that product references hold whatever the checkout directory is called
        // (a path dependency's identity is otherwise its directory name: "main" in one tree,
        // something else in another).
        .package(name: "Flotilla", path: ".."),
    ],
    targets: [
        // Decoding and validating a manifest of 1,000 services (issue 2's figure), against
        // Foundation's JSONDecoder into a Codable model of the same shape.
        .executableTarget(
            name: "manifest-bench",
            dependencies: [.product(name: "Manifest", package: "Flotilla")],
            swiftSettings: strict),
        // Start latency against `crun run` and posix_spawn of the same static busybox; density of
        // 1,000 sleeping services launched as the agent does (a manifest's service, supervised).
        .executableTarget(
            name: "spawn-bench",
            dependencies: [.product(name: "Supervisor", package: "Flotilla"), .product(name: "Manifest", package: "Flotilla"),
                           "CSpawnBench"],
            swiftSettings: strict),
        // spawn-bench's raw calls: a private mount namespace for crun's thread; mallinfo2.
        .target(name: "CSpawnBench"),
        // Restart latency against spawn latency; log capture against cat; idle CPU with 1,000 checked
        // instances; each with journald forwarding off and on (a private journald when none runs).
        .executableTarget(
            name: "supervisor-bench",
            dependencies: [.product(name: "Supervisor", package: "Flotilla"), "CJournalBench"],
            swiftSettings: strict),
        // supervisor-bench's floor for forwarding: the same lines sent to journald from a bare C loop.
        .target(name: "CJournalBench", linkerSettings: [.linkedLibrary("systemd")]),
        // Issue 17: a cold pull and unpack against skopeo + umoci, the start from an unpacked image
        // against a rootfs directory, and the disk 20 instances of one image take.
        .executableTarget(
            name: "image-bench",
            dependencies: [.product(name: "ImagePull", package: "Flotilla"), .product(name: "Images", package: "Flotilla"),
                           .product(name: "Supervisor", package: "Flotilla")],
            swiftSettings: strict),
        // The Raft core alone: committed entries per second through 3 in-process cores.
        .executableTarget(
            name: "raft-core-bench",
            dependencies: [.product(name: "Raft", package: "Flotilla")],
            swiftSettings: strict),
        // The WAL on this machine's disk: group commit throughput and append+fsync latency,
        // next to a bare write+fdatasync loop in the same run.
        .executableTarget(
            name: "raft-wal-bench",
            dependencies: [.product(name: "Raft", package: "Flotilla")],
            swiftSettings: strict),
        // Issue 13: 3 release agentd servers on loopback and 1,000 client agents simulated in
        // this process (joined, mutual TLS, the calls of Sources/Agent/ServerRequests.swift):
        // heartbeats' cost to the log and the leader; instances placed per second.
        .executableTarget(
            name: "cluster-bench",
            dependencies: [
                .product(name: "Cluster", package: "Flotilla"), .product(name: "Controller", package: "Flotilla"),
                .product(name: "Raft", package: "Flotilla"),
            ],
            swiftSettings: strict),
    ]
)
