@testable import Balancing
import Testing

@Suite("least-outstanding")
struct LeastOutstandingTests {
    @Test("a new request goes to the backend with the fewest in flight")
    func fewestInFlight() {
        let balancer = makeBalancer(.leastOutstanding, makeBackends(3))
        var held = (0..<6).compactMap { _ in balancer.pick() }
        #expect(outstandingByID(balancer) == ["b0": 2, "b1": 2, "b2": 2])

        // Two of b1's requests end: the next two go to b1, then the load is even again.
        for lease in held.filter({ $0.backend.id == "b1" }) { lease.finish() }
        let refill = (0..<2).compactMap { _ in balancer.pick() }
        #expect(refill.map(\.backend.id) == ["b1", "b1"])
        held += refill
        #expect(outstandingByID(balancer) == ["b0": 2, "b1": 2, "b2": 2])

        // One of b2's ends: b2 is the only one with fewer, so it takes the next.
        held.first { $0.backend.id == "b2" }?.finish()
        #expect(balancer.pick().map { lease in held.append(lease); return lease.backend.id } == "b2")
    }

    @Test("in flight counts follow picks and finishes exactly, under a random workload")
    func countsMatchHeldLeases() {
        let balancer = makeBalancer(.leastOutstanding, makeBackends(5))
        var workload = WorkloadRandom(seed: 3)
        var held: [Lease] = []
        for _ in 0..<2_000 {
            if held.count < 20 || workload.next() % 2 == 0, let lease = balancer.pick() {
                // Least outstanding: the chosen backend had no more in flight than any other.
                let before = countByID(held.map(\.backend.id))
                let minimum = (0..<5).map { before["b\($0)", default: 0] }.min()!
                #expect(before[lease.backend.id, default: 0] == minimum)
                held.append(lease)
            } else {
                held.remove(at: Int(workload.next(upperBound: UInt64(held.count)))).finish()
            }
            #expect(outstandingByID(balancer).filter { $0.value > 0 }
                == countByID(held.map(\.backend.id)))
        }
    }

    @Test("equally loaded backends take turns instead of the first taking everything")
    func tiesRotate() {
        let balancer = makeBalancer(.leastOutstanding, makeBackends(4))
        // Each request ends before the next starts, so all are always tied at zero.
        let ids = pickIDs(balancer, 40)
        #expect(countByID(ids) == ["b0": 10, "b1": 10, "b2": 10, "b3": 10])
        #expect(Array(ids.prefix(8)) == ["b0", "b1", "b2", "b3", "b0", "b1", "b2", "b3"])
    }
}
