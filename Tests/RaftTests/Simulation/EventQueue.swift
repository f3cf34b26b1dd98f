/// A min-heap of events by (time, sequence): events at the same time run in the order they
/// were scheduled, so a run depends only on its seed. The heap holds small plain entries;
/// the events themselves sit in a slab and never move (swapping them would copy messages).
/// Not generic: in a debug build every generic access looks up type metadata at run time.
struct EventQueue {
    typealias Event = Simulation.Event

    private struct Item {
        let time: UInt64
        let sequence: UInt64
        let slot: Int

        func precedes(_ other: Item) -> Bool {
            time != other.time ? time < other.time : sequence < other.sequence
        }
    }

    private var heap: [Item] = []
    private var slab: [Event?] = []
    private var freeSlots: [Int] = []
    private var nextSequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    mutating func schedule(_ event: Event, at time: UInt64) {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slab[slot] = event
        } else {
            slot = slab.count
            slab.append(event)
        }
        heap.append(Item(time: time, sequence: nextSequence, slot: slot))
        nextSequence += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (time: UInt64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let item = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].precedes(heap[smallest]) { smallest = left }
            if right < heap.count && heap[right].precedes(heap[smallest]) { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        guard let event = slab[item.slot].take() else { preconditionFailure("empty event slot") }
        freeSlots.append(item.slot)
        return (item.time, event)
    }
}
