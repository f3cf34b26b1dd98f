// swift-tools-version: 6.1
// Flotilla's benchmarks: each executable runs Flotilla side by side with a peer in the same run
// and prints ratios (DESIGN.md, "Testing layers"). Run one with
//   swift run -c release --package-path Benchmarks <name>
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "FlotillaBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named, so that the product reference below holds whatever the checkout directory is called.
        .package(name: "Flotilla", path: ".."),
    ],
    targets: [
        // Start latency against `crun run` and posix_spawn; density of 1,000 sleeping services.
        .executableTarget(name: "spawn-bench", dependencies: [.product(name: "Supervisor", package: "Flotilla"), "CSpawnBench"], swiftSettings: strict),
        // spawn-bench's raw calls: a private mount namespace for crun's thread.
        .target(name: "CSpawnBench"),
    ]
)
