/// The application protocols (TLS ALPN) a cluster port speaks. One port per agent serves all of
/// them; the client names the one it wants in its handshake.
public enum ClusterProtocol {
    /// Raft traffic between members: both ends present node certificates of the cluster CA.
    public static let peer = "flotilla-peer/1"
    /// A joining agent without a certificate yet: one `JoinRequest`, one `JoinResponse`. The
    /// joining side checks the server against its token's CA pin before it sends the secret.
    public static let join = "flotilla-join/1"
    /// A member renewing its certificate: it presents the current one (still valid) and sends
    /// one `RenewRequest` for a new key; the answer is a `JoinResponse`.
    public static let renew = "flotilla-renew/1"

    /// A server forming a new cluster (`--bootstrap-expect`) with the others: it presents its
    /// certificate of the operator's CA, sends one `FormationRequest`, gets one
    /// `FormationResponse`.
    public static let form = "flotilla-form/1"

    /// Every protocol a server offers.
    static let all = [peer, join, renew, form]
}
