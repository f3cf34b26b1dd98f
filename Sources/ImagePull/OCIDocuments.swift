import Foundation
import Images

/// The media types of the OCI image spec and of Docker's schema 2 that pulling reads.
enum MediaType {
    static let ociIndex = "application/vnd.oci.image.index.v1+json"
    static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    static let ociConfig = "application/vnd.oci.image.config.v1+json"
    static let dockerConfig = "application/vnd.docker.container.image.v1+json"

    /// What a manifest request accepts, index types first (`resolve` wants the top-level digest).
    static let manifestAccept = [ociIndex, dockerManifestList, ociManifest, dockerManifest]

    static let indexTypes: Set<String> = [ociIndex, dockerManifestList]
    static let manifestTypes: Set<String> = [ociManifest, dockerManifest]
    static let configTypes: Set<String> = [ociConfig, dockerConfig]

    /// Layers libarchive unpacks (it detects gzip and zstd itself; OCI image-spec "Layer").
    static let layerTypes: Set<String> = [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
    ]
    /// Layers a registry may not serve (Windows base layers): fetched from `urls` elsewhere.
    static let foreignLayerTypes: Set<String> = [
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ]
}

/// A content descriptor (OCI image-spec "Descriptors").
struct OCIDescriptor: Sendable, Codable, Hashable {
    var mediaType: String
    var digest: Digest
    var size: Int64
    var urls: [String]?
    var platform: OCIPlatform?
}

/// An index entry's platform.
struct OCIPlatform: Sendable, Codable, Hashable {
    var architecture: String
    var os: String
    var variant: String?

    var text: String { os + "/" + architecture + (variant.map { "/" + $0 } ?? "") }
}

/// An image index or Docker manifest list.
struct OCIIndex: Sendable, Codable {
    var schemaVersion: Int
    var mediaType: String?
    var manifests: [OCIDescriptor]
}

/// An image manifest (OCI or Docker schema 2).
struct OCIManifest: Sendable, Codable {
    var schemaVersion: Int
    var mediaType: String?
    var config: OCIDescriptor
    var layers: [OCIDescriptor]
}

/// The parts of an image config (OCI image-spec "Image Configuration") pulling reads.
struct OCIImageConfig: Sendable, Codable {
    struct Execution: Sendable, Codable {
        var Entrypoint: [String]?
        var Cmd: [String]?
        var Env: [String]?
        var WorkingDir: String?
        var User: String?
    }
    var architecture: String?
    var os: String?
    var variant: String?
    var config: Execution?
}

/// What a manifest response is, from its Content-Type or, when a registry sends a generic one,
/// from the document's own `mediaType` and shape.
enum ManifestDocument {
    case index(OCIIndex)
    case manifest(OCIManifest)

    static func decode(_ bytes: [UInt8], contentType: String?) -> (ManifestDocument?, String) {
        let data = Data(bytes)
        let decoder = JSONDecoder()
        // Only the keys that tell an index from a manifest.
        struct Anything: Decodable {}
        struct Probe: Decodable { var mediaType: String?; var manifests: [Anything]?; var layers: [Anything]? }
        let probe = try? decoder.decode(Probe.self, from: data)
        let header = contentType.map { String($0.prefix { $0 != ";" }).trimmingCharacters(in: .whitespaces) }
        let mediaType: String
        if let header, MediaType.indexTypes.contains(header) || MediaType.manifestTypes.contains(header) {
            mediaType = header
        } else {
            // A generic Content-Type (application/json): the document's own mediaType, or its shape.
            mediaType = probe?.mediaType
                ?? (probe?.manifests != nil ? MediaType.ociIndex : probe?.layers != nil ? MediaType.ociManifest : header ?? "unknown")
        }
        if MediaType.indexTypes.contains(mediaType) {
            return ((try? decoder.decode(OCIIndex.self, from: data)).map(ManifestDocument.index), mediaType)
        }
        if MediaType.manifestTypes.contains(mediaType) {
            return ((try? decoder.decode(OCIManifest.self, from: data)).map(ManifestDocument.manifest), mediaType)
        }
        return (nil, mediaType)
    }
}
