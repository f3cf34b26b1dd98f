// swift-tools-version: 6.1
// Benchmarks for Flotilla, kept out of the main package so that they build in release mode
// on their own: swift run -c release --package-path Benchmarks <benchmark>
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "FlotillaBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Flotilla", path: ".."),
    ],
    targets: [
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
    ]
)
