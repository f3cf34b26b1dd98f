// swift-tools-version: 6.1
// Benchmarks: each runs our code and a peer in the same run and prints ratios.
// Run one with: swift run -c release --package-path Benchmarks <name>
import PackageDescription

let package = Package(
    name: "FlotillaBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named, because a path dependency is otherwise known by its directory's name.
        .package(name: "Flotilla", path: ".."),
    ],
    targets: [
        // Decoding and validating a manifest of 1,000 services (issue 2's figure).
        .executableTarget(
            name: "manifest-bench",
            dependencies: [.product(name: "Manifest", package: "Flotilla")],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
