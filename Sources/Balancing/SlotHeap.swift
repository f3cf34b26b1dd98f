/// An order on slots for `SlotHeap`: `precedes` is a strict weak order, and ties are broken
/// by something unique (the incarnation) so that the order is total and deterministic. It
/// takes indexes, not slots, to read the key fields in place: copying a slot would retain its
/// backend's strings on every comparison.
protocol SlotOrder {
    static func precedes(_ a: Int, _ b: Int, in slots: [BackendSlot]) -> Bool
}

/// A binary min-heap of slot indexes (Williams, 1964) that remembers where each slot is, so
/// that a slot whose key changed is moved in O(log n) without a search.
struct SlotHeap<Order: SlotOrder>: Sendable {
    private(set) var members: [Int] = []
    /// Slot index → position in `members`, or -1 when the slot is not in the heap.
    private var positions: [Int] = []

    /// The slot that comes first, if any.
    var first: Int? { members.first }

    /// The heap of exactly `slotIndexes`, in O(n) (Floyd's heap construction).
    mutating func rebuild(_ slotIndexes: [Int], slots: [BackendSlot]) {
        members = slotIndexes
        positions = Array(repeating: -1, count: slots.count)
        for (position, slot) in members.enumerated() { positions[slot] = position }
        var position = members.count / 2
        while position > 0 {
            position -= 1
            siftDown(from: position, slots: slots)
        }
    }

    /// Restores the order after `slot`'s key changed in either direction.
    mutating func keyChanged(_ slot: Int, slots: [BackendSlot]) {
        guard slot < positions.count, positions[slot] >= 0 else { return }
        let position = siftUp(from: positions[slot], slots: slots)
        siftDown(from: position, slots: slots)
    }

    @discardableResult
    private mutating func siftUp(from start: Int, slots: [BackendSlot]) -> Int {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard Order.precedes(members[child], members[parent], in: slots) else { break }
            swapAt(child, parent)
            child = parent
        }
        return child
    }

    private mutating func siftDown(from start: Int, slots: [BackendSlot]) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < members.count else { return }
            var least = left
            let right = left + 1
            if right < members.count, Order.precedes(members[right], members[left], in: slots) {
                least = right
            }
            guard Order.precedes(members[least], members[parent], in: slots) else { return }
            swapAt(parent, least)
            parent = least
        }
    }

    private mutating func swapAt(_ i: Int, _ j: Int) {
        members.swapAt(i, j)
        positions[members[i]] = i
        positions[members[j]] = j
    }
}
