/// When to stop sending to a backend that keeps failing, and for how long (Envoy's outlier
/// detection, its consecutive-failure kind).
///
/// A backend is ejected after `consecutiveFailures` failures in a row; a success resets the
/// streak. The n-th ejection lasts `baseEjection × n`, at most `maximumEjection`, and the count n
/// drops by one for every `baseEjection` the backend then stays in (Envoy's
/// `base_ejection_time`, `max_ejection_time`). No ejection takes the number of ejected backends
/// above `maximumEjectedPercent` of the set, except that one backend may always be ejected
/// (Envoy's `always_eject_one_host`): our services commonly run 2 or 3 instances, where
/// Envoy's 10 % would never eject. If every backend ends up ejected anyway (one backend, or an
/// update that removed the healthy ones), picks go to all of them: panic mode, as Envoy does
/// below its panic threshold, because a maybe-failing backend beats certain failure.
public struct OutlierDetection: Hashable, Sendable {
    /// Failures in a row that eject a backend, at least 1. Envoy's `consecutive_5xx`.
    public var consecutiveFailures: Int
    /// Length of a first ejection; later ones are multiples of it.
    public var baseEjection: Duration
    /// The longest ejection.
    public var maximumEjection: Duration
    /// Most backends ejected at once, as a percentage of the set (rounded down; at least one).
    public var maximumEjectedPercent: Int

    /// Envoy's defaults (5 failures, 30 s, 300 s) except the ejected share: 50 %, not 10 %.
    public init(
        consecutiveFailures: Int = 5,
        baseEjection: Duration = .seconds(30),
        maximumEjection: Duration = .seconds(300),
        maximumEjectedPercent: Int = 50
    ) {
        self.consecutiveFailures = consecutiveFailures
        self.baseEjection = baseEjection
        self.maximumEjection = maximumEjection
        self.maximumEjectedPercent = maximumEjectedPercent
    }

    /// How many of `backendCount` backends may be ejected at once.
    func maximumEjected(of backendCount: Int) -> Int {
        max(1, backendCount * maximumEjectedPercent / 100)
    }

    var problems: [BalancingProblem] {
        var problems: [BalancingProblem] = []
        func add(_ field: String, _ message: String) {
            problems.append(BalancingProblem(path: "outlierDetection.\(field)", message: message))
        }
        if consecutiveFailures < 1 { add("consecutiveFailures", "\(consecutiveFailures) is below 1") }
        if baseEjection <= .zero { add("baseEjection", "\(baseEjection) is not positive") }
        if maximumEjection < baseEjection {
            add("maximumEjection", "\(maximumEjection) is shorter than baseEjection (\(baseEjection))")
        }
        if !(0...100).contains(maximumEjectedPercent) {
            add("maximumEjectedPercent", "\(maximumEjectedPercent) is outside 0...100")
        }
        return problems
    }
}

/// One backend's failure streak and ejection. Pure: time is passed in.
struct OutlierState: Hashable, Sendable {
    /// Failures since the last success (or return from ejection).
    private(set) var consecutiveFailures = 0
    /// When the current ejection ends; nil while the backend is in.
    private(set) var ejectedUntil: ContinuousClock.Instant?
    /// The ejection multiplier: ejections not yet forgiven.
    private(set) var ejections = 0
    /// When the last ejection ended, to forgive ejections as time in good standing passes.
    private var returnedAt: ContinuousClock.Instant?

    var isEjected: Bool { ejectedUntil != nil }

    mutating func recordSuccess() {
        consecutiveFailures = 0
    }

    /// Counts a failure; true when the streak has reached the threshold and the backend should
    /// be ejected (the caller decides whether the ejection budget allows it). Failures of an
    /// ejected backend (panic mode) are not counted: it is out already.
    mutating func recordFailure(_ policy: OutlierDetection) -> Bool {
        guard !isEjected else { return false }
        consecutiveFailures += 1
        return consecutiveFailures >= policy.consecutiveFailures
    }

    mutating func eject(now: ContinuousClock.Instant, _ policy: OutlierDetection) {
        if let returnedAt {
            // Forgive one ejection per base period spent in since the last one (Envoy
            // decrements its multiplier once per healthy interval).
            let periodsIn = (now - returnedAt) / policy.baseEjection
            if periodsIn >= 1 { ejections -= Int(min(periodsIn, Double(ejections))) }
        }
        ejections += 1
        ejectedUntil = now + min(policy.baseEjection * ejections, policy.maximumEjection)
    }

    /// Ends the ejection if it is over at `now`; true if it did.
    mutating func returnIfDue(now: ContinuousClock.Instant) -> Bool {
        guard let until = ejectedUntil, now >= until else { return false }
        ejectedUntil = nil
        returnedAt = until
        consecutiveFailures = 0
        return true
    }
}
