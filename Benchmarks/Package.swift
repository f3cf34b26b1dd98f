// swift-tools-version: 6.1
// Benchmarks for Flotilla, kept out of the main package so that `swift build` and `swift test`
// never build them. Run one with `swift run -c release --package-path Benchmarks <name>`.
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "FlotillaBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Flotilla", path: ".."),
    ],
    targets: [
        // The WAL on this machine's disk: group commit throughput and append+fsync latency,
        // next to a bare write+fdatasync loop in the same run.
        .executableTarget(
            name: "raft-wal-bench",
            dependencies: [.product(name: "Raft", package: "Flotilla")],
            swiftSettings: strict),
    ]
)
