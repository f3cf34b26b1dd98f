import Balancing
import Testing
import TestSupport

/// A retry names the backends that already failed it: whatever the strategy, it gets another.
@Suite("picks that exclude backends already tried", .cpuBound)
struct RetryExclusionTests {
    static let strategies: [Strategy] = [.roundRobin, .random, .weighted, .leastOutstanding, .powerOfTwoChoices, .consistentHash]

    @Test("no strategy returns an excluded backend, and each returns nil when all are", arguments: strategies)
    func excludedNeverReturned(strategy: Strategy) {
        let balancer = makeBalancer(strategy, makeBackends(5, weights: [1, 2, 3, 4, 5]))
        for round in 0..<200 {
            let key = "user-\(round)"
            guard let first = balancer.pick(key: key) else {
                Issue.record("no first pick")
                return
            }
            var tried: Set<String> = [first.backend.id]
            first.finish()
            for _ in 0..<3 {
                guard let retry = balancer.pick(keyHash: StableHash.hash(key), excluding: tried) else {
                    Issue.record("a retry found nothing with \(5 - tried.count) backends left")
                    return
                }
                #expect(!tried.contains(retry.backend.id), "\(strategy): \(retry.backend.id) picked again")
                tried.insert(retry.backend.id)
                retry.finish()
            }
        }
        #expect(balancer.pick(keyHash: 7, excluding: ["b0", "b1", "b2", "b3", "b4"]) == nil)
        // Nothing stays in flight from the retries.
        #expect(outstandingByID(balancer).values.allSatisfy { $0 == 0 })
    }

    /// Under consistent-hash a key that fails at home is retried on the backend it would have
    /// without its home: one fallback per key, the same on every agent. Before exclusion, the
    /// ring sent the retry home again, to the backend that had just refused it.
    @Test("a consistent-hash retry goes to the key's next owner on the ring")
    func consistentHashRetryGoesToTheNextOwner() {
        let backends = makeBackends(6)
        let balancer = makeBalancer(.consistentHash, backends)
        for key in ConsistentHashTests.keys.prefix(300) {
            let home = pickIDs(balancer, 1, key: key)[0]
            let withoutHome = makeBalancer(.consistentHash, backends.filter { $0.id != home })
            let expected = pickIDs(withoutHome, 1, key: key)[0]
            let retry = balancer.pick(keyHash: StableHash.hash(key), excluding: [home])
            #expect(retry?.backend.id == expected, "\(key): home \(home)")
            retry?.finish()
        }
    }
}
