import Foundation
import SwiftASN1

/// Why a certificate presented on the cluster port was refused. The message names the
/// certificate's holder and what failed, for the agent's log (issue 13: "say why").
public enum PeerCertificateRejection: Error, Sendable, Hashable, CustomStringConvertible {
    /// The peer presented no certificate.
    case noCertificate
    /// The bytes are not a DER X.509 certificate.
    case unreadable(reason: String)
    /// A CA certificate (this cluster's or any) where a node's was expected.
    case notANodeCertificate(holder: String)
    /// Issued by a CA of another name.
    case signedByAnotherCA(holder: String, issuer: String)
    /// Names this cluster's CA as its issuer, but the CA's key did not sign it.
    case signatureInvalid(holder: String, issuer: String)
    /// Carries a critical extension this verifier does not process; RFC 5280 §4.2 requires
    /// refusing such a certificate.
    case unhandledCriticalExtension(holder: String, oid: ASN1ObjectIdentifier)
    /// The cluster CA itself is outside its validity period.
    case caNotValid(notValidBefore: Date, notValidAfter: Date, now: Date)
    /// Not valid until `notValidBefore` (or the local clock is behind).
    case notYetValid(holder: String, notValidBefore: Date, now: Date)
    /// Valid only until `notValidAfter`.
    case expired(holder: String, notValidAfter: Date, now: Date)
    /// Lacks a usage a node certificate must have (`missing` names it).
    case missingUsage(holder: String, missing: String)
    /// Carries no dNSName, so names no node.
    case namesNoNode(holder: String)
    /// Names another node than the one expected.
    case wrongNode(expected: String, presented: [String])
    /// None of the certificates the server presented has the key the join token pins.
    case caPinMismatch(pinned: ClusterCAPin, presented: [ClusterCAPin])

    /// One line for the log.
    public var description: String {
        switch self {
        case .noCertificate:
            return "the peer presented no certificate"
        case .unreadable(let reason):
            return "the peer's certificate is not a DER X.509 certificate: \(reason)"
        case .notANodeCertificate(let holder):
            return "the peer presented a CA certificate (\(holder)) instead of a node certificate"
        case .signedByAnotherCA(let holder, let issuer):
            return "certificate for node \(holder) is signed by another CA (issuer \(issuer))"
        case .signatureInvalid(let holder, let issuer):
            return "certificate for node \(holder) names \(issuer) as its issuer, but its signature does not verify "
                + "with that CA's key: it is signed by another CA of the same name, or forged"
        case .unhandledCriticalExtension(let holder, let oid):
            return "certificate for node \(holder) has a critical extension \(oid) this cluster does not process"
        case .caNotValid(let notBefore, let notAfter, let now):
            return "the cluster CA is valid from \(Timestamp.text(notBefore)) to \(Timestamp.text(notAfter)), "
                + "not at \(Timestamp.text(now))"
        case .notYetValid(let holder, let notBefore, let now):
            return "certificate for node \(holder) is not valid until \(Timestamp.text(notBefore)) "
                + "(now \(Timestamp.text(now)); is a clock behind?)"
        case .expired(let holder, let notAfter, let now):
            return "certificate for node \(holder) expired at \(Timestamp.text(notAfter)) (now \(Timestamp.text(now)))"
        case .missingUsage(let holder, let missing):
            return "certificate for node \(holder) lacks \(missing)"
        case .namesNoNode(let holder):
            return "certificate \(holder) names no node (no dNSName in subjectAltName)"
        case .wrongNode(let expected, let presented):
            return "certificate for node \(presented.joined(separator: ", ")) presented where node \(expected) was expected"
        case .caPinMismatch(let pinned, let presented):
            let seen = presented.isEmpty ? "none" : presented.map(\.description).joined(separator: ", ")
            return "the server's CA does not match the join token's pin \(pinned) (presented keys: \(seen)): "
                + "the token is for another cluster, or something is in the middle"
        }
    }
}
