import Images

/// Everything pulling can fail at, each naming the reference, the digest or the registry it is
/// about, in the words an operator reads in `deployctl apply` and in events.
public enum ImagePullError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Text that is not an image reference.
    case invalidReference(text: String, reason: String)
    /// The credentials file could not be read or parsed.
    case credentials(file: String, reason: String)
    /// The registry answered with an error (`manifest unknown`, `blob unknown`, …).
    /// `subject` is what was asked for (`blob sha256:…`); nil for the reference's manifest.
    case registry(reference: ImageReference, subject: String?, status: Int, message: String)
    /// The registry could not be reached, or kept failing, for `attempts` attempts.
    case unreachable(reference: ImageReference, registry: String, reason: String, attempts: Int)
    /// A failure retrying cannot fix: TLS verification, a malformed response.
    case transport(reference: ImageReference, registry: String, reason: String)
    /// The registry wants credentials we do not have, or refused the ones we sent.
    case unauthorized(reference: ImageReference, registry: String, reason: String)
    /// Content whose SHA-256 is not the digest it was asked for by; nothing of it was kept.
    /// `kind` is `manifest`, `index`, `config` or `layer`.
    case digestMismatch(reference: ImageReference, kind: String, expected: Digest, actual: Digest)
    /// An index without a manifest for this node's platform.
    case platformNotFound(reference: ImageReference, wanted: String, available: [String])
    /// A single-platform image (no index) built for another platform than this node's.
    case platformMismatch(reference: ImageReference, wanted: String, image: String)
    /// A manifest, config or layer of a type we do not pull (foreign layers, unknown types).
    case unsupportedMediaType(reference: ImageReference, digest: Digest?, mediaType: String, reason: String)
    /// A manifest, index or config that is not what the OCI image spec says it must be.
    case invalidManifest(reference: ImageReference, digest: Digest?, reason: String)
    /// The local store failed (disk full, unpacking refused an entry, …).
    case store(reference: ImageReference?, ImageError)

    public var description: String {
        switch self {
        case .invalidReference(let text, let reason):
            return "invalid image reference \"\(text)\": \(reason) (valid: \(ImageReference.example))"
        case .credentials(let file, let reason):
            return "credentials file \(file): \(reason)"
        case .registry(let reference, let subject, let status, let message):
            let about = subject.map { "\($0): " } ?? ""
            return "pull \(reference): \(about)\(message) (HTTP \(status))"
        case .unreachable(let reference, let registry, let reason, let attempts):
            return "pull \(reference): registry \(registry) unreachable: \(reason) (after \(attempts) attempts)"
        case .transport(let reference, let registry, let reason):
            return "pull \(reference): registry \(registry): \(reason)"
        case .unauthorized(let reference, let registry, let reason):
            return "pull \(reference): unauthorized: registry \(registry): \(reason)"
        case .digestMismatch(let reference, let kind, let expected, let actual):
            return "pull \(reference): \(kind) \(expected): digest mismatch: expected \(expected), got \(actual)"
        case .platformNotFound(let reference, let wanted, let available):
            let has = available.isEmpty ? "none" : available.joined(separator: ", ")
            return "pull \(reference): no manifest for \(wanted) in the index (has: \(has))"
        case .platformMismatch(let reference, let wanted, let image):
            return "pull \(reference): the image is for \(image), not for this node's \(wanted)"
        case .unsupportedMediaType(let reference, let digest, let mediaType, let reason):
            let about = digest.map { " \($0)" } ?? ""
            return "pull \(reference):\(about) media type \"\(mediaType)\": \(reason)"
        case .invalidManifest(let reference, let digest, let reason):
            let about = digest.map { "\($0): " } ?? ""
            return "pull \(reference): \(about)\(reason)"
        case .store(let reference, let error):
            return reference.map { "pull \($0): \(error)" } ?? "image store: \(error)"
        }
    }
}
