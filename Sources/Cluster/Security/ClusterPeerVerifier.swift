import Foundation
import NIOSSL
import SwiftASN1
import X509

/// Decides whether a certificate presented on the cluster port belongs to a node of this
/// cluster: RFC 5280 §6.1 path validation cut down to the one shape this cluster has, a node
/// certificate signed directly by the cluster CA. Synchronous and pure (time is an input), so
/// the transport can call it from a TLS verification callback and tests can move the clock.
public struct ClusterPeerVerifier: Sendable {
    /// The one trusted root.
    public let caCertificate: Certificate

    /// Extensions this verifier processes; any other marked critical is refused (§4.2).
    static let processedExtensions: Set<ASN1ObjectIdentifier> = [
        .X509ExtensionID.basicConstraints, .X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage,
        .X509ExtensionID.subjectAlternativeName, .X509ExtensionID.subjectKeyIdentifier,
        .X509ExtensionID.authorityKeyIdentifier,
    ]

    /// A verifier trusting `caCertificate` only.
    public init(caCertificate: Certificate) {
        self.caCertificate = caCertificate
    }

    /// Checks the certificate a peer presented (DER, as a TLS stack hands it over); when
    /// `expectedNodeName` is given, also that the certificate names that node.
    public func verify(
        peerCertificateDER: [UInt8], expectedNodeName: String?, now: Date
    ) -> Result<VerifiedPeer, PeerCertificateRejection> {
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: peerCertificateDER)
        } catch {
            return .failure(.unreadable(reason: "\(error)"))
        }
        return verify(peerCertificate: certificate, expectedNodeName: expectedNodeName, now: now)
    }

    /// The same for the chain swift-nio-ssl hands a custom verification callback (leaf first);
    /// only the leaf is looked at, as the root is ours and intermediates do not exist here.
    public func verify(
        peerCertificates: [NIOSSLCertificate], expectedNodeName: String?, now: Date
    ) -> Result<VerifiedPeer, PeerCertificateRejection> {
        guard let leaf = peerCertificates.first else { return .failure(.noCertificate) }
        do {
            return verify(peerCertificateDER: try leaf.toDERBytes(), expectedNodeName: expectedNodeName, now: now)
        } catch {
            return .failure(.unreadable(reason: "\(error)"))
        }
    }

    /// The checks, in the order that gives the most useful message: who signed it before when,
    /// and when before for whom.
    public func verify(
        peerCertificate certificate: Certificate, expectedNodeName: String?, now: Date
    ) -> Result<VerifiedPeer, PeerCertificateRejection> {
        let holder = certificate.holderName
        // A CA, and in particular our own CA certificate, is not a node: the CA's key would
        // otherwise be enough to pose as any node without a node certificate.
        guard !certificate.isCertificateAuthority, certificate != caCertificate else {
            return .failure(.notANodeCertificate(holder: certificate.subject.description))
        }
        // §6.1.3 (a)(4): the issuer must be the trust anchor's name...
        guard certificate.issuer == caCertificate.subject else {
            return .failure(.signedByAnotherCA(holder: holder, issuer: certificate.issuer.description))
        }
        // ...and (a)(1): its key must have made the signature.
        guard caCertificate.publicKey.isValidSignature(certificate.signature, for: certificate) else {
            return .failure(.signatureInvalid(holder: holder, issuer: certificate.issuer.description))
        }
        for processed in certificate.extensions where processed.critical && !Self.processedExtensions.contains(processed.oid) {
            return .failure(.unhandledCriticalExtension(holder: holder, oid: processed.oid))
        }
        // §6.1.3 (a)(2), inclusive at both ends (§4.1.2.5); the anchor's own period too, as
        // OpenSSL and Go check it.
        guard caCertificate.notValidBefore <= now, now <= caCertificate.notValidAfter else {
            return .failure(
                .caNotValid(notValidBefore: caCertificate.notValidBefore, notValidAfter: caCertificate.notValidAfter, now: now))
        }
        guard certificate.notValidBefore <= now else {
            return .failure(.notYetValid(holder: holder, notValidBefore: certificate.notValidBefore, now: now))
        }
        guard now <= certificate.notValidAfter else {
            return .failure(.expired(holder: holder, notValidAfter: certificate.notValidAfter, now: now))
        }
        if let missing = Self.missingUsage(of: certificate) {
            return .failure(.missingUsage(holder: holder, missing: missing))
        }
        let names = certificate.dnsNames
        guard let nodeName = names.first else { return .failure(.namesNoNode(holder: certificate.subject.description)) }
        // RFC 6125 §6.4.4: with a dNSName present, the common name is not looked at.
        if let expectedNodeName, !names.contains(where: { NodeName.same($0, expectedNodeName) }) {
            return .failure(.wrongNode(expected: expectedNodeName, presented: names))
        }
        return .success(VerifiedPeer(nodeName: nodeName, certificate: certificate))
    }

    /// One certificate serves both ends of mutual TLS, so it needs both extended usages
    /// (§4.2.1.12) and, when keyUsage is present, digitalSignature (§4.2.1.3).
    static func missingUsage(of certificate: Certificate) -> String? {
        let extendedUsage: ExtendedKeyUsage?
        let usage: KeyUsage?
        do {
            extendedUsage = try certificate.extensions.extendedKeyUsage
            usage = try certificate.extensions.keyUsage
        } catch {
            return "readable key usage extensions (\(error))"
        }
        guard let extendedUsage else { return "extendedKeyUsage (serverAuth, clientAuth)" }
        if !extendedUsage.contains(.serverAuth) { return "extendedKeyUsage serverAuth" }
        if !extendedUsage.contains(.clientAuth) { return "extendedKeyUsage clientAuth" }
        if let usage, !usage.digitalSignature { return "keyUsage digitalSignature" }
        return nil
    }
}

/// A peer certificate that passed ``ClusterPeerVerifier``.
public struct VerifiedPeer: Sendable, Hashable {
    /// The node the certificate names (its first dNSName).
    public var nodeName: String
    /// The certificate itself.
    public var certificate: Certificate
}
