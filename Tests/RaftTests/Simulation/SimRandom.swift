import Raft

/// Draws from the run's one seeded generator, so that one seed reproduces a whole run.
struct SimRandom {
    private var generator: SplitMix64

    init(seed: UInt64) {
        generator = SplitMix64(seed: seed)
    }

    mutating func next() -> UInt64 {
        generator.next()
    }

    /// A value in `range`, uniform enough for a simulation.
    mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(generator.next() % UInt64(range.count))
    }

    mutating func uint(in range: ClosedRange<UInt64>) -> UInt64 {
        range.lowerBound + generator.next() % (range.upperBound - range.lowerBound + 1)
    }

    /// True with probability `probability`.
    mutating func chance(_ probability: Double) -> Bool {
        Double(generator.next() >> 11) / Double(1 << 53) < probability
    }

    mutating func pick<T>(_ values: [T]) -> T? {
        values.isEmpty ? nil : values[int(in: 0...(values.count - 1))]
    }
}
