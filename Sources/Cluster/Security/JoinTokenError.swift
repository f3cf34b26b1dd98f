/// Why a join token was refused when read. Messages name the part at fault and how to get a good
/// token; none repeats the token, so none leaks a secret into a log.
public enum JoinTokenError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Nothing was given.
    case empty
    /// Not four dot-separated parts.
    case wrongPartCount(found: Int)
    /// The first part is not `flt1` (`found`: at most its first 8 characters).
    case unknownFormat(found: String)
    /// The token id is not 6 characters `[a-z0-9]`.
    case invalidID
    /// The secret is not 32 characters `[a-z0-9]`.
    case invalidSecret
    /// The CA pin is not 64 lowercase hex digits.
    case invalidCAPin

    /// What to do about any of them.
    static let remedy = "; get a new one with `deployctl cluster token`"

    /// One line, naming the part at fault.
    public var description: String {
        let problem: String
        switch self {
        case .empty:
            problem = "the token is empty"
        case .wrongPartCount(let found):
            problem = "expected flt1.<token id>.<secret>.<CA pin>, four parts separated by dots, found \(found)"
        case .unknownFormat(let found):
            problem = "starts with \"\(found)\", expected \"\(JoinToken.formatPrefix)\""
        case .invalidID:
            problem = "the token id must be \(JoinToken.idLengthCharacters) characters [a-z0-9]"
        case .invalidSecret:
            problem = "the secret must be \(JoinToken.secretLengthCharacters) characters [a-z0-9]"
        case .invalidCAPin:
            problem = "the CA pin must be \(ClusterCAPin.hexLengthCharacters) lowercase hex digits "
                + "(the SHA-256 of the cluster CA's public key)"
        }
        return "join token: " + problem + Self.remedy
    }
}
