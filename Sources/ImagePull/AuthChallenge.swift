/// One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1): a scheme and its
/// parameters, e.g. `Bearer realm="https://auth.example/token",service="reg",scope="repository:web:pull"`.
struct AuthChallenge: Sendable, Hashable {
    /// Lowercased: `bearer`, `basic`.
    var scheme: String
    /// Parameter names lowercased; values unquoted.
    var parameters: [String: String]

    /// Every challenge in a header value; a header may carry several (`Basic realm="r", Bearer realm="t"`).
    static func parse(_ header: String) -> [AuthChallenge] {
        var challenges: [AuthChallenge] = []
        var scanner = Scanner(Array(header.utf8))
        while true {
            scanner.skip { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\t") }
            guard let scheme = scanner.token() else { break }
            var challenge = AuthChallenge(scheme: scheme.lowercased(), parameters: [:])
            // Parameters until the next token that is not followed by `=` (the next scheme).
            while true {
                scanner.skip { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\t") }
                let mark = scanner.position
                guard let name = scanner.token() else { break }
                scanner.skip { $0 == UInt8(ascii: " ") }
                guard scanner.consume(UInt8(ascii: "=")) else {
                    scanner.position = mark
                    break
                }
                scanner.skip { $0 == UInt8(ascii: " ") }
                challenge.parameters[name.lowercased()] = scanner.quoted() ?? scanner.token() ?? ""
            }
            challenges.append(challenge)
        }
        return challenges
    }

    private struct Scanner {
        let bytes: [UInt8]
        var position = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func skip(while predicate: (UInt8) -> Bool) {
            while position < bytes.count && predicate(bytes[position]) { position += 1 }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        /// An RFC 9110 token (tchar+); token68 padding `=` is left for `consume`.
        mutating func token() -> String? {
            let start = position
            let separators = Array("\"(),/:;<=>?@[\\]{} \t".utf8)
            skip { !separators.contains($0) && $0 > 0x20 && $0 < 0x7f }
            // `/` is allowed in unquoted values some registries send (realm=https://…) only after `=`,
            // which `quoted` covers; here a token stops at it.
            return position > start ? String(decoding: bytes[start..<position], as: UTF8.self) : nil
        }

        /// A quoted-string with backslash escapes, without its quotes.
        mutating func quoted() -> String? {
            guard consume(UInt8(ascii: "\"")) else { return nil }
            var value: [UInt8] = []
            while position < bytes.count {
                let byte = bytes[position]
                position += 1
                if byte == UInt8(ascii: "\"") { break }
                if byte == UInt8(ascii: "\\"), position < bytes.count {
                    value.append(bytes[position])
                    position += 1
                    continue
                }
                value.append(byte)
            }
            return String(decoding: value, as: UTF8.self)
        }
    }
}
