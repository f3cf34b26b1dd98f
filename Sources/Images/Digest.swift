import Crypto

/// A content digest in OCI form: `sha256:` and 64 lowercase hex digits, the only algorithm the
/// store accepts (OCI image-spec, "Digests": sha256 is the one every registry serves).
public struct Digest: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The 64 lowercase hex digits: the file name of the blob and of its unpacked layer.
    public let hex: String

    /// Parses `sha256:<64 lowercase hex>`; anything else is refused with the value quoted.
    public init(parsing value: String) throws(ImageError) {
        guard let colon = value.firstIndex(of: ":") else {
            throw .invalidDigest(value: value, reason: "no algorithm prefix")
        }
        let algorithm = value[..<colon]
        let encoded = value[value.index(after: colon)...]
        guard algorithm == "sha256" else {
            throw .invalidDigest(value: value, reason: "unsupported algorithm \"\(algorithm)\"")
        }
        try self.init(hex: String(encoded), quoting: value)
    }

    /// A digest from its hex digits alone (a file name in the store).
    public init(hex: String) throws(ImageError) {
        try self.init(hex: hex, quoting: hex)
    }

    private init(hex: String, quoting value: String) throws(ImageError) {
        guard hex.utf8.count == 64 else {
            throw .invalidDigest(value: value, reason: "\(hex.utf8.count) hex digits, not 64")
        }
        // Lowercase only: the digest is a file name, so `AB…` and `ab…` must not be two blobs.
        guard hex.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw .invalidDigest(value: value, reason: "not lowercase hex")
        }
        self.hex = hex
    }

    /// The SHA-256 digest of `bytes`.
    public static func of(_ bytes: some Sequence<UInt8>) -> Digest {
        var hasher = DigestHasher()
        hasher.update(Array(bytes))
        return hasher.finalize()
    }

    /// `sha256:<hex>`.
    public var description: String { "sha256:" + hex }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.hex < rhs.hex }
}

/// SHA-256 over content that arrives in chunks, so a blob is hashed while it is written.
public struct DigestHasher: Sendable {
    private var sha256 = SHA256()

    /// A hasher that has seen nothing yet.
    public init() {}

    /// Adds the next chunk.
    public mutating func update(_ chunk: [UInt8]) {
        chunk.withUnsafeBytes { sha256.update(bufferPointer: $0) }
    }

    /// The digest of everything added.
    public func finalize() -> Digest {
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        for byte in sha256.finalize() {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0f)])
        }
        // Well-formed by construction: 32 bytes make 64 lowercase hex digits.
        return Digest(wellFormedHex: String(decoding: hex, as: UTF8.self))
    }
}

extension Digest {
    fileprivate init(wellFormedHex hex: String) {
        self.hex = hex
    }
}
