import Balancing
import Testing

@Suite("random")
struct RandomTests {
    /// Pearson's chi-square over 8 backends (7 degrees of freedom). 24.3 is the 0.1 % critical
    /// value: a uniform picker passes with any seed but one in a thousand; this seed is fixed.
    /// Skipping a backend, or favouring one by a few percent over 80 000 picks, lands far above.
    @Test("uniform: chi-square below the 0.1 % critical value, every share within 3 %")
    func uniform() {
        let count = 8
        let picks = 80_000
        let balancer = makeBalancer(.random, makeBackends(count), seed: 7)
        let counts = countByID(pickIDs(balancer, picks))
        let expected = Double(picks) / Double(count)
        let chiSquare = (0..<count).reduce(0.0) { sum, index in
            let observed = Double(counts["b\(index)", default: 0])
            return sum + (observed - expected) * (observed - expected) / expected
        }
        #expect(chiSquare < 24.3)
        for index in 0..<count {
            #expect(abs(Double(counts["b\(index)", default: 0]) / expected - 1) < 0.03)
        }
    }

    @Test("the same seed replays the same choices; another seed does not")
    func seeded() {
        let a = pickIDs(makeBalancer(.random, makeBackends(5), seed: 1), 50)
        let b = pickIDs(makeBalancer(.random, makeBackends(5), seed: 1), 50)
        let c = pickIDs(makeBalancer(.random, makeBackends(5), seed: 2), 50)
        #expect(a == b)
        #expect(a != c)
    }
}
