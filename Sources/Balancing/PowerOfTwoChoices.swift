/// `power-of-two-choices`: of two distinct eligible backends drawn at random, the one with
/// fewer requests in flight (Mitzenmacher, "The Power of Two Choices in Randomized Load
/// Balancing", IEEE TPDS 12(10), 2001).
///
/// Two random choices instead of one cut the most loaded backend's excess from
/// Θ(log n / log log n) to Θ(log log n), without the herding a global least-loaded choice
/// suffers when many pickers act on the same stale counts. O(1); weights are ignored.
enum PowerOfTwoChoices {
    static func pick(
        from eligible: [Int], slots: [BackendSlot], using random: inout some RandomNumberGenerator
    ) -> Int? {
        guard eligible.count > 1 else { return eligible.first }
        // Two distinct positions, each pair equally likely: the second is drawn among the
        // other count - 1 and shifted past the first.
        let first = Int(random.next(upperBound: UInt64(eligible.count)))
        var second = Int(random.next(upperBound: UInt64(eligible.count - 1)))
        if second >= first { second += 1 }
        let a = eligible[first]
        let b = eligible[second]
        // On a tie the first drawn, itself a uniformly random one of the two.
        return slots[b].outstanding < slots[a].outstanding ? b : a
    }
}
