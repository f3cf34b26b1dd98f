/// `round-robin`: each eligible backend in set order, one after another.
///
/// The cursor is a slot index rather than a position in the eligible list, so that an ejection
/// or a return does not shift whose turn it is; finding the next eligible slot at or after it
/// is a binary search on the sorted eligible list, O(log n).
struct RoundRobinCursor: Sendable {
    /// The slot whose turn it is, if eligible; otherwise the next eligible one after it.
    private(set) var next = 0

    mutating func pick(from eligible: [Int]) -> Int? {
        guard !eligible.isEmpty else { return nil }
        let position = eligible.partitioningIndex { $0 >= next }
        let chosen = position < eligible.count ? eligible[position] : eligible[0]
        next = chosen + 1
        return chosen
    }

    /// Keeps the turn with the same backend across an update: the first backend at or after
    /// the cursor (in the old order) that is still in the set; the start if none is.
    mutating func carry(from oldSlots: [BackendSlot], to newIndexByID: [String: Int]) {
        guard !oldSlots.isEmpty else {
            next = 0
            return
        }
        for step in 0..<oldSlots.count {
            let old = (next + step) % oldSlots.count
            if let new = newIndexByID[oldSlots[old].backend.id] {
                next = new
                return
            }
        }
        next = 0
    }
}

extension Array where Element == Int {
    /// The first index whose element satisfies `predicate`, which must be false then true
    /// along the array (a sorted array's lower bound); `count` if none.
    func partitioningIndex(where predicate: (Int) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = low + (high - low) / 2
            if predicate(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
