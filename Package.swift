// swift-tools-version: 6.1
// Flotilla: a container-style process supervisor and deployer for Linux.
// Swift 6 language mode everywhere, which turns on complete concurrency checking.
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Flotilla",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Raft", targets: ["Raft"]),
    ],
    dependencies: [
    ],
    targets: [
        // Consensus: the pure core, its storage and drivers. Depends on nothing of ours.
        .target(name: "Raft", swiftSettings: strict),
        // Appends to a WAL and reports each durable index on stdout; the crash-safety test
        // SIGKILLs it at random points and reopens the log.
        .executableTarget(name: "raft-wal-crasher", dependencies: ["Raft"], swiftSettings: strict),
        .testTarget(
            name: "RaftStorageTests", dependencies: ["Raft", "raft-wal-crasher"], swiftSettings: strict),
        // Unit tests, plain-text scenarios (testdata/*.txt) and the deterministic simulation.
        .testTarget(name: "RaftTests", dependencies: ["Raft"], exclude: ["testdata"], swiftSettings: strict),
    ]
)
