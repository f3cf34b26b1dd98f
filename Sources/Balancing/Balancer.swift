import Synchronization

/// Chooses a backend for each connection or request, safe to call from any thread (SwiftNIO
/// event loops included): the state sits behind one `Mutex`, held for O(log n) per pick.
///
/// ```swift
/// let balancer = try Balancer(BalancerConfiguration(strategy: .leastOutstanding), backends: backends)
/// guard let lease = balancer.pick() else { /* no backend: refuse the connection */ }
/// connect(to: lease.backend.address, lease.backend.port) {
///     case .failed: lease.recordFailure(); lease.finish()
///     case .answered: lease.recordSuccess()   // and lease.finish() when the connection closes
/// }
/// ```
///
/// Follow the catalog with `update(backends:)`: O(n) (a rebuilt ring for `consistent-hash`),
/// keeping what it knows about backends that stay.
public final class Balancer: Sendable {
    /// The configuration it was made with.
    public let configuration: BalancerConfiguration
    private let core: Mutex<BalancerCore>

    /// A balancer over `backends`. `seed` fixes its random choices (tests, simulations); nil
    /// takes one from the system's generator. Throws every problem with the configuration or
    /// the backends.
    public init(
        _ configuration: BalancerConfiguration, backends: [Backend] = [], seed: UInt64? = nil
    ) throws(BalancingError) {
        let problems = configuration.problems
        guard problems.isEmpty else { throw .invalid(problems) }
        var core = BalancerCore(configuration: configuration, seed: seed ?? UInt64.random(in: .min ... .max))
        try core.update(backends: backends)
        self.configuration = configuration
        self.core = Mutex(core)
    }

    /// Chooses a backend and counts a request in flight on it until the lease finishes; nil
    /// when there is no backend. `key` matters to `consistent-hash` only (see
    /// `pick(keyHash:now:)`); `now` returns backends whose ejection is over.
    public func pick(key: String? = nil, now: ContinuousClock.Instant = .now) -> Lease? {
        pick(keyHash: key.map(StableHash.hash), now: now)
    }

    /// `pick(key:now:)` with the key already hashed (`StableHash.hash(bytes:)` of a client
    /// address, say). Under `consistent-hash` without a key, a random ring position is used:
    /// keyless requests spread like `random`, within the load bound.
    ///
    /// `excluding`: backend ids not to pick, for a retry after they failed; nil when no
    /// eligible backend is left besides them. A retry goes where the strategy would send it
    /// among the rest (under `consistent-hash`, to the next owner on the ring from the key).
    public func pick(keyHash: UInt64?, excluding: Set<String> = [], now: ContinuousClock.Instant = .now) -> Lease? {
        guard let (reference, backend) = core.withLock({ $0.pick(keyHash: keyHash, excluding: excluding, now: now) }) else {
            return nil
        }
        return Lease(balancer: self, backend: backend, reference: reference)
    }

    /// Replaces the backend set, keeping the state of backends whose id stays (requests in
    /// flight, failures and ejection, turn). On error nothing changes.
    public func update(backends: [Backend]) throws(BalancingError) {
        try core.withLock { (core: inout BalancerCore) throws(BalancingError) in
            try core.update(backends: backends)
        }
    }

    /// The current backends, in the order last given.
    public var backends: [Backend] {
        core.withLock { $0.slots.map(\.backend) }
    }

    /// Each backend's load and ejection state, in the order last given.
    public func status() -> [BackendStatus] {
        core.withLock { $0.status() }
    }

    /// Whether every backend is ejected, so that picks go to all of them.
    public var isPanicking: Bool {
        core.withLock { $0.isPanicking }
    }

    /// Ring points per backend id under `consistent-hash` (empty otherwise).
    public func ringPointCounts() -> [String: Int] {
        core.withLock { $0.ringPointCounts() }
    }

    func finish(_ reference: SlotReference) {
        core.withLock { $0.finish(reference) }
    }

    func record(success: Bool, for reference: SlotReference, now: ContinuousClock.Instant) -> Bool {
        core.withLock { $0.record(success: success, for: reference, now: now) }
    }
}

/// One request (or connection) on a chosen backend, counted in flight until `finish()`.
///
/// Finishing is idempotent and safe from any thread, also after the backend left the set.
/// A lease released without `finish()` finishes when it is deinitialized, so that a forgotten
/// one cannot leave a backend looking busy forever; finish explicitly all the same, when the
/// request really ends.
public final class Lease: Sendable {
    /// The backend to connect to.
    public let backend: Backend
    let reference: SlotReference
    private let balancer: Balancer
    private let finished = Atomic<Bool>(false)

    init(balancer: Balancer, backend: Backend, reference: SlotReference) {
        self.balancer = balancer
        self.backend = backend
        self.reference = reference
    }

    deinit {
        finish()
    }

    /// Ends the request. Only the first call counts.
    public func finish() {
        guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        balancer.finish(reference)
    }

    /// Whether `finish()` was called.
    public var isFinished: Bool {
        finished.load(ordering: .acquiring)
    }

    /// The backend served (for the L4 proxy: its first byte came back): ends its failure
    /// streak.
    public func recordSuccess(now: ContinuousClock.Instant = .now) {
        _ = balancer.record(success: true, for: reference, now: now)
    }

    /// The backend failed (for the L4 proxy: connecting was refused, reset or timed out):
    /// one more in its failure streak, which may eject it. Report each attempt once.
    /// Returns whether this failure ejected the backend (for a log line or a metric).
    @discardableResult
    public func recordFailure(now: ContinuousClock.Instant = .now) -> Bool {
        balancer.record(success: false, for: reference, now: now)
    }
}
