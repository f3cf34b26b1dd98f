import Balancing
import Testing

@Suite("validation, parsing, empty sets and leases")
struct ValidationTests {
    @Test("weights of 0 or below, bad ports and duplicate ids are refused, every one named")
    func invalidBackends() {
        let backends = [
            Backend(id: "a", address: "10.0.0.1", port: 80, weight: 0),
            Backend(id: "b", address: "10.0.0.2", port: 0, weight: -3),
            Backend(id: "a", address: "", port: 80, weight: 1),
        ]
        #expect {
            _ = try Balancer(BalancerConfiguration(strategy: .weighted), backends: backends)
        } throws: { error in
            guard case BalancingError.invalid(let problems) = error else { return false }
            return problems.map(\.path) == [
                "backends[0].weight", "backends[1].port", "backends[1].weight",
                "backends[2].address", "backends[2].id",
            ] && problems[0].message.contains("at least 1")
        }
        #expect(throws: Never.self) {
            _ = try Balancer(
                BalancerConfiguration(strategy: .weighted),
                backends: [Backend(id: "a", address: "h", port: 1, weight: Backend.maximumWeight)])
        }
        #expect(throws: BalancingError.self) {
            _ = try Balancer(
                BalancerConfiguration(strategy: .weighted),
                backends: [Backend(id: "a", address: "h", port: 1, weight: Backend.maximumWeight + 1)])
        }
    }

    @Test("configuration problems are all reported")
    func invalidConfiguration() {
        let configuration = BalancerConfiguration(
            strategy: .consistentHash,
            outlierDetection: OutlierDetection(
                consecutiveFailures: 0, baseEjection: .seconds(10), maximumEjection: .seconds(5),
                maximumEjectedPercent: 101),
            boundedLoadFactor: 0.9, ringPointsPerWeight: 0)
        #expect(configuration.problems.map(\.path) == [
            "boundedLoadFactor", "ringPointsPerWeight", "outlierDetection.consecutiveFailures",
            "outlierDetection.maximumEjection", "outlierDetection.maximumEjectedPercent",
        ])
        #expect(throws: BalancingError.invalid(configuration.problems)) {
            _ = try Balancer(configuration)
        }
        #expect(BalancerConfiguration(strategy: .consistentHash).problems.isEmpty)
    }

    @Test("strategies parse from their manifest spelling", arguments: Strategy.allCases)
    func parsing(strategy: Strategy) throws {
        #expect(try Strategy(parsing: strategy.rawValue) == strategy)
    }

    @Test("the manifest spellings are fixed")
    func spellings() {
        #expect(Strategy.allCases.map(\.rawValue) == [
            "round-robin", "random", "weighted", "least-outstanding", "power-of-two-choices",
            "consistent-hash",
        ])
    }

    @Test("an unknown strategy is refused with the valid ones listed")
    func unknownStrategy() {
        #expect(throws: BalancingError.unknownStrategy("round_robin")) {
            try Strategy(parsing: "round_robin")
        }
        let message = BalancingError.unknownStrategy("round_robin").description
        for strategy in Strategy.allCases { #expect(message.contains("\"\(strategy.rawValue)\"")) }
        #expect(BalancingError.unknownStrategy("x").code == "balancing.unknown-strategy")
    }

    @Test("with no backends every strategy picks nothing", arguments: Strategy.allCases)
    func emptySet(strategy: Strategy) throws {
        let balancer = makeBalancer(strategy, [])
        #expect(balancer.pick() == nil)
        #expect(balancer.pick(key: "k") == nil)
        try balancer.update(backends: makeBackends(2))
        #expect(balancer.pick(key: "k") != nil)
        try balancer.update(backends: [])
        #expect(balancer.pick(key: "k") == nil)
    }

    @Test("finishing a lease twice counts once; dropping a lease finishes it")
    func leaseFinishesOnce() throws {
        let balancer = makeBalancer(.roundRobin, makeBackends(1))
        let first = try #require(balancer.pick())
        let second = try #require(balancer.pick())
        #expect(outstandingByID(balancer) == ["b0": 2])
        first.finish()
        first.finish()
        #expect(first.isFinished && !second.isFinished)
        #expect(outstandingByID(balancer) == ["b0": 1])
        do { _ = balancer.pick() }
        #expect(outstandingByID(balancer) == ["b0": 1])
        second.finish()
        #expect(outstandingByID(balancer) == ["b0": 0])
    }

    @Test("concurrent picks and finishes from many tasks balance out", arguments: Strategy.allCases)
    func concurrentCallers(strategy: Strategy) async {
        let balancer = makeBalancer(strategy, makeBackends(5))
        let picked = await withTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var count = 0
                    for index in 0..<500 {
                        guard let lease = balancer.pick(key: "t\(task)-\(index)") else { continue }
                        count += 1
                        lease.finish()
                    }
                    return count
                }
            }
            return await group.reduce(0, +)
        }
        #expect(picked == 4_000)
        #expect(balancer.status().allSatisfy { $0.outstanding == 0 })
    }
}
