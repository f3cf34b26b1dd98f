import Foundation
import Images

/// An OCI image layout on disk, made for the run and pushed to the registry with skopeo: its
/// layers hold files of random bytes (gzip cannot shrink them, so the pull moves the bytes
/// asked for) plus, in the first layer, busybox and its applets, so that it can run.
struct BenchImage {
    let layout: String
    let tag: String

    /// `layers` layers of about `megabytes / layers` MiB each.
    static func make(in directory: String, megabytes: Int, layers: Int, tag: String) throws -> BenchImage {
        let files = FileManager.default
        let blobs = directory + "/layout/blobs/sha256"
        try files.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        var layerDescriptors: [String] = []
        var diffIDs: [String] = []
        let perLayer = max(1, megabytes * 1_048_576 / layers)
        guard let random = FileHandle(forReadingAtPath: "/dev/urandom") else { throw BenchError("cannot open /dev/urandom") }
        defer { try? random.close() }
        for index in 0..<layers {
            let tree = directory + "/layer-\(index)"
            try files.createDirectory(atPath: tree + "/data/\(index)", withIntermediateDirectories: true)
            if index == 0 {
                try files.createDirectory(atPath: tree + "/bin", withIntermediateDirectories: true)
                try files.copyItem(atPath: "/usr/bin/busybox", toPath: tree + "/bin/busybox")
                for applet in ["sh", "true", "sleep"] { try files.createSymbolicLink(atPath: tree + "/bin/" + applet, withDestinationPath: "busybox") }
            }
            // Files of 256 KiB: many enough that unpacking pays per file as well as per byte.
            var written = 0
            var number = 0
            while written < perLayer {
                let size = min(262_144, perLayer - written)
                try random.readData(ofLength: size).write(to: URL(fileURLWithPath: tree + "/data/\(index)/file-\(number)"))
                written += size
                number += 1
            }
            let tar = directory + "/layer-\(index).tar"
            try run("/usr/bin/tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", tree, "-cf", tar, "."])
            diffIDs.append(try digest(ofFile: tar))
            try run("/usr/bin/gzip", ["-n", "-1", tar])
            let layer = try store(file: tar + ".gz", in: blobs)
            layerDescriptors.append(#"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(layer.digest)","size":\#(layer.size)}"#)
            try files.removeItem(atPath: tree)
        }
        let config = #"""
            {"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":[\#(diffIDs.map { "\"\($0)\"" }.joined(separator: ","))]}}
            """#
        let configBlob = try store(bytes: Array(config.utf8), in: blobs)
        let manifest = #"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configBlob.digest)","size":\#(configBlob.size)},"layers":[\#(layerDescriptors.joined(separator: ","))]}
            """#
        let manifestBlob = try store(bytes: Array(manifest.utf8), in: blobs)
        let index = #"""
            {"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(manifestBlob.digest)","size":\#(manifestBlob.size),"annotations":{"org.opencontainers.image.ref.name":"\#(tag)"}}]}
            """#
        try index.write(toFile: directory + "/layout/index.json", atomically: true, encoding: .utf8)
        try #"{"imageLayoutVersion":"1.0.0"}"#.write(toFile: directory + "/layout/oci-layout", atomically: true, encoding: .utf8)
        return BenchImage(layout: directory + "/layout", tag: tag)
    }

    /// Pushes the layout to `registry` as `repository:tag`.
    func push(to registry: BenchRegistry, repository: String) throws {
        try run("/usr/bin/skopeo", ["copy", "--quiet", "--dest-cert-dir", registry.certDirectory, "oci:\(layout):\(tag)",
                                    "docker://\(registry.address)/\(repository):\(tag)"])
    }

    private static func digest(ofFile path: String) throws -> String {
        Digest.of(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))).description
    }

    private static func store(file path: String, in blobs: String) throws -> (digest: String, size: Int) {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let stored = try store(bytes: bytes, in: blobs)
        try FileManager.default.removeItem(atPath: path)
        return stored
    }

    private static func store(bytes: [UInt8], in blobs: String) throws -> (digest: String, size: Int) {
        let digest = Digest.of(bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: blobs + "/" + digest.hex))
        return (digest.description, bytes.count)
    }
}
