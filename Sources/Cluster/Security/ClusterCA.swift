import Crypto
import Foundation
import SwiftASN1
import X509

/// The cluster's certificate authority, made by the first server at bootstrap (DESIGN.md §7,
/// §10): a P-256 key and a self-signed CA certificate. Every agent trusts this one certificate
/// and nothing else on the cluster port; node certificates it signs are the only way in.
///
/// The private key stays inside this value (and `ca-key.pem`, mode 0600); what leaves is the
/// certificate and its ``pin``.
public struct ClusterCA: Sendable {
    /// The self-signed CA certificate: the trust root every agent holds.
    public let certificate: Certificate
    /// The CA's signing key. Internal: only issuing uses it (and tests that forge certificates).
    let privateKey: P256.Signing.PrivateKey
    /// The pin that join tokens carry: SHA-256 of the CA's SubjectPublicKeyInfo.
    public let pin: ClusterCAPin

    /// The file the CA certificate is saved in (mode 0644).
    public static let certificateFileName = "ca.pem"
    /// The file the CA private key is saved in (mode 0600).
    public static let privateKeyFileName = "ca-key.pem"
    /// How long a new CA is valid: ten years, as kubeadm's CA.
    public static let defaultValidity: Duration = .seconds(10 * 365 * 24 * 3600)
    /// How far before "now" new certificates start, so that a peer whose clock is a little behind
    /// does not refuse a fresh certificate as not yet valid (kubeadm's `CertificateBackdate`).
    public static let clockSkewAllowance: Duration = .seconds(5 * 60)
    /// The prefix of the CA's common name; the cluster id follows it.
    public static let commonNamePrefix = "Flotilla cluster CA "

    /// Makes a new CA for the cluster `clusterID` with a fresh P-256 key: subject
    /// `CN=Flotilla cluster CA <clusterID>`, valid from `now` minus ``clockSkewAllowance`` for
    /// `validity`.
    public static func create(
        clusterID: String, now: Date, validity: Duration = defaultValidity
    ) throws(ClusterSecurityError) -> ClusterCA {
        let commonName = commonNamePrefix + clusterID
        guard !clusterID.isEmpty else { throw .invalidClusterID(clusterID, reason: "must not be empty") }
        // RFC 5280 Appendix A.1: ub-common-name is 64 characters.
        guard commonName.count <= 64 else {
            throw .invalidClusterID(clusterID, reason: "longer than \(64 - commonNamePrefix.count) characters")
        }
        guard validity >= .seconds(1) else { throw .invalidLifetime(validity) }
        let key = P256.Signing.PrivateKey()
        let signingKey = Certificate.PrivateKey(key)
        let notValidBefore = now.addingTimeInterval(-clockSkewAllowance.timeIntervalSeconds)
        let certificate = try encoding("the CA certificate") {
            let name = try DistinguishedName { CommonName(commonName) }
            let extensions = try Certificate.Extensions {
                // RFC 5280 §4.2.1.9: critical in CA certificates. Path length 0: this CA signs
                // node certificates only, never another CA.
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                // §4.2.1.3: keyCertSign to sign certificates, cRLSign for revocation lists.
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                // §4.2.1.2: MUST appear in CA certificates; method (1), SHA-1 of the public key.
                SubjectKeyIdentifier(hash: signingKey.publicKey)
            }
            var random = SystemRandomNumberGenerator()
            return try Certificate(
                version: .v3,
                serialNumber: randomSerialNumber(using: &random),
                publicKey: signingKey.publicKey,
                notValidBefore: notValidBefore,
                notValidAfter: notValidBefore.addingTimeInterval(validity.timeIntervalSeconds),
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: signingKey)
        }
        return try ClusterCA(certificate: certificate, privateKey: key)
    }

    /// Pairs a CA certificate with its key, checking that they belong together and that the
    /// certificate is a CA.
    init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) throws(ClusterSecurityError) {
        guard certificate.publicKey == Certificate.PublicKey(privateKey.publicKey) else {
            throw .keyDoesNotMatchCertificate(keyPath: Self.privateKeyFileName, certificatePath: Self.certificateFileName)
        }
        guard certificate.isCertificateAuthority else {
            throw .unreadableFile(path: Self.certificateFileName, reason: "\(certificate.subject) is not a CA certificate")
        }
        self.certificate = certificate
        self.privateKey = privateKey
        self.pin = try ClusterCAPin(certificate: certificate)
    }

    /// A verifier that accepts node certificates of this CA.
    public var peerVerifier: ClusterPeerVerifier { ClusterPeerVerifier(caCertificate: certificate) }

    /// A serial number of exactly 20 bytes, positive and random: RFC 5280 §4.1.2.2 allows at
    /// most 20 octets and requires a positive integer, so the top bit is cleared (no sign byte
    /// needed) and the next one set (no leading zero to strip), leaving 158 random bits, well
    /// over the 64 the CA/Browser Forum asks for.
    static func randomSerialNumber(using generator: inout some RandomNumberGenerator) -> Certificate.SerialNumber {
        var bytes = (0..<20).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        bytes[0] = (bytes[0] & 0x7f) | 0x40
        return Certificate.SerialNumber(bytes: bytes)
    }
}

/// Runs `body`, turning whatever swift-certificates or swift-asn1 throws into
/// ``ClusterSecurityError/encoding(reason:)`` naming `what` was being made.
func encoding<Value>(_ what: String, _ body: () throws -> Value) throws(ClusterSecurityError) -> Value {
    do {
        return try body()
    } catch let error as ClusterSecurityError {
        throw error
    } catch {
        throw .encoding(reason: "\(what): \(error)")
    }
}
