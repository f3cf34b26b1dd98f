@testable import Balancing

/// Backends `b0`, `b1`, … on 10.0.0.x:8080, with the given weights (1 each by default).
func makeBackends(_ count: Int, weights: [Int]? = nil) -> [Backend] {
    (0..<count).map { index in
        Backend(id: "b\(index)", address: "10.0.0.\(index + 1)", port: 8080, weight: weights?[index] ?? 1)
    }
}

func makeBalancer(
    _ strategy: Strategy, _ backends: [Backend], seed: UInt64 = 42,
    outlierDetection: OutlierDetection? = nil, boundedLoadFactor: Double? = 1.25
) -> Balancer {
    do {
        return try Balancer(
            BalancerConfiguration(
                strategy: strategy, outlierDetection: outlierDetection, boundedLoadFactor: boundedLoadFactor),
            backends: backends, seed: seed)
    } catch {
        fatalError("fixture balancer refused: \(error)")
    }
}

/// Ids of `count` picks, each finished at once.
func pickIDs(_ balancer: Balancer, _ count: Int, key: String? = nil, now: ContinuousClock.Instant = .now) -> [String] {
    (0..<count).compactMap { _ in
        guard let lease = balancer.pick(key: key, now: now) else { return nil }
        lease.finish()
        return lease.backend.id
    }
}

func countByID(_ ids: [String]) -> [String: Int] {
    ids.reduce(into: [:]) { $0[$1, default: 0] += 1 }
}

func outstandingByID(_ balancer: Balancer) -> [String: Int] {
    Dictionary(uniqueKeysWithValues: balancer.status().map { ($0.backend.id, $0.outstanding) })
}

/// The workload's own randomness (which lease finishes next), independent of the balancer's:
/// the library's own SplitMix64, seeded apart.
typealias WorkloadRandom = SplitMix64
