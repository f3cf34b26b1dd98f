import Balancing
import Testing

@Suite("outlier ejection")
struct OutlierEjectionTests {
    static let policy = OutlierDetection(
        consecutiveFailures: 3, baseEjection: .seconds(10), maximumEjection: .seconds(25),
        maximumEjectedPercent: 50)
    let start = ContinuousClock.now

    /// A lease on backend `id`, from round-robin picks (the others finish at once).
    func lease(on id: String, _ balancer: Balancer, now: ContinuousClock.Instant) -> Lease? {
        for _ in 0..<100 {
            guard let lease = balancer.pick(now: now) else { return nil }
            if lease.backend.id == id { return lease }
            lease.finish()
        }
        return nil
    }

    func fail(_ id: String, _ times: Int, _ balancer: Balancer, at offset: Duration) {
        for _ in 0..<times {
            let lease = lease(on: id, balancer, now: start + offset)
            lease?.recordFailure(now: start + offset)
            lease?.finish()
        }
    }

    func ejectedUntil(_ id: String, _ balancer: Balancer) -> ContinuousClock.Instant? {
        balancer.status().first { $0.backend.id == id }?.ejectedUntil
    }

    @Test("consecutive failures eject; a success in between resets the streak")
    func ejectsAfterConsecutiveFailures() {
        let balancer = makeBalancer(.roundRobin, makeBackends(4), outlierDetection: Self.policy)
        fail("b0", 2, balancer, at: .zero)
        lease(on: "b0", balancer, now: start)?.recordSuccess(now: start)
        fail("b0", 2, balancer, at: .zero)
        #expect(ejectedUntil("b0", balancer) == nil)
        fail("b0", 1, balancer, at: .seconds(1))
        #expect(ejectedUntil("b0", balancer) == start + .seconds(11))
        #expect(!pickIDs(balancer, 30, now: start + .seconds(5)).contains("b0"))
    }

    @Test("an ejected backend returns once its back-off is over, with a clean streak")
    func returnsAfterBackOff() {
        let balancer = makeBalancer(.roundRobin, makeBackends(3), outlierDetection: Self.policy)
        fail("b1", 3, balancer, at: .zero)
        #expect(!pickIDs(balancer, 9, now: start + .milliseconds(9_999)).contains("b1"))
        #expect(countByID(pickIDs(balancer, 9, now: start + .seconds(10))) == ["b0": 3, "b1": 3, "b2": 3])
        #expect(balancer.status().allSatisfy { $0.consecutiveFailures == 0 && !$0.isEjected })
    }

    @Test("each ejection lasts base × ejections, capped; time in good standing forgives")
    func backOffGrowsAndIsCapped() {
        let balancer = makeBalancer(.roundRobin, makeBackends(3), outlierDetection: Self.policy)
        fail("b0", 3, balancer, at: .zero)
        #expect(ejectedUntil("b0", balancer) == start + .seconds(10))
        fail("b0", 3, balancer, at: .seconds(10))  // back, and fails at once
        #expect(ejectedUntil("b0", balancer) == start + .seconds(30))  // 2 × 10 s
        fail("b0", 3, balancer, at: .seconds(30))
        #expect(ejectedUntil("b0", balancer) == start + .seconds(55))  // 3 × 10 s, capped at 25 s
        // Twenty seconds in good standing forgive two of the three ejections.
        fail("b0", 3, balancer, at: .seconds(75))
        #expect(ejectedUntil("b0", balancer) == start + .seconds(95))  // (3 − 2 + 1) × 10 s
    }

    @Test("no more than the maximum share is ejected, but always one")
    func maximumEjectedShare() {
        let balancer = makeBalancer(.roundRobin, makeBackends(4), outlierDetection: Self.policy)
        for id in ["b0", "b1", "b2"] { fail(id, 3, balancer, at: .zero) }
        #expect(balancer.status().map(\.isEjected) == [true, true, false, false])
        #expect(Set(pickIDs(balancer, 8, now: start)) == ["b2", "b3"])

        let pair = makeBalancer(.roundRobin, makeBackends(2), outlierDetection: Self.policy)
        fail("b0", 3, pair, at: .zero)  // 50 % of 2 is one
        fail("b1", 3, pair, at: .zero)
        #expect(pair.status().map(\.isEjected) == [true, false])
    }

    @Test("when every backend is ejected, picks go to all of them (panic mode)")
    func panicMode() throws {
        let single = makeBalancer(.leastOutstanding, makeBackends(1), outlierDetection: Self.policy)
        fail("b0", 3, single, at: .zero)
        #expect(single.status()[0].isEjected)
        #expect(single.isPanicking)
        #expect(single.pick(now: start + .seconds(1))?.backend.id == "b0")

        // An update that removes the healthy backends leaves only ejected ones.
        let pair = makeBalancer(.random, makeBackends(3), outlierDetection: Self.policy)
        fail("b0", 3, pair, at: .zero)
        try pair.update(backends: Array(makeBackends(3).prefix(1)))
        #expect(pair.isPanicking)
        #expect(pickIDs(pair, 3, now: start + .seconds(1)) == ["b0", "b0", "b0"])
        // Its return ends the panic.
        _ = pickIDs(pair, 1, now: start + .seconds(10))
        #expect(!pair.isPanicking)
    }

    @Test("with outlier detection off, failures never eject")
    func disabled() {
        let balancer = makeBalancer(.roundRobin, makeBackends(2), outlierDetection: nil)
        fail("b0", 50, balancer, at: .zero)
        #expect(balancer.status().allSatisfy { !$0.isEjected })
    }

    @Test("every strategy skips an ejected backend", arguments: Strategy.allCases)
    func everyStrategySkips(strategy: Strategy) {
        let balancer = makeBalancer(strategy, makeBackends(3), outlierDetection: Self.policy)
        // Round robin from a separate balancer cannot reach this one's leases, so find b1
        // by picking with keys until it comes up.
        var found: Lease?
        for index in 0..<200 where found == nil {
            let lease = balancer.pick(key: "k\(index)", now: start)
            if lease?.backend.id == "b1" { found = lease } else { lease?.finish() }
        }
        for _ in 0..<3 { found?.recordFailure(now: start) }
        found?.finish()
        #expect(ejectedUntil("b1", balancer) != nil)
        let ids = (0..<60).compactMap { balancer.pick(key: "k\($0)", now: start + .seconds(1)).map { lease in lease.finish(); return lease.backend.id } }
        #expect(ids.count == 60)
        #expect(!ids.contains("b1"))
    }
}
