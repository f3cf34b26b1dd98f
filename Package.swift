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
        .library(name: "Supervisor", targets: ["Supervisor"]),
    ],
    dependencies: [
    ],
    targets: [
        // Consensus: the pure core, its storage and drivers. Depends on nothing of ours.
        .target(name: "Raft", swiftSettings: strict),
        // The code between clone3 and execve, and raw syscall wrappers: C, libc only (DESIGN.md §2).
        .target(name: "CSpawn"),
        // libseccomp, for the parent to compile seccomp filters to BPF.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // Launching services in namespaces and cgroups, and holding them by pidfd.
        .target(name: "Supervisor", dependencies: ["CSpawn", "CSeccomp"], swiftSettings: strict),
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor", "CSpawn"], swiftSettings: strict),
    ]
)
