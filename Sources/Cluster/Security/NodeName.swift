/// Rules for the names that go into node certificates. A node name is both the certificate's
/// common name and its one `dNSName`, so it must be a host name: RFC 5280 §4.2.1.6 requires the
/// "preferred name syntax" of RFC 1034 §3.5 as relaxed by RFC 1123 §2.1 (labels of letters,
/// digits and hyphens, 1 to 63 characters, not starting or ending with a hyphen, separated by
/// dots). It is also capped at 64 characters, RFC 5280's upper bound for a common name
/// (`ub-common-name`, Appendix A.1).
public enum NodeName {
    /// The longest node name a certificate can carry as its common name.
    public static let maximumLengthCharacters = 64

    /// Throws, naming the first rule `name` breaks.
    public static func validate(_ name: String) throws(ClusterSecurityError) {
        guard !name.isEmpty else { throw .invalidNodeName(name, reason: "must not be empty") }
        guard name.utf8.count <= maximumLengthCharacters else {
            throw .invalidNodeName(name, reason: "longer than \(maximumLengthCharacters) characters")
        }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { throw .invalidNodeName(name, reason: "has an empty label (two dots, or a dot at an end)") }
            guard label.utf8.count <= 63 else { throw .invalidNodeName(name, reason: "has a label longer than 63 characters") }
            guard label.utf8.allSatisfy({ isLetterOrDigit($0) || $0 == UInt8(ascii: "-") }) else {
                throw .invalidNodeName(name, reason: "may hold only letters, digits, '-' and '.'")
            }
            guard label.first != "-", label.last != "-" else {
                throw .invalidNodeName(name, reason: "a label may not start or end with '-'")
            }
        }
    }

    /// Host names compare without regard to ASCII case (RFC 6125 §6.4.1).
    public static func same(_ left: String, _ right: String) -> Bool {
        left.lowercased() == right.lowercased()
    }

    private static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
