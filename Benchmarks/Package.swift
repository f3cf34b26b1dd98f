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
        // Restart latency against spawn latency; log capture against cat; idle CPU with 1,000 checked instances.
        .executableTarget(name: "supervisor-bench", dependencies: [.product(name: "Supervisor", package: "Flotilla")], swiftSettings: strict),
    ]
)
