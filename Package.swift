// swift-tools-version: 6.1
// Flotilla: a container-style process supervisor and deployer for Linux.
// Swift 6 language mode everywhere, which turns on complete concurrency checking.
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Flotilla",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Manifest", targets: ["Manifest"]),
        .library(name: "Raft", targets: ["Raft"]),
        .library(name: "Supervisor", targets: ["Supervisor"]),
        .library(name: "Images", targets: ["Images"]),
        .library(name: "ImagePull", targets: ["ImagePull"]),
        .library(name: "Controller", targets: ["Controller"]),
        // Load-balancing strategies and outlier ejection, for the agent's proxy and Swift clients.
        .library(name: "Balancing", targets: ["Balancing"]),
        // For the benchmarks, which simulate many agents against real servers.
        .library(name: "Cluster", targets: ["Cluster"]),
        .executable(name: "deployctl", targets: ["deployctl"]),
        .executable(name: "agentd", targets: ["agentd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.20.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.25.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-openapi-generator", from: "1.14.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.0"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.0"),
    ],
    targets: [
        // Manifest types, decoding with located errors, validation and the JSON Schema. Pure.
        .target(name: "Manifest", swiftSettings: strict),
        // Blocking work (fsyncs, whole-file reads, mounts) on a Dispatch thread, off Swift's pool.
        .target(name: "BlockingWork", swiftSettings: strict),
        // Consensus: the pure core, its storage and drivers. Depends on nothing of ours but
        // BlockingWork.
        .target(name: "Raft", dependencies: ["BlockingWork"], swiftSettings: strict),
        // The code between clone3 and execve, and raw syscall wrappers: C, libc only (DESIGN.md §2).
        .target(name: "CSpawn"),
        // libseccomp, for the parent to compile seccomp filters to BPF.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // libsystemd: sd_notify for agentd under systemd, sd_journal_sendv for forwarding service logs.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // libarchive: reading OCI layer tarballs (plain, gzip, zstd) and extracting them safely.
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        // syncfs and the xattr calls, which Swift's Glibc import leaves out: C, libc only.
        .target(name: "CImages"),
        // UDP sends with a chosen source address (IP_PKTINFO), which NIO does not make: C, libc only.
        .target(name: "CDatagram"),
        // Node-local image storage (issue 17): the content-addressed blob store, layers unpacked
        // once into read-only directories with OCI whiteouts in overlayfs form, overlay mounts
        // for instances, and garbage collection. Knows nothing of the Agent or the Controller.
        .target(
            name: "Images",
            dependencies: ["CArchive", "CImages", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        // Pulling images from OCI registries (issue 17): references, the distribution API over
        // HTTP/1.1 with TLS and bearer tokens, each blob verified while it streams into the
        // Images store, retries with resume, single-flight per blob, the record of pulled images.
        .target(
            name: "ImagePull",
            dependencies: [
                "BlockingWork", "Images", "Manifest",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict),
        // Launching services in namespaces and cgroups, holding them by pidfd, and keeping them
        // alive: restart, health, readiness, notify, logs, adoption after an agent restart.
        .target(
            name: "Supervisor",
            dependencies: [
                "AcceptPause", "BlockingWork", "IdleTimer", "Manifest", "Balancing", "CSpawn", "CSeccomp", "CSystemd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // A supervisor in a process of its own, for tests that kill it with SIGKILL and start it
        // again; also the sd_notify client the tests' services run.
        .executableTarget(name: "supervisor-testd", dependencies: ["Supervisor", "Manifest"], swiftSettings: strict),
        // The wire between agents (DESIGN.md §10): length-prefixed frames over TCP with mutual
        // TLS, per-peer bounded queues with reconnect, the cluster CA and node certificates.
        .target(
            name: "Cluster",
            dependencies: [
                "AcceptPause", "Raft",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // The replicated cluster state, its commands, the scheduler and the reconciler. Pure.
        .target(name: "Controller", dependencies: ["Manifest"], swiftSettings: strict),
        // Load-balancing strategies and outlier ejection: the standard library and Synchronization only.
        .target(name: "Balancing", swiftSettings: strict),
        // The idle timeout of a connection (a forwarded pair, a DNS TCP connection), on NIO.
        .target(name: "IdleTimer", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: strict),
        // Listeners that stop accepting for a while when descriptors run out, instead of spinning.
        .target(
            name: "AcceptPause",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict),
        // Service discovery's network side: the DNS server (a zone per catalog change, UDP and TCP).
        .target(
            name: "Discovery",
            dependencies: ["AcceptPause", "CDatagram", "IdleTimer", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict),
        // agentd's HTTP API, generated from its one OpenAPI document (openapi.json in the target):
        // the wire types, the server protocol agentd implements and deployctl's client. The
        // document itself is embedded, for agentd to serve at /v1/openapi.json.
        .target(
            name: "AgentAPI",
            dependencies: [.product(name: "OpenAPIRuntime", package: "swift-openapi-runtime")],
            resources: [.embedInCode("openapi.json")],
            swiftSettings: strict,
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]),
        // The agent: the Raft-backed controller, the HTTP API, the leader's loops and the node worker.
        .target(
            name: "Agent",
            dependencies: [
                "AgentAPI", "BlockingWork", "Cluster", "Controller", "Discovery", "ImagePull", "Images", "Manifest", "Raft",
                "Supervisor",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // The agent binary: configuration and wiring.
        .executableTarget(
            name: "agentd",
            dependencies: [
                "Agent", "Cluster", "Controller", "Manifest", "Supervisor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict),
        // The operator's command line.
        .executableTarget(
            name: "deployctl",
            dependencies: [
                "AgentAPI", "Cluster", "Manifest",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
            ],
            swiftSettings: strict),
        // What several test targets share: running a blocking test on a thread of its own.
        .target(
            name: "TestSupport", dependencies: [.product(name: "Logging", package: "swift-log")], path: "Tests/TestSupport",
            swiftSettings: strict),
        // Hosts as network namespaces on a private bridge, with faults to inject: the harness of
        // the multi-host tests (issue 13), and its own tests on the real kernel (root).
        .target(name: "NetnsHarness", path: "Tests/NetnsHarness", swiftSettings: strict),
        .testTarget(name: "NetnsHarnessTests", dependencies: ["NetnsHarness", "TestSupport"], swiftSettings: strict),
        // A linearizability checker (Wing & Gong's search with Lowe's memoization, as Porcupine
        // does) for the histories the key-value chaos test records, and its own tests.
        // Its random keys come from Raft's SplitMix64.
        .target(name: "Linearizability", dependencies: ["Raft"], path: "Tests/Linearizability", swiftSettings: strict),
        .testTarget(name: "LinearizabilityTests", dependencies: ["Linearizability", "Raft", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ManifestTests", dependencies: ["Manifest", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "BlockingWorkTests", dependencies: ["BlockingWork"], swiftSettings: strict),
        // Blobs, layers and overlay mounts on real files and the real kernel (root: mknod, mount).
        .testTarget(name: "ImagesTests", dependencies: ["Images", "CArchive", "CImages"], swiftSettings: strict),
        // The pull client against a real docker-registry on loopback with TLS from a test CA,
        // images built from busybox-static and pushed by the tests' own client (TestRegistry).
        .target(
            name: "RegistryTestSupport",
            dependencies: [
                "Images", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/RegistryTestSupport", swiftSettings: strict),
        .testTarget(
            name: "ImagePullTests",
            dependencies: [
                "ImagePull", "Images", "TestSupport", "RegistryTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict),
        // The real agentd and deployctl, end to end (root: they launch real services).
        .testTarget(
            name: "AgentTests", dependencies: ["Agent", "AgentAPI", "Cluster", "Controller", "Raft", "agentd", "deployctl", "TestSupport", "NetnsHarness", "Linearizability", "Images", "RegistryTestSupport"],
            swiftSettings: strict),
        .testTarget(name: "ControllerTests", dependencies: ["Controller", "Manifest", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "BalancingTests", dependencies: ["Balancing", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "AcceptPauseTests",
            dependencies: ["AcceptPause", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict),
        .testTarget(
            name: "DiscoveryTests",
            dependencies: ["Discovery", "TestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict),
        // The transport and the CA on real sockets and real TLS, on loopback.
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "Cluster", "Raft", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // Runs the built deployctl binary, so it depends on it to have it built first.
        .testTarget(name: "DeployctlTests", dependencies: ["deployctl", "TestSupport"], swiftSettings: strict),
        // supervisor-testd too: the adoption, notify and journal tests run it.
        .testTarget(
            name: "SupervisorTests", dependencies: ["Supervisor", "CSpawn", "Manifest", "supervisor-testd", "TestSupport"],
            swiftSettings: strict),
        // Appends to a WAL and reports each durable index on stdout; the crash-safety test
        // SIGKILLs it at random points and reopens the log.
        .executableTarget(name: "raft-wal-crasher", dependencies: ["Raft"], swiftSettings: strict),
        .testTarget(
            name: "RaftStorageTests", dependencies: ["Raft", "raft-wal-crasher", "TestSupport"], swiftSettings: strict),
        // Unit tests, plain-text scenarios (testdata/*.txt) and the deterministic simulation.
        .testTarget(name: "RaftTests", dependencies: ["Raft", "TestSupport"], exclude: ["testdata"], swiftSettings: strict),
    ]
)
