import Balancing
import Testing

@Suite("update")
struct UpdateTests {
    @Test("backends that stay keep their in-flight counts, wherever they move in the list")
    func keepsCounts() throws {
        let balancer = makeBalancer(.leastOutstanding, makeBackends(2))
        let held = (0..<4).compactMap { _ in balancer.pick() }  // b0: 2, b1: 2
        held[0].finish()  // b0: 1
        let b2 = Backend(id: "b2", address: "10.0.0.3", port: 8080)
        try balancer.update(backends: [b2] + makeBackends(2).reversed())
        #expect(outstandingByID(balancer) == ["b0": 1, "b1": 2, "b2": 0])
        // The newcomer is the least loaded (twice: the first lease ends as it is dropped);
        // then b0, tied with b2 at one but picked longer ago.
        #expect(balancer.pick()?.backend.id == "b2")
        let next = balancer.pick()
        #expect(next?.backend.id == "b2")
        let third = balancer.pick()
        #expect(third?.backend.id == "b0")
        // Leases taken before the update still count down the right backend.
        for lease in held { lease.finish() }
        #expect(outstandingByID(balancer) == ["b0": 1, "b1": 0, "b2": 1])
    }

    @Test("a lease of a removed backend finishes harmlessly")
    func removedBackendLease() throws {
        let balancer = makeBalancer(.roundRobin, makeBackends(2))
        let old = try #require(balancer.pick())
        let kept = try #require(balancer.pick())
        #expect([old.backend.id, kept.backend.id] == ["b0", "b1"])
        try balancer.update(backends: [makeBackends(2)[1]])
        old.recordFailure()
        old.finish()
        #expect(outstandingByID(balancer) == ["b1": 1])
        kept.finish()
        #expect(outstandingByID(balancer) == ["b1": 0])
    }

    @Test("a backend back before its requests finished has them counted; a lease finishes once")
    func returnWithRequestsInFlight() throws {
        let balancer = makeBalancer(.leastOutstanding, makeBackends(2))
        let held = (0..<6).compactMap { _ in balancer.pick() }  // b0: 3, b1: 3
        let heldByB0 = held.filter { $0.backend.id == "b0" }
        #expect(heldByB0.count == 3)
        // b0 fails its health check and leaves; one of its connections ends meanwhile.
        try balancer.update(backends: [makeBackends(2)[1]])
        heldByB0[0].finish()
        heldByB0[0].finish()
        #expect(outstandingByID(balancer) == ["b1": 3])
        // Back, it has its two connections still open: not the least loaded of the two.
        try balancer.update(backends: makeBackends(2))
        #expect(outstandingByID(balancer) == ["b0": 2, "b1": 3])
        let fresh = try #require(balancer.pick())
        #expect(fresh.backend.id == "b0")  // 3 and 3 now
        for lease in held { lease.finish() }
        #expect(outstandingByID(balancer) == ["b0": 1, "b1": 0])
        fresh.finish()
    }

    @Test("a backend whose requests all finished while it was out comes back idle")
    func returnAfterRequestsFinished() throws {
        let balancer = makeBalancer(.roundRobin, makeBackends(1))
        let old = try #require(balancer.pick())
        try balancer.update(backends: [])
        #expect(balancer.pick() == nil)
        old.finish()
        try balancer.update(backends: makeBackends(1))
        #expect(outstandingByID(balancer) == ["b0": 0])
        let new = try #require(balancer.pick())
        old.finish()
        #expect(outstandingByID(balancer) == ["b0": 1])
        new.finish()
        #expect(outstandingByID(balancer) == ["b0": 0])
    }

    @Test("round robin continues from the same backend after an update")
    func roundRobinKeepsTurn() throws {
        let balancer = makeBalancer(.roundRobin, makeBackends(4))
        #expect(pickIDs(balancer, 2) == ["b0", "b1"])  // b2's turn
        let backends = makeBackends(5)
        try balancer.update(backends: [backends[4], backends[0], backends[2], backends[3]])  // b1 out, b4 in front
        #expect(pickIDs(balancer, 5) == ["b2", "b3", "b4", "b0", "b2"])
        try balancer.update(backends: [backends[0], backends[4]])  // b2 (next) and b3 gone: b4's turn
        #expect(pickIDs(balancer, 2) == ["b4", "b0"])
    }

    @Test("the weighted schedule continues across an update that keeps the set")
    func weightedKeepsPosition() throws {
        let backends = makeBackends(3, weights: [4, 2, 1])
        let plain = makeBalancer(.weighted, backends)
        let updated = makeBalancer(.weighted, backends)
        let expected = pickIDs(plain, 30)
        var ids = pickIDs(updated, 10)
        try updated.update(backends: backends.reversed())
        ids += pickIDs(updated, 20)
        #expect(ids == expected)
    }

    @Test("failure streaks and ejections survive an update")
    func keepsEjection() throws {
        let policy = OutlierDetection(consecutiveFailures: 1)
        let balancer = makeBalancer(.roundRobin, makeBackends(3), outlierDetection: policy)
        let start = ContinuousClock.now
        balancer.pick(now: start)?.recordFailure(now: start)  // b0
        try balancer.update(backends: makeBackends(3).reversed())
        #expect(balancer.status().first { $0.backend.id == "b0" }?.isEjected == true)
        #expect(!pickIDs(balancer, 6, now: start).contains("b0"))
    }

    @Test("an invalid update changes nothing")
    func invalidUpdateIsAtomic() {
        let balancer = makeBalancer(.roundRobin, makeBackends(2))
        #expect(throws: BalancingError.self) {
            try balancer.update(backends: makeBackends(3, weights: [1, 0, 1]))
        }
        #expect(balancer.backends == makeBackends(2))
    }
}
