import Crypto
import SwiftASN1
import X509

/// The hash that pins the cluster CA: SHA-256 over the DER of the CA certificate's
/// SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), written `sha256:<64 lowercase hex digits>`. This is
/// exactly kubeadm's `--discovery-token-ca-cert-hash` (kubeadm's `pubkeypin` package), so
/// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum` computes it too.
/// Pinning the key rather than the whole certificate lets the CA certificate be re-issued with the
/// same key without invalidating outstanding join tokens.
public struct ClusterCAPin: Sendable, Hashable, CustomStringConvertible {
    /// The 32 bytes of the SHA-256 digest.
    public let sha256Digest: [UInt8]

    /// The algorithm prefix of the written form.
    public static let prefix = "sha256:"
    /// Length of the digest as hex.
    public static let hexLengthCharacters = 64

    /// The pin of `certificate`'s public key.
    public init(certificate: Certificate) throws(ClusterSecurityError) {
        do {
            // Certificate.PublicKey serializes as the whole SubjectPublicKeyInfo SEQUENCE
            // (algorithm identifier and key), which is what kubeadm hashes; its
            // `subjectPublicKeyInfoBytes` is only the BIT STRING's contents and would differ.
            let spki = try DEREncoding.bytes(of: certificate.publicKey)
            self.init(subjectPublicKeyInfoDER: spki)
        } catch {
            throw .encoding(reason: "serializing the CA's public key: \(error)")
        }
    }

    /// The pin of a SubjectPublicKeyInfo given as DER.
    public init(subjectPublicKeyInfoDER: [UInt8]) {
        sha256Digest = Array(SHA256.hash(data: subjectPublicKeyInfoDER))
    }

    /// Reads `sha256:<hex>` or the bare 64 hex digits; nil if it is neither.
    public init?(parsing text: String) {
        let hex = text.hasPrefix(Self.prefix) ? String(text.dropFirst(Self.prefix.count)) : text
        guard let digest = Hex.decode(hex), digest.count * 2 == Self.hexLengthCharacters else { return nil }
        sha256Digest = digest
    }

    /// The digest as 64 lowercase hex digits (the form inside a join token).
    public var hex: String { Hex.encode(sha256Digest) }

    /// `sha256:<hex>`, kubeadm's form.
    public var description: String { Self.prefix + hex }

    /// Whether `certificate`'s public key is the pinned one.
    public func matches(_ certificate: Certificate) -> Bool {
        guard let other = try? ClusterCAPin(certificate: certificate) else { return false }
        return other == self
    }
}

/// Lowercase hex, for pins.
enum Hex {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Accepts lowercase digits only, so that one pin has one spelling.
    static func decode(_ text: String) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count / 2)
        var index = 0
        while index < characters.count {
            guard let high = value(characters[index]), let low = value(characters[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func value(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
