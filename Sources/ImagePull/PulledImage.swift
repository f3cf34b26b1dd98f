import Images

/// The image config's defaults a service's manifest can override (OCI image-spec "config").
public struct ImageConfig: Sendable, Hashable, Codable {
    /// `Entrypoint`.
    public var entrypoint: [String]?
    /// `Cmd`: the arguments after the entrypoint, or the command when there is none.
    public var cmd: [String]?
    /// `Env`, as `NAME=value`.
    public var env: [String]?
    /// `WorkingDir`.
    public var workingDir: String?
    /// `User`: `user`, `uid`, `user:group` or `uid:gid`.
    public var user: String?

    /// A config with these defaults.
    public init(entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String]? = nil, workingDir: String? = nil, user: String? = nil) {
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.workingDir = workingDir
        self.user = user
    }
}

/// An image pulled onto this node: what instances start from, and what `deployctl images` lists.
public struct PulledImage: Sendable, Hashable, Codable {
    /// The reference pulled, pinned to the digest it resolved to (an index's, when it named one).
    public var reference: ImageReference
    /// The digest of this node's platform manifest.
    public var manifestDigest: Digest
    /// The digest of the image config.
    public var configDigest: Digest
    /// The layer blob digests, bottom to top: what `LayerStore.unpack` and the overlay take.
    public var layers: [Digest]
    /// The config's defaults.
    public var config: ImageConfig
    /// Bytes of the config and the layer blobs, as the registry serves them.
    public var size: Int64

    /// Every digest the store holds for this image (for `GarbageCollector.collect(inUse:)`).
    public var digests: Set<Digest> {
        var digests: Set<Digest> = [manifestDigest, configDigest]
        digests.formUnion(layers)
        if let top = reference.digest { digests.insert(top) }
        return digests
    }

    /// An image record.
    public init(reference: ImageReference, manifestDigest: Digest, configDigest: Digest, layers: [Digest], config: ImageConfig, size: Int64) {
        self.reference = reference
        self.manifestDigest = manifestDigest
        self.configDigest = configDigest
        self.layers = layers
        self.config = config
        self.size = size
    }
}

/// A reference is its canonical text in JSON.
extension ImageReference: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try ImageReference(parsing: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Where a pull is, for `deployctl apply` and events.
public struct PullProgress: Sendable, Hashable, CustomStringConvertible {
    /// The steps of a pull, in order; a blob goes through downloading and verifying, a layer
    /// then through unpacking.
    public enum Phase: String, Sendable, Hashable {
        case resolving, downloading, verifying, unpacking, done
    }
    /// The reference being pulled.
    public var reference: ImageReference
    /// The blob (config or layer) this is about; nil for resolving and done.
    public var digest: Digest?
    public var phase: Phase
    /// Bytes of the blob in the store so far (a resumed download starts where it stopped).
    public var bytesDone: Int64
    /// The blob's size from its descriptor.
    public var bytesTotal: Int64

    /// A progress report.
    public init(reference: ImageReference, digest: Digest?, phase: Phase, bytesDone: Int64, bytesTotal: Int64) {
        self.reference = reference
        self.digest = digest
        self.phase = phase
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
    }

    /// `downloading sha256:0123456789ab 12.3 of 48.0 MB`, as an instance's status message.
    public var description: String {
        guard let digest else { return phase.rawValue }
        let blob = "sha256:" + digest.hex.prefix(12)
        guard bytesTotal > 0 else { return "\(phase.rawValue) \(blob)" }
        let megabytes = { (bytes: Int64) in String(format: "%.1f", Double(bytes) / 1_000_000) }
        return "\(phase.rawValue) \(blob) \(megabytes(bytesDone)) of \(megabytes(bytesTotal)) MB"
    }
}
