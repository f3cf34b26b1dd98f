import Glibc

/// Everything the image store refuses or fails at, each naming the digest, the path or the entry
/// it is about.
public enum ImageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A digest string that is not `sha256:` and 64 lowercase hex digits.
    case invalidDigest(value: String, reason: String)
    /// Written content whose SHA-256 is not the one it was expected to have; nothing was kept.
    case digestMismatch(expected: Digest, actual: Digest)
    /// A blob the store does not hold.
    case blobNotFound(Digest)
    /// A layer entry that unpacking refuses (escaping path, device node, setuid bit, …).
    case entryRefused(layer: Digest, path: String, reason: String)
    /// libarchive could not read the layer or write one of its entries.
    case archive(layer: Digest, path: String?, message: String)
    /// An overlay that cannot be mounted as asked (no layers, a path overlayfs cannot take, …).
    case overlay(reason: String)
    /// A system call that failed.
    case system(call: String, path: String?, errno: Int32)

    public var description: String {
        switch self {
        case .invalidDigest(let value, let reason):
            return "invalid digest \"\(value)\": \(reason) (expected sha256: and 64 lowercase hex digits)"
        case .digestMismatch(let expected, let actual):
            return "digest mismatch: expected \(expected), got \(actual)"
        case .blobNotFound(let digest):
            return "blob \(digest) is not in the store"
        case .entryRefused(let layer, let path, let reason):
            return "layer \(layer): entry \"\(path)\" refused: \(reason)"
        case .archive(let layer, let path, let message):
            if let path {
                return "layer \(layer): entry \"\(path)\": \(message)"
            }
            return "layer \(layer): \(message)"
        case .overlay(let reason):
            return "overlay: \(reason)"
        case .system(let call, let path, let errno):
            // Named the way crun names them: `rename "/var/lib/…": No space left on device`.
            let reason = String(cString: strerror(errno))
            return path.map { "\(call) \"\($0)\": \(reason)" } ?? "\(call): \(reason)"
        }
    }

    /// The system call that just failed on this thread, with its errno.
    static func lastSystemError(_ call: String, _ path: String? = nil) -> ImageError {
        .system(call: call, path: path, errno: Glibc.errno)
    }
}
