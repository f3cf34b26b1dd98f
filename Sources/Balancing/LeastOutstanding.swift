/// `least-outstanding`: the eligible backend with the fewest requests in flight.
///
/// A heap keyed on (outstanding, last picked), so a pick is O(1) and each start or finish
/// O(log n). Among equally loaded backends the one picked longest ago wins, which rotates
/// through them instead of always favouring the first (with every request finishing at once,
/// the strategy degrades to round robin, not to "always backend 0"). Weights are ignored, as
/// in HAProxy's `leastconn` with equal weights.
struct LeastOutstandingQueue: Sendable {
    private var heap = SlotHeap<FewestOutstanding>()

    var first: Int? { heap.first }

    mutating func rebuild(eligible: [Int], slots: [BackendSlot]) {
        heap.rebuild(eligible, slots: slots)
    }

    /// After `slot`'s outstanding count or pick time changed.
    mutating func changed(_ slot: Int, slots: [BackendSlot]) {
        heap.keyChanged(slot, slots: slots)
    }

    enum FewestOutstanding: SlotOrder {
        static func precedes(_ a: Int, _ b: Int, in slots: [BackendSlot]) -> Bool {
            (slots[a].outstanding, slots[a].lastPickSequence, slots[a].incarnation)
                < (slots[b].outstanding, slots[b].lastPickSequence, slots[b].incarnation)
        }
    }
}
