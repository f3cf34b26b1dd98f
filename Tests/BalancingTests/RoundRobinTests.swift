import Balancing
import Testing

@Suite("round-robin")
struct RoundRobinTests {
    @Test("every cycle of n picks gives each backend exactly one, in set order")
    func exactlyEvenPerCycle() {
        let balancer = makeBalancer(.roundRobin, makeBackends(5))
        let ids = pickIDs(balancer, 5 * 100)
        for cycle in 0..<100 {
            #expect(Array(ids[cycle * 5..<(cycle + 1) * 5]) == ["b0", "b1", "b2", "b3", "b4"])
        }
    }

    @Test("an ejected backend is skipped without disturbing the others' order")
    func skipsEjected() {
        let policy = OutlierDetection(consecutiveFailures: 1, maximumEjectedPercent: 50)
        let balancer = makeBalancer(.roundRobin, makeBackends(4), outlierDetection: policy)
        let start = ContinuousClock.now
        let first = balancer.pick(now: start)  // b0
        #expect(first?.backend.id == "b0")
        let second = balancer.pick(now: start)  // b1
        second?.recordFailure(now: start)  // b1 out for 30 s
        #expect(pickIDs(balancer, 6, now: start) == ["b2", "b3", "b0", "b2", "b3", "b0"])
    }
}
