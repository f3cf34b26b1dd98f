import Foundation
import Raft

/// What went wrong making, loading, saving or issuing cluster certificates. Each message names
/// the file, the node or the field at fault and, where there is one, what to do about it.
public enum ClusterSecurityError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A system call on a certificate or key file failed.
    case systemCall(SystemCallError)
    /// A file was read but does not hold what it should (`reason` says what was wrong).
    case unreadableFile(path: String, reason: String)
    /// A private key file does not belong to the certificate stored beside it.
    case keyDoesNotMatchCertificate(keyPath: String, certificatePath: String)
    /// A node name that cannot be a certificate's DNS name (RFC 5280 §4.2.1.6, RFC 1123 §2.1).
    case invalidNodeName(String, reason: String)
    /// A cluster id too long or empty for the CA's common name.
    case invalidClusterID(String, reason: String)
    /// An IP address for a certificate that is neither IPv4 nor IPv6 text.
    case invalidIPAddress(String)
    /// A certificate signing request that could not be decoded.
    case unreadableRequest(reason: String)
    /// A certificate signing request whose signature does not verify with the key it carries:
    /// whoever sent it does not hold that key (RFC 2986 §3).
    case requestSignatureInvalid(subject: String)
    /// A request for a name other than the one the issuer approved.
    case requestNameMismatch(approvedNodeName: String, requestedSubject: String)
    /// A key that is not P-256 where only P-256 is accepted.
    case unsupportedKey(found: String)
    /// The cluster CA is outside its validity period, so anything it signs would be refused.
    case caNotValid(notValidBefore: Date, notValidAfter: Date, now: Date)
    /// A chain handed back by the issuer does not hold a certificate for this node's key.
    case issuedCertificateMismatch(reason: String)
    /// A requested lifetime that is zero, negative or shorter than a second.
    case invalidLifetime(Duration)
    /// swift-certificates refused to build or encode a certificate.
    case encoding(reason: String)

    /// One line, naming what is wrong and where.
    public var description: String {
        switch self {
        case .systemCall(let error):
            return error.description
        case .unreadableFile(let path, let reason):
            return "\"\(path)\": \(reason)"
        case .keyDoesNotMatchCertificate(let keyPath, let certificatePath):
            return "\"\(keyPath)\" is not the private key of the certificate in \"\(certificatePath)\""
        case .invalidNodeName(let name, let reason):
            return "node name \"\(name)\": \(reason)"
        case .invalidClusterID(let id, let reason):
            return "cluster id \"\(id)\": \(reason)"
        case .invalidIPAddress(let text):
            return "\"\(text)\" is not an IPv4 or IPv6 address"
        case .unreadableRequest(let reason):
            return "certificate signing request: \(reason)"
        case .requestSignatureInvalid(let subject):
            return "certificate signing request for \(subject): the signature does not verify with its public key"
        case .requestNameMismatch(let approved, let requested):
            return "certificate signing request names \(requested), but node \(approved) was approved"
        case .unsupportedKey(let found):
            return "only P-256 keys are accepted, found \(found)"
        case .caNotValid(let notBefore, let notAfter, let now):
            return "the cluster CA is valid from \(Timestamp.text(notBefore)) to \(Timestamp.text(notAfter)), "
                + "not at \(Timestamp.text(now))"
        case .issuedCertificateMismatch(let reason):
            return "issued certificate: \(reason)"
        case .invalidLifetime(let lifetime):
            return "certificate lifetime \(lifetime): must be at least one second"
        case .encoding(let reason):
            return "certificate encoding: \(reason)"
        }
    }
}

/// Dates in messages as RFC 3339 UTC, the way certificates' validity is usually shown.
enum Timestamp {
    static func text(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
