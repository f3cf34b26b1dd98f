/// How a balancer chooses a backend, spelled as a manifest writes it.
public enum Strategy: String, CaseIterable, Hashable, Sendable {
    /// Each backend in turn, skipping ejected ones. Weights are ignored.
    case roundRobin = "round-robin"
    /// A uniformly random backend. Weights are ignored.
    case random = "random"
    /// In turn, in proportion to weight, interleaved (earliest-deadline-first schedule).
    case weighted = "weighted"
    /// The backend with the fewest requests in flight; ties go to the one picked longest ago.
    case leastOutstanding = "least-outstanding"
    /// Of two distinct random backends, the one with fewer requests in flight (Mitzenmacher).
    case powerOfTwoChoices = "power-of-two-choices"
    /// The first backend clockwise of the key on a ring of points proportional to weight,
    /// skipping backends at their load bound (Mirrokni, Thorup and Zadimoghaddam).
    case consistentHash = "consistent-hash"

    /// The strategy spelled `name`, or an error that lists the valid spellings.
    public init(parsing name: String) throws(BalancingError) {
        guard let strategy = Strategy(rawValue: name) else { throw .unknownStrategy(name) }
        self = strategy
    }
}
