import Images
import Manifest

/// An image's name as users write it: `[registry/]repository[:tag][@sha256:…]`, parsed the way
/// Docker's `distribution/reference` does (its grammar in `reference/regexp.go`): the first
/// component is a registry only if it has a `.` or a `:` or is `localhost`; otherwise the image
/// is on Docker Hub, and a single-component name there is under `library/`.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// `registry.example:5000`; `docker.io` for Docker Hub (requests go to `requestHost`).
    public var registry: String
    /// `team/web`; `library/busybox` for Docker Hub's `busybox`.
    public var repository: String
    /// nil when only a digest is given; `latest` when neither is.
    public var tag: String?
    /// The manifest (or index) digest this reference is pinned to, if any.
    public var digest: Digest?

    /// What the errors show as a valid reference.
    static let example = "registry.example:5000/team/web:1.4 or registry.example:5000/team/web@sha256:<64 hex digits>"

    /// Parses `text` by the manifest's grammar (`ImageName`, so that what a manifest accepts is
    /// what a node can pull); every error says what is wrong with it and shows a valid example.
    public init(parsing text: String) throws(ImagePullError) {
        let name: ImageName
        do {
            name = try ImageName(parsing: text)
        } catch {
            throw .invalidReference(text: text, reason: error.problem)
        }
        var digest: Digest?
        if let written = name.digest {
            do {
                digest = try Digest(parsing: written)
            } catch {
                throw .invalidReference(text: text, reason: "the part after @ is not a digest: \(error)")
            }
        }
        self.init(registry: name.registry, repository: name.repository, tag: name.effectiveTag, digest: digest)
    }

    /// A reference with these parts, taken as valid (the parts of a parsed reference).
    public init(registry: String, repository: String, tag: String?, digest: Digest?) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// The same reference pinned to `digest`, keeping its tag: `reg:5000/web:1.4@sha256:…`.
    public func pinned(to digest: Digest) -> ImageReference {
        var pinned = self
        pinned.digest = digest
        return pinned
    }

    /// `registry/repository[:tag][@digest]`, which `init(parsing:)` reads back to this value.
    public var description: String {
        var text = registry + "/" + repository
        if let tag { text += ":" + tag }
        if let digest { text += "@" + digest.description }
        return text
    }

    /// The host (and port) requests go to: Docker Hub's API is not at `docker.io`.
    public var requestHost: String {
        registry == "docker.io" ? "registry-1.docker.io" : registry
    }

    /// What `/v2/<repository>/manifests/<…>` takes: the digest when pinned, else the tag.
    var manifestReference: String {
        digest?.description ?? tag ?? "latest"
    }
}
