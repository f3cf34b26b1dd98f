import Crypto

/// The secret a new agent needs to join, with the CA pin that lets it trust the cluster before
/// it reveals that secret. Written as
///
///     flt1.<token id>.<secret>.<CA pin>
///
/// * `flt1`: the format and its version;
/// * token id: 6 characters `[a-z0-9]`, not secret (it names the token, like kubeadm's
///   `[a-z0-9]{6}` token id);
/// * secret: 32 characters `[a-z0-9]`, about 165 bits (kubeadm uses 16 characters, ~82 bits);
/// * CA pin: 64 lowercase hex digits, the SHA-256 of the CA certificate's SubjectPublicKeyInfo
///   (``ClusterCAPin``; kubeadm passes the same hash as `--discovery-token-ca-cert-hash sha256:…`).
///
/// All of it fits in one shell word with no quoting. The joining agent first checks that the
/// server's CA has the pinned key (``ClusterPeerVerifier/verifyJoinTarget(presentedChainDER:pin:now:)``),
/// then sends the id and the secret; the server compares the secret in constant time
/// (``authenticates(id:secret:)``).
///
/// `description` leaves the secret out, so that a token interpolated into a log line does not
/// leak; ``encoded`` is the whole token.
public struct JoinToken: Sendable, CustomStringConvertible {
    /// The format tag and version, the first part.
    public static let formatPrefix = "flt1"
    /// Characters of the token id.
    public static let idLengthCharacters = 6
    /// Characters of the secret.
    public static let secretLengthCharacters = 32
    /// The alphabet of the id and the secret: lowercase letters and digits.
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// The token id (not secret).
    public let id: String
    /// The secret.
    public let secret: String
    /// The pin of the cluster CA.
    public let caPin: ClusterCAPin

    /// A new token for the CA with `caPin`, from the system's cryptographic generator.
    public static func generate(caPin: ClusterCAPin) -> JoinToken {
        var generator = SystemRandomNumberGenerator()
        return generate(caPin: caPin, using: &generator)
    }

    /// A new token from `generator` (tests pass a seeded one; anything else must be a CSPRNG).
    /// Each character is drawn uniformly: `next(upperBound:)` rejects rather than takes a modulo.
    public static func generate(caPin: ClusterCAPin, using generator: inout some RandomNumberGenerator) -> JoinToken {
        func draw(_ count: Int) -> String {
            let characters = (0..<count).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] }
            return String(decoding: characters, as: UTF8.self)
        }
        let id = draw(idLengthCharacters)
        return JoinToken(id: id, secret: draw(secretLengthCharacters), caPin: caPin)
    }

    private init(id: String, secret: String, caPin: ClusterCAPin) {
        self.id = id
        self.secret = secret
        self.caPin = caPin
    }

    /// Reads a token as written by ``encoded``; surrounding whitespace (a newline from a file)
    /// is ignored. Throws naming the first part that is wrong, never echoing the secret.
    public init(parsing text: String) throws(JoinTokenError) {
        let trimmed = text.trimmingASCIIWhitespace()
        guard !trimmed.isEmpty else { throw .empty }
        let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4 else { throw .wrongPartCount(found: parts.count) }
        guard parts[0] == Self.formatPrefix else { throw .unknownFormat(found: String(parts[0].prefix(8))) }
        guard Self.isToken(parts[1], length: Self.idLengthCharacters) else { throw .invalidID }
        guard Self.isToken(parts[2], length: Self.secretLengthCharacters) else { throw .invalidSecret }
        guard parts[3].utf8.count == ClusterCAPin.hexLengthCharacters, let pin = ClusterCAPin(parsing: parts[3]) else {
            throw .invalidCAPin
        }
        self.init(id: parts[1], secret: parts[2], caPin: pin)
    }

    /// The whole token, secret included: what `deployctl cluster token` shows.
    public var encoded: String {
        [Self.formatPrefix, id, secret, caPin.hex].joined(separator: ".")
    }

    /// The token with its secret elided, for logs.
    public var description: String {
        "\(Self.formatPrefix).\(id).<secret>.\(caPin.hex)"
    }

    /// Whether a joining agent's `id` and `secret` are this token's. The secret is compared in
    /// constant time (swift-crypto's `SymmetricKey` equality, BoringSSL's `CRYPTO_memcmp`), so
    /// the time an answer takes says nothing about how much of a guess was right; the id is a
    /// name, compared plainly.
    public func authenticates(id presentedID: String, secret presentedSecret: String) -> Bool {
        let secretMatches =
            SymmetricKey(data: Array(presentedSecret.utf8)) == SymmetricKey(data: Array(secret.utf8))
        return secretMatches && presentedID == id
    }

    private static func isToken(_ part: String, length: Int) -> Bool {
        part.utf8.count == length && part.utf8.allSatisfy { alphabet.contains($0) }
    }
}

extension String {
    /// Without leading and trailing spaces, tabs, carriage returns and newlines.
    fileprivate func trimmingASCIIWhitespace() -> String {
        let whitespace: Set<Character> = [" ", "\t", "\n", "\r"]
        guard let first = firstIndex(where: { !whitespace.contains($0) }),
            let last = lastIndex(where: { !whitespace.contains($0) })
        else { return "" }
        return String(self[first...last])
    }
}
