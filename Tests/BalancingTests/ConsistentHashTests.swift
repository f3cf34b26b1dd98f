import Balancing
import Testing
import TestSupport

@Suite("consistent-hash", .cpuBound)
struct ConsistentHashTests {
    static let keys = (0..<3_000).map { "user-\($0)" }

    /// Where each key goes with nothing in flight (so the load bound never diverts it).
    static func placement(_ backends: [Backend], seed: UInt64 = 42) -> [String: String] {
        let balancer = makeBalancer(.consistentHash, backends, seed: seed)
        return Dictionary(uniqueKeysWithValues: keys.map { key in
            (key, pickIDs(balancer, 1, key: key).first ?? "(none)")
        })
    }

    @Test("the hash is FNV-1a 64 (reference vectors) and its mix is pinned")
    func stableHash() {
        #expect(StableHash.fnv1a64("".utf8) == 0xCBF2_9CE4_8422_2325)
        #expect(StableHash.fnv1a64("a".utf8) == 0xAF63_DC4C_8601_EC8C)
        #expect(StableHash.fnv1a64("foobar".utf8) == 0x8594_4171_F739_67E8)
        // A change here moves every key during a rolling upgrade: make it on purpose only.
        #expect(StableHash.hash("user-42") == StableHash.mix64(StableHash.fnv1a64("user-42".utf8)))
        #expect(StableHash.hash("user-42") == 0xA395_32C7_AB05_1E8D)
        #expect(StableHash.hash(bytes: [10, 0, 0, 1]) == StableHash.hash(bytes: [10, 0, 0, 1]))
    }

    @Test("the same key goes to the same backend, in every balancer whatever its seed")
    func sameKeySameBackend() {
        let backends = makeBackends(7)
        let first = Self.placement(backends, seed: 1)
        #expect(first == Self.placement(backends, seed: 2))
        #expect(first == Self.placement(backends.reversed(), seed: 3))
        // Pinned: agents of different builds must agree.
        #expect(first["user-42"] == "b4")
    }

    @Test("removing one of n backends moves only the keys it held")
    func removalMovesOnlyItsKeys() {
        let backends = makeBackends(10)
        let before = Self.placement(backends)
        let after = Self.placement(backends.filter { $0.id != "b3" })
        var moved = 0
        for key in Self.keys {
            if before[key] == "b3" {
                moved += 1
                #expect(after[key] != "b3")
            } else {
                #expect(after[key] == before[key], "\(key) moved off \(before[key] ?? "?")")
            }
        }
        #expect(moved > 0)
    }

    @Test("adding an (n+1)th backend moves about 1/(n+1) of the keys, all to it")
    func additionMovesAShare() {
        let backends = makeBackends(11)
        let before = Self.placement(Array(backends.prefix(10)))
        let after = Self.placement(backends)
        let moved = Self.keys.filter { before[$0] != after[$0] }
        for key in moved { #expect(after[key] == "b10") }
        let share = Double(moved.count) / Double(Self.keys.count)
        #expect(share > 0.05 && share < 0.14, "moved \(share), expected about 1/11")
    }

    @Test("an update rebuilds the ring: keys land as on a balancer made with the new set")
    func updateRebuildsRing() throws {
        let backends = makeBackends(11)
        let balancer = makeBalancer(.consistentHash, Array(backends.prefix(10)))
        try balancer.update(backends: backends)
        let updated = Dictionary(uniqueKeysWithValues: Self.keys.map { key in
            (key, pickIDs(balancer, 1, key: key).first ?? "(none)")
        })
        #expect(updated == Self.placement(backends))
        try balancer.update(backends: backends.map { backend in
            var heavier = backend
            heavier.weight = backend.id == "b0" ? 3 : 1
            return heavier
        })
        #expect(balancer.ringPointCounts()["b0"] == 300)
    }

    @Test("ring points and key shares follow weight")
    func proportionalToWeight() {
        let backends = makeBackends(3, weights: [1, 2, 3])
        let balancer = makeBalancer(.consistentHash, backends)
        #expect(balancer.ringPointCounts() == ["b0": 100, "b1": 200, "b2": 300])
        let counts = countByID(Array(Self.placement(backends).values))
        for (index, weight) in [1, 2, 3].enumerated() {
            let share = Double(counts["b\(index)", default: 0]) / Double(Self.keys.count)
            let expected = Double(weight) / 6
            #expect(abs(share / expected - 1) < 0.25, "b\(index) has \(share), expected \(expected)")
        }
        // Weights with a common divisor give the same ring as their reduced form.
        let scaled = makeBalancer(.consistentHash, makeBackends(3, weights: [100, 200, 300]))
        #expect(scaled.ringPointCounts() == ["b0": 100, "b1": 200, "b2": 300])
    }

    @Test("a ring larger than the limit is scaled down alike")
    func ringLimit() throws {
        let balancer = try Balancer(
            BalancerConfiguration(strategy: .consistentHash, ringPointsPerWeight: 100, maximumRingPoints: 300),
            backends: makeBackends(3, weights: [1, 2, 3]))
        #expect(balancer.ringPointCounts() == ["b0": 50, "b1": 100, "b2": 150])
    }

    @Test("without a key, picks spread over all backends")
    func keylessSpreads() {
        let balancer = makeBalancer(.consistentHash, makeBackends(4))
        let counts = countByID(pickIDs(balancer, 4_000))
        for index in 0..<4 { #expect(counts["b\(index)", default: 0] > 600) }
    }
}

@Suite("consistent-hash with bounded load", .cpuBound)
struct BoundedLoadTests {
    static func capacity(_ factor: Double, inFlight: Int, backends: Int) -> Int {
        Int((factor * Double(inFlight) / Double(backends)).rounded(.up))
    }

    @Test("a hot key spills over: no backend ever holds more than ceil(c × in flight / n)")
    func hotKeyStaysUnderCapacity() {
        let balancer = makeBalancer(.consistentHash, makeBackends(4), boundedLoadFactor: 1.25)
        var held: [Lease] = []
        for inFlight in 1...200 {
            guard let lease = balancer.pick(key: "hot") else { break }
            held.append(lease)
            let cap = Self.capacity(1.25, inFlight: inFlight, backends: 4)
            for (id, load) in outstandingByID(balancer) {
                #expect(load <= cap, "\(id) holds \(load) of \(inFlight), capacity \(cap)")
            }
        }
        #expect(held.count == 200)
    }

    @Test("without a bound the hot key piles onto its home backend")
    func unboundedPilesUp() {
        let balancer = makeBalancer(.consistentHash, makeBackends(4), boundedLoadFactor: nil)
        let held = (0..<100).compactMap { _ in balancer.pick(key: "hot") }
        #expect(Set(held.map(\.backend.id)).count == 1)
    }

    @Test("with many keys held open, most stay home and none exceeds capacity")
    func keysMostlyHome() {
        let backends = makeBackends(10)
        let home = ConsistentHashTests.placement(backends)
        let balancer = makeBalancer(.consistentHash, backends, boundedLoadFactor: 1.25)
        var held: [Lease] = []
        var atHome = 0
        for key in ConsistentHashTests.keys {
            guard let lease = balancer.pick(key: key) else { continue }
            held.append(lease)
            if lease.backend.id == home[key] { atHome += 1 }
            let cap = Self.capacity(1.25, inFlight: held.count, backends: 10)
            #expect(outstandingByID(balancer).values.allSatisfy { $0 <= cap })
        }
        let share = Double(atHome) / Double(held.count)
        #expect(share > 0.8, "only \(share) of keys on their home backend")
    }
}
