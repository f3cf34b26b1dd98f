/// `weighted`: deterministic turns in proportion to weight, interleaved rather than bunched.
///
/// Earliest deadline first over virtual time, as Envoy's `EdfScheduler` and stride scheduling
/// (Waldspurger and Weihl, "Stride Scheduling", MIT/LCS/TM-528, 1995) do. One cycle of virtual
/// time is `cycle` units; a backend of weight w has a turn every `cycle / w` units, the first
/// half a stride in, so within each cycle it has exactly w turns, spread over the cycle. We
/// prefer it to nginx's smooth weighted round robin, which gives a similar sequence but scans
/// every backend on every pick (O(n)); a heap makes a pick O(log n).
///
/// Integer virtual time, so that one seed and one set give one sequence on every machine.
/// `cycle` is 2^40: for weights up to 65 535 the rounding of `cycle / w` never moves a turn
/// across a cycle's end (that needs cycle > 2w² + w), and passes wrap around UInt64 safely
/// because all live passes stay within a few cycles of each other (compared by signed
/// difference, as TCP compares sequence numbers).
struct WeightedSchedule: Sendable {
    static let cycle: UInt64 = 1 << 40

    private var heap = SlotHeap<EarliestPass>()
    /// The pass of the last turn given: where a backend joining the schedule starts from.
    private var virtualTime: UInt64 = 0

    static func stride(weight: Int) -> UInt64 {
        cycle / UInt64(weight)
    }

    /// Schedules exactly the eligible slots. A backend new to the schedule, or back from an
    /// ejection with its pass behind, starts half a stride after now, as the first ones did:
    /// it neither waits a whole stride nor catches up on turns it missed.
    mutating func rebuild(eligible: [Int], slots: inout [BackendSlot]) {
        for index in eligible {
            let stride = Self.stride(weight: slots[index].backend.weight)
            if let pass = slots[index].weightedPass, !Self.isBefore(pass, virtualTime) { continue }
            slots[index].weightedPass = virtualTime &+ stride / 2
        }
        heap.rebuild(eligible, slots: slots)
    }

    /// The slot whose turn it is; its next turn is one stride later.
    mutating func next(slots: inout [BackendSlot]) -> Int? {
        guard let index = heap.first else { return nil }
        return giveTurn(to: index, slots: &slots)
    }

    /// The slot of `candidates` (scheduled slots) whose turn comes first, O(n): a retry's,
    /// which must not go to the backends it already tried.
    mutating func next(among candidates: [Int], slots: inout [BackendSlot]) -> Int? {
        guard let index = candidates.min(by: { EarliestPass.precedes($0, $1, in: slots) }) else { return nil }
        return giveTurn(to: index, slots: &slots)
    }

    private mutating func giveTurn(to index: Int, slots: inout [BackendSlot]) -> Int? {
        guard let pass = slots[index].weightedPass else { return nil }
        // A retry's turn may come after others not given yet: time does not go back for them.
        if Self.isBefore(virtualTime, pass) { virtualTime = pass }
        slots[index].weightedPass = pass &+ Self.stride(weight: slots[index].backend.weight)
        heap.keyChanged(index, slots: slots)
        return index
    }

    /// Whether pass `a` comes before pass `b`, across UInt64 wrap-around.
    static func isBefore(_ a: UInt64, _ b: UInt64) -> Bool {
        Int64(bitPattern: a &- b) < 0
    }

    /// Earliest pass first; equal passes in order of arrival in the set.
    enum EarliestPass: SlotOrder {
        static func precedes(_ a: Int, _ b: Int, in slots: [BackendSlot]) -> Bool {
            let passA = slots[a].weightedPass ?? 0
            let passB = slots[b].weightedPass ?? 0
            if passA != passB { return WeightedSchedule.isBefore(passA, passB) }
            return slots[a].incarnation < slots[b].incarnation
        }
    }
}
