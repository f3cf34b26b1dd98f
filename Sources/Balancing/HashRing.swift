/// `consistent-hash`: a ring of points, each owned by a backend, with points in proportion to
/// weight (Karger et al., "Consistent Hashing and Random Trees", STOC 1997; virtual nodes as in
/// Dynamo and ketama). A key goes to the owner of the first point at or after the key's hash,
/// so removing a backend moves only the keys it held, and adding one takes about 1/(n+1) of
/// the keys, all to itself.
///
/// With a load bound (Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing with Bounded
/// Loads", SODA 2018) the walk continues clockwise past backends already at capacity
/// `ceil(c × (in flight + 1) / n)`, so a hot key spills over to the next backends on the ring
/// rather than overloading its home. Ring positions come from `StableHash`, so every agent and
/// every restart puts a key on the same backend.
struct HashRing: Sendable {
    /// Ring positions, ascending.
    private(set) var points: [UInt64] = []
    /// `owners[i]` is the slot index owning `points[i]`.
    private(set) var owners: [UInt32] = []
    /// The (id, weight) list the ring was built from, in slot order: an update that changes
    /// neither leaves the ring as it is.
    private var builtFrom: [IDAndWeight] = []

    private struct IDAndWeight: Hashable, Sendable {
        let id: String
        let weight: Int
    }

    /// Rebuilds the ring from all backends (ejected ones included: ejection is skipped at pick
    /// time, so that a return does not reshuffle keys). O(P log P) for P points.
    mutating func rebuild(slots: [BackendSlot], configuration: BalancerConfiguration) {
        let wanted = slots.map { IDAndWeight(id: $0.backend.id, weight: $0.backend.weight) }
        guard wanted != builtFrom else { return }
        builtFrom = wanted
        let counts = Self.pointCounts(
            weights: wanted.map(\.weight), perWeight: configuration.ringPointsPerWeight,
            maximum: configuration.maximumRingPoints)
        var ring: [(point: UInt64, owner: Int)] = []
        ring.reserveCapacity(counts.reduce(0, +))
        for (index, slot) in slots.enumerated() {
            // Each backend's points continue a SplitMix64 sequence seeded by its id's hash:
            // well mixed, and independent of the other backends and of the set's order.
            let base = StableHash.hash(slot.backend.id)
            for replica in 0..<counts[index] {
                ring.append((StableHash.mix64(base &+ UInt64(replica) &* 0x9E37_79B9_7F4A_7C15), index))
            }
        }
        // Equal points (a 2^-64 chance per pair) go to the smaller id, the same everywhere.
        ring.sort {
            $0.point != $1.point ? $0.point < $1.point : slots[$0.owner].backend.id < slots[$1.owner].backend.id
        }
        points = ring.map(\.point)
        owners = ring.map { UInt32($0.owner) }
    }

    /// Points per backend: weight over the weights' greatest common divisor, times
    /// `perWeight`, scaled down alike if the ring would exceed `maximum` (each keeps one).
    static func pointCounts(weights: [Int], perWeight: Int, maximum: Int) -> [Int] {
        let divisor = weights.reduce(0, greatestCommonDivisor)
        guard divisor > 0 else { return weights.map { _ in 0 } }
        let wanted = weights.map { $0 / divisor * perWeight }
        let total = wanted.reduce(0, +)
        guard total > maximum else { return wanted }
        let scale = Double(maximum) / Double(total)
        return wanted.map { max(1, Int(Double($0) * scale)) }
    }

    private static func greatestCommonDivisor(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }

    /// The owner of the first point at or after `keyHash` (wrapping around) that is eligible
    /// and, when `capacity` is given, has fewer than `capacity` requests in flight. O(log P)
    /// to find the start; the walk past full backends is short in expectation (the paper's
    /// O(1/ε²) for c = 1 + ε) and never longer than the ring.
    /// `skipping`: slot indexes passed over as if not eligible (a retry's failed backends).
    func owner(forKeyHash keyHash: UInt64, slots: [BackendSlot], capacity: Int?, skipping: Set<Int> = []) -> Int? {
        guard !points.isEmpty else { return nil }
        var position = lowerBound(keyHash)
        for _ in 0..<points.count {
            if position == points.count { position = 0 }
            let owner = Int(owners[position])
            if slots[owner].isEligible, !skipping.contains(owner), capacity.map({ slots[owner].outstanding < $0 }) ?? true {
                return owner
            }
            position += 1
        }
        return nil
    }

    /// Index of the first point at or after `value`; `points.count` if none.
    private func lowerBound(_ value: UInt64) -> Int {
        var low = 0
        var high = points.count
        while low < high {
            let middle = low + (high - low) / 2
            if points[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
