/// Whether `history` is linearizable as a map of independent registers, one per key, each
/// starting absent: whether, for every key, there is one order of its operations that respects
/// real time (an operation that returned before another was called comes first) and that a
/// single register would have answered exactly as the store did.
///
/// Operations that `.failed` are left out; reads of `.unknown` outcome too (they saw nothing
/// anyone knows). Writes and CASes of `.unknown` outcome may take effect at any point after
/// their call, or never.
///
/// Keys are checked one after another in sorted order; the first not linearizable is reported.
/// A linearizable history takes time about linear in its length, but ruling out every order
/// can take exponential time (a violation late in a history of many concurrent operations,
/// or of many that timed out), so give a `deadline` when it matters; past it the result is
/// `.timedOut`. Without one, the result depends only on `history`.
///
/// - Throws: `MalformedHistory` for a record no client could have seen (a return before its
///   call, a write returning a value, a read failing a comparison).
public func checkLinearizability(
    _ history: [RecordedOperation], deadline: ContinuousClock.Instant? = nil
) throws(MalformedHistory) -> LinearizabilityResult {
    try MalformedHistory.validate(history)
    let timeOrigin = history.map(\.callTime).min() ?? 0
    for keyHistory in KeyHistory.partition(history) {
        switch Search(history: keyHistory, deadline: deadline).run() {
        case .linearizable:
            continue
        case .timedOut:
            return .timedOut(key: keyHistory.key)
        case .notLinearizable(let log):
            let explanation = ViolationExplanation(history: history, key: keyHistory, log: log, timeOrigin: timeOrigin)
            return .notLinearizable(key: keyHistory.key, explanation: explanation)
        }
    }
    return .linearizable
}
