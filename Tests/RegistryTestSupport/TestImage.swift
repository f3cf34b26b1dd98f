import Foundation
import Images

/// An image built by the tests: gzip'd tar layers made with `tar` from directories the test
/// fills, an OCI config and an OCI (or Docker schema 2) manifest.
public struct TestImage {
    public var layers: [[UInt8]]
    public var config: [UInt8]
    public var manifest: [UInt8]
    public var manifestMediaType: String

    public var manifestDigest: Digest { Digest.of(manifest) }
    public var configDigest: Digest { Digest.of(config) }
    public var layerDigests: [Digest] { layers.map { Digest.of($0) } }

    /// An image of `layers` (bottom first) for `architecture`, whose config sets the entrypoint,
    /// cmd, env, working directory and user given (a `User` only when `user` is not nil).
    public init(
        layers: [[UInt8]], architecture: String = "amd64", docker: Bool = false, layerMediaType: String? = nil,
        entrypoint: [String] = ["/bin/sh"], cmd: [String] = ["-c", "echo hello"], env: [String] = ["PATH=/bin"], workingDir: String = "/",
        user: String? = nil
    ) throws {
        self.layers = layers
        var settings: [String: Any] = ["Entrypoint": entrypoint, "Cmd": cmd, "Env": env, "WorkingDir": workingDir]
        if let user { settings["User"] = user }
        let config: [String: Any] = [
            "architecture": architecture, "os": "linux",
            "config": settings,
            "rootfs": ["type": "layers", "diff_ids": layers.map { _ in "sha256:" + String(repeating: "0", count: 64) }],
        ]
        self.config = Array(try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]))
        manifestMediaType = docker
            ? "application/vnd.docker.distribution.manifest.v2+json" : "application/vnd.oci.image.manifest.v1+json"
        let layerType = layerMediaType
            ?? (docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : "application/vnd.oci.image.layer.v1.tar+gzip")
        let manifest: [String: Any] = [
            "schemaVersion": 2,
            "mediaType": manifestMediaType,
            "config": [
                "mediaType": docker ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json",
                "digest": Digest.of(self.config).description, "size": self.config.count,
            ],
            "layers": layers.map { ["mediaType": layerType, "digest": Digest.of($0).description, "size": $0.count] as [String: Any] },
        ]
        self.manifest = Array(try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]))
    }

    /// A layer: `fill` writes into a fresh directory, which is tarred (owner root) and gzip'd.
    public static func layer(compression: LayerCompression = .gzip, _ fill: (String) throws -> Void) throws -> [UInt8] {
        let directory = "/tmp/flotilla-pull-layer-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        try FileManager.default.createDirectory(atPath: directory + "/root", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try fill(directory + "/root")
        try runTool("/usr/bin/tar", [
            "-C", directory + "/root", "--owner=0", "--group=0", "--numeric-owner", "-c", "-f", directory + "/layer",
        ] + compression.tarOptions + ["."])
        return Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/layer")))
    }

    /// How a layer's tar is compressed, with the OCI media type that says so.
    public enum LayerCompression: Sendable {
        case gzip, zstd, none

        var tarOptions: [String] {
            switch self {
            case .gzip: ["--gzip"]
            case .zstd: ["--zstd"]
            case .none: []
            }
        }

        public var mediaType: String {
            switch self {
            case .gzip: "application/vnd.oci.image.layer.v1.tar+gzip"
            case .zstd: "application/vnd.oci.image.layer.v1.tar+zstd"
            case .none: "application/vnd.oci.image.layer.v1.tar"
            }
        }
    }

    /// busybox-static as `/bin/busybox` with `/bin/sh` linked to it.
    public static func busyboxLayer() throws -> [UInt8] {
        try layer { root in
            try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: root + "/bin/busybox")
            try FileManager.default.createSymbolicLink(atPath: root + "/bin/sh", withDestinationPath: "busybox")
        }
    }

    /// An OCI index of `manifests` with their platforms.
    public static func index(_ manifests: [(image: TestImage, architecture: String)]) throws -> [UInt8] {
        let index: [String: Any] = [
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests.map {
                [
                    "mediaType": $0.image.manifestMediaType, "digest": $0.image.manifestDigest.description,
                    "size": $0.image.manifest.count, "platform": ["os": "linux", "architecture": $0.architecture],
                ] as [String: Any]
            },
        ]
        return Array(try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys]))
    }
}
