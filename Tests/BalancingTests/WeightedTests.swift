import Balancing
import Testing

@Suite("weighted")
struct WeightedTests {
    static let weightSets: [[Int]] = [[5, 1, 1], [3, 2, 1], [1, 1, 1, 1], [7, 3], [100, 200, 300]]

    @Test("each cycle of Σw picks gives each backend exactly its weight", arguments: weightSets)
    func exactPerCycle(weights: [Int]) {
        let balancer = makeBalancer(.weighted, makeBackends(weights.count, weights: weights))
        let total = weights.reduce(0, +)
        let ids = pickIDs(balancer, total * 50)
        for cycle in 0..<50 {
            let counts = countByID(Array(ids[cycle * total..<(cycle + 1) * total]))
            for (index, weight) in weights.enumerated() {
                #expect(counts["b\(index)", default: 0] == weight, "cycle \(cycle), b\(index)")
            }
        }
    }

    /// Smoothness: after any number L of picks every backend has had within one of its
    /// share L × w / Σw. A schedule that gives a heavy backend its turns in a row breaks it
    /// early (5, 1, 1 as "b0 ×5, b1, b2" is 1.43 ahead after five picks).
    @Test("turns are interleaved: every prefix is within one pick of the exact share", arguments: weightSets)
    func interleaved(weights: [Int]) {
        let balancer = makeBalancer(.weighted, makeBackends(weights.count, weights: weights))
        let total = Double(weights.reduce(0, +))
        var counts = Array(repeating: 0, count: weights.count)
        for (picked, id) in pickIDs(balancer, 1_000).enumerated() {
            counts[Int(id.dropFirst())!] += 1
            for (index, weight) in weights.enumerated() {
                let share = Double(picked + 1) * Double(weight) / total
                #expect(abs(Double(counts[index]) - share) <= 1, "after \(picked + 1) picks, b\(index)")
            }
        }
    }

    @Test("the sequence is deterministic whatever the seed")
    func deterministic() {
        let backends = makeBackends(3, weights: [4, 2, 1])
        #expect(pickIDs(makeBalancer(.weighted, backends, seed: 1), 70)
            == pickIDs(makeBalancer(.weighted, backends, seed: 99), 70))
    }
}
