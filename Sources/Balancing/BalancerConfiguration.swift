/// How a balancer chooses and when it stops choosing a failing backend.
public struct BalancerConfiguration: Hashable, Sendable {
    /// The algorithm.
    public var strategy: Strategy
    /// When to eject a failing backend; nil never ejects.
    public var outlierDetection: OutlierDetection?
    /// `consistent-hash` only: the `c` of bounded-load consistent hashing, at least 1. No
    /// backend is given a new request while it has `ceil(c × (in flight + 1) / backends)` or
    /// more. 1.25 is the paper's example and HAProxy's default (`hash-balance-factor 125`);
    /// nil is plain consistent hashing, with no bound.
    public var boundedLoadFactor: Double?
    /// `consistent-hash` only: ring points per unit of weight, after dividing all weights by
    /// their greatest common divisor. More points spread keys more evenly (the share of a
    /// backend with p points deviates by about 1/√p) and cost memory and ring-building time.
    public var ringPointsPerWeight: Int
    /// `consistent-hash` only: the ring's size limit; above it every backend's points are
    /// scaled down alike (each keeps at least one).
    public var maximumRingPoints: Int

    /// A configuration; the defaults suit a TCP proxy.
    public init(
        strategy: Strategy,
        outlierDetection: OutlierDetection? = OutlierDetection(),
        boundedLoadFactor: Double? = 1.25,
        ringPointsPerWeight: Int = 100,
        maximumRingPoints: Int = 16_384
    ) {
        self.strategy = strategy
        self.outlierDetection = outlierDetection
        self.boundedLoadFactor = boundedLoadFactor
        self.ringPointsPerWeight = ringPointsPerWeight
        self.maximumRingPoints = maximumRingPoints
    }

    /// Every problem with this configuration, or none.
    public var problems: [BalancingProblem] {
        var problems: [BalancingProblem] = []
        if let factor = boundedLoadFactor, !(factor >= 1 && factor.isFinite) {
            problems.append(BalancingProblem(
                path: "boundedLoadFactor",
                message: "\(factor) is below 1 or not finite; use 1.25, or nil for no bound"))
        }
        if !(1...1 << 24).contains(maximumRingPoints) {
            problems.append(BalancingProblem(
                path: "maximumRingPoints", message: "\(maximumRingPoints) is outside 1...\(1 << 24)"))
        }
        if !(1...maximumRingPoints).contains(ringPointsPerWeight) {
            problems.append(BalancingProblem(
                path: "ringPointsPerWeight",
                message: "\(ringPointsPerWeight) is outside 1...maximumRingPoints (\(maximumRingPoints))"))
        }
        problems += outlierDetection?.problems ?? []
        return problems
    }
}
