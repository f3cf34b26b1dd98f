import Crypto
import Foundation
import SwiftASN1
import X509

extension ClusterCA {
    /// How long a node certificate lives unless told otherwise: a day. Short, so that a node
    /// removed from the cluster loses access within a day without revocation lists; agents renew
    /// at two-thirds of it (``NodeCredentials/needsRenewal(now:)``).
    public static let defaultNodeCertificateLifetime: Duration = .seconds(24 * 3600)

    /// Issues a certificate for node `nodeName` from the node's own request, so that the node's
    /// private key never leaves the node. The request's signature is checked first (RFC 2986 §3:
    /// it proves the sender holds the key), then that it asks for `nodeName` (the name the
    /// caller approved: from the join, or from the peer's current certificate on renewal).
    ///
    /// The certificate (RFC 5280 §4.2): CN and the one dNSName are `nodeName`, plus an
    /// iPAddress name for each of `ipAddresses`; extendedKeyUsage serverAuth and clientAuth (one
    /// certificate for both ends of mutual TLS); keyUsage digitalSignature, critical;
    /// authorityKeyIdentifier of this CA; a random 20-byte serial; valid from `now` minus
    /// ``clockSkewAllowance`` for `lifetime`, but never past the CA's own end.
    public func issueNodeCertificate(
        request: CertificateSigningRequest, nodeName: String, ipAddresses: [String] = [], now: Date,
        lifetime: Duration = defaultNodeCertificateLifetime
    ) throws(ClusterSecurityError) -> Certificate {
        let requestedName = request.subject.commonName
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw .requestSignatureInvalid(subject: requestedName.map { "node \($0)" } ?? request.subject.description)
        }
        guard P256.Signing.PublicKey(request.publicKey) != nil else {
            throw .unsupportedKey(found: String(describing: request.publicKey))
        }
        try NodeName.validate(nodeName)
        guard let requestedName, NodeName.same(requestedName, nodeName) else {
            throw .requestNameMismatch(approvedNodeName: nodeName, requestedSubject: request.subject.description)
        }
        return try signNodeCertificate(
            publicKey: request.publicKey, nodeName: nodeName, ipAddresses: ipAddresses, now: now, lifetime: lifetime)
    }

    /// ``issueNodeCertificate(request:nodeName:ipAddresses:now:lifetime:)`` for a request as it
    /// arrives on the wire (DER).
    public func issueNodeCertificate(
        requestDER: [UInt8], nodeName: String, ipAddresses: [String] = [], now: Date,
        lifetime: Duration = defaultNodeCertificateLifetime
    ) throws(ClusterSecurityError) -> Certificate {
        let request: CertificateSigningRequest
        do {
            request = try CertificateSigningRequest(derEncoded: requestDER)
        } catch {
            throw .unreadableRequest(reason: "\(error)")
        }
        return try issueNodeCertificate(
            request: request, nodeName: nodeName, ipAddresses: ipAddresses, now: now, lifetime: lifetime)
    }

    /// Makes credentials for a node on the CA's own host (the bootstrapping server, and tests):
    /// a fresh key, its request, and the certificate, as a joining node would get them.
    public func issueNodeCredentials(
        nodeName: String, ipAddresses: [String] = [], now: Date, lifetime: Duration = defaultNodeCertificateLifetime
    ) throws(ClusterSecurityError) -> NodeCredentials {
        let request = try NodeCertificateRequest(nodeName: nodeName)
        let certificate = try issueNodeCertificate(
            request: request.request, nodeName: nodeName, ipAddresses: ipAddresses, now: now, lifetime: lifetime)
        return try request.credentials(issuedCertificateDER: PEMFiles.der(certificate), caCertificate: self.certificate, now: now)
    }

    /// Signs a node certificate for `publicKey` without looking at any request. Internal: the
    /// public way in checks a request first. `adjustExtensions` may change the extensions, for
    /// tests that need a certificate this CA would never issue.
    func signNodeCertificate(
        publicKey: Certificate.PublicKey, nodeName: String, ipAddresses: [String], now: Date, lifetime: Duration,
        adjustExtensions: (inout Certificate.Extensions) throws -> Void = { _ in }
    ) throws(ClusterSecurityError) -> Certificate {
        guard lifetime >= .seconds(1) else { throw .invalidLifetime(lifetime) }
        guard certificate.notValidBefore <= now, now <= certificate.notValidAfter else {
            throw .caNotValid(notValidBefore: certificate.notValidBefore, notValidAfter: certificate.notValidAfter, now: now)
        }
        var alternativeNames: [GeneralName] = [.dnsName(nodeName)]
        for text in ipAddresses {
            alternativeNames.append(.ipAddress(ASN1OctetString(contentBytes: try IPAddressBytes.parse(text)[...])))
        }
        let notValidBefore = max(
            now.addingTimeInterval(-Self.clockSkewAllowance.timeIntervalSeconds), certificate.notValidBefore)
        // A certificate outliving its CA would be refused anyway once the CA expires; end it
        // with the CA so that renewal, not a confusing handshake failure, is what happens.
        let notValidAfter = min(now.addingTimeInterval(lifetime.timeIntervalSeconds), certificate.notValidAfter)
        let signingKey = Certificate.PrivateKey(privateKey)
        let caKeyIdentifier = try encoding("the CA's subjectKeyIdentifier") {
            try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
                ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier
        }
        return try encoding("the certificate for node \(nodeName)") {
            var extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                // RFC 5280 §4.2.1.3; ECDSA in TLS 1.2 and 1.3 signs the handshake, so
                // digitalSignature is the one usage a node's key needs.
                Critical(KeyUsage(digitalSignature: true))
                // §4.2.1.12: server for the side that accepts, client for the side that dials.
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectKeyIdentifier(hash: publicKey)
                // §4.2.1.1: MUST be present in certificates a CA generates, for path building.
                AuthorityKeyIdentifier(keyIdentifier: caKeyIdentifier)
                SubjectAlternativeNames(alternativeNames)
            }
            try adjustExtensions(&extensions)
            var random = SystemRandomNumberGenerator()
            return try Certificate(
                version: .v3,
                serialNumber: Self.randomSerialNumber(using: &random),
                publicKey: publicKey,
                notValidBefore: notValidBefore,
                notValidAfter: notValidAfter,
                issuer: certificate.subject,
                subject: try DistinguishedName { CommonName(nodeName) },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: signingKey)
        }
    }
}
