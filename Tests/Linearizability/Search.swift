/// Wing & Gong's search (1993) for a linearization of one key's history, with Lowe's memo
/// (2017), as Porcupine does it, and with operations of unknown outcome kept apart.
///
/// It walks the list of completed operations' events from the front. At a call, it tries to
/// linearize that operation next: if its output fits the current state and the memo has not
/// seen the configuration this leads to, it lifts the operation out of the list and starts
/// again from the front. At a return, the operation returning has not been linearized, and
/// everything called after that return must come after it: the completed operations that may
/// come next have all been tried. Then it tries the operations of unknown outcome called by
/// then, in order of call; when those are exhausted too, the last choice was wrong, so it
/// undoes it and tries the next candidate after it. The search fails when it must undo a
/// choice and has none. The stack of choices is explicit: histories have thousands of
/// operations, more than the call stack should hold.
///
/// It succeeds once every completed operation is linearized: the operations of unknown outcome
/// left over never took effect. (Porcupine puts them in the event list with their returns at
/// infinity, and places them all at the end; leaving them out is the same.) Each may take
/// effect anywhere after its call, so a failing search would try each everywhere; three
/// measures keep that in bounds (the last two leave at least one linearization, if there is
/// any, for the search to find):
///
/// * They are tried last, where the completed operations are stuck, so that the memo can skip
///   placing them where not placing them already failed (`SearchMemo`).
/// * One is placed only to let the next operation fit: the operation chosen right after it must
///   not fit the state before it. Any linearization can be made so. If the next operation also
///   fits the state before the unknown one, then either it writes (the unknown one's effect is
///   lost: leave that out), or it saw the same value before and after (the unknown one changed
///   nothing: leave it out), or it is a failed comparison (move the unknown one after it: it
///   has no return to keep it early); repeat. A configuration reached this way is not a free
///   one (what may follow is restricted), so it goes unrecorded in the memo.
/// * Interchangeable ones are placed in one order only (`classifyInterchangeable`), and the
///   candidates are found without looking at the others (`UnknownCandidates`).
struct Search {
    enum Outcome {
        case linearizable
        case notLinearizable(SearchLog)
        case timedOut
    }

    let history: KeyHistory
    let deadline: ContinuousClock.Instant?

    /// How many steps between looks at the clock: reading it on every step would cost more than
    /// the step.
    static let clockInterval = 1 << 10

    /// A choice made: the operation placed, the state before it, the memo entry it reached (-1
    /// for none), and for an operation of unknown outcome, the time bounding which of those
    /// were candidates.
    private struct Choice {
        var operation: Int32
        var stateBefore: Int32
        var memoEntry: Int
        var unknownBound: UInt64
    }

    /// Where the walk is: at a node of the event list, or among the operations of unknown
    /// outcome called no later than `bound` (the time of the first return left in the list),
    /// just after `node` of a list of `UnknownCandidates`: that of writes, then that of CASes
    /// expecting the current value.
    private enum Cursor {
        case event(Int32)
        case unknown(after: Int32, inWrites: Bool, bound: UInt64)
    }

    func run() -> Outcome {
        let entries = history.entries
        let completedCount = Int32(history.completedCount)
        var list = EventList(Array(entries.prefix(history.completedCount)))
        var linearized = LinearizedSet(completedCount: history.completedCount, unknownCount: history.unknownCount)
        var memo = SearchMemo(unknownWords: linearized.unknown.count, stateCount: history.values.values.count)
        var log = SearchLog(count: entries.count)
        var choices: [Choice] = []
        // The operations of `choices`, for the log.
        var path: [Int32] = []
        var state = ValueTable.absent
        var completedLeft = history.completedCount
        var unknown = UnknownCandidates(history)
        // Those of the configuration whose operations of unknown outcome are being tried.
        var demands = Demands()
        var cursor = Cursor.event(list.first)
        var steps = 0
        while completedLeft > 0 {
            if steps % Self.clockInterval == 0, let deadline, ContinuousClock.now >= deadline { return .timedOut }
            steps &+= 1
            // The candidate to try, or nil to backtrack.
            let candidate: Int32?
            var unknownBound: UInt64 = 0
            switch cursor {
            case .event(let node):
                // The list always ends with a return, where the walk turns to unknown outcomes.
                assert(node != EventList.end)
                if let operation = list.call(node) {
                    candidate = operation
                } else {
                    let bound = entries[Int(list.returning(node))].ret
                    demands = Demands(list, entries, state: state)
                    cursor = .unknown(after: unknown.writes(), inWrites: true, bound: bound)
                    continue
                }
            case .unknown(let node, let inWrites, let bound):
                var next = unknown.candidate(from: unknown.next(node), calledBy: bound)
                while let (found, member) = next,
                    !(entries[Int(member)].step.apply(to: state).map { demands.want($0, unknown) } ?? false)
                {
                    next = unknown.candidate(from: unknown.next(found), calledBy: bound)
                }
                if let (found, member) = next {
                    candidate = member
                    unknownBound = bound
                    cursor = .unknown(after: found, inWrites: inWrites, bound: bound)
                } else if inWrites {
                    cursor = .unknown(after: unknown.swaps(expecting: state), inWrites: false, bound: bound)
                    continue
                } else {
                    candidate = nil
                }
            }

            if let operation = candidate {
                let entry = entries[Int(operation)]
                if let last = choices.last, last.operation >= completedCount,
                    entry.step.apply(to: last.stateBefore) != nil
                {
                    // It could come before that unknown one: see the second rule above.
                    if case .event(let node) = cursor { cursor = .event(list.next(node)) }
                    continue
                }
                guard let newState = entry.step.apply(to: state) else {
                    log.refused(operation, state: state)
                    if case .event(let node) = cursor { cursor = .event(list.next(node)) }
                    continue
                }
                log.fitted(operation)
                linearized.insert(entry)
                let memoEntry: Int? =
                    entry.isCompleted
                    ? memo.insert(linearized, state: newState)
                    : memo.covers(linearized, state: newState) ? nil : -1
                guard let memoEntry else {
                    linearized.remove(entry)
                    if case .event(let node) = cursor { cursor = .event(list.next(node)) }
                    continue
                }
                choices.append(
                    Choice(operation: operation, stateBefore: state, memoEntry: memoEntry, unknownBound: unknownBound))
                path.append(operation)
                log.pushed(path)
                state = newState
                if entry.isCompleted {
                    list.lift(operation)
                    completedLeft -= 1
                } else {
                    unknown.place(entry)
                }
                cursor = .event(list.first)
            } else {
                guard let choice = choices.popLast() else { return .notLinearizable(log) }
                path.removeLast()
                log.popped(path)
                if choice.memoEntry >= 0 { memo.finish(choice.memoEntry) }
                state = choice.stateBefore
                let operation = choice.operation
                let entry = entries[Int(operation)]
                linearized.remove(entry)
                if operation < completedCount {
                    list.unlift(operation)
                    completedLeft += 1
                    cursor = .event(list.next(operation))
                } else {
                    unknown.unplace(entry)
                    demands = Demands(list, entries, state: state)
                    let inWrites = if case .write = entry.step.effect { true } else { false }
                    cursor = .unknown(after: entry.interchangeable, inWrites: inWrites, bound: choice.unknownBound)
                }
            }
        }
        return .linearizable
    }
}
