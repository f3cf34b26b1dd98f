extension ViolationExplanation {
    /// Builds the explanation of a failed search from its log: replays the longest prefix, then
    /// looks at each operation real time allows next — those called before the earliest return
    /// among the operations left, which must itself come before anything called after it — less
    /// operations of unknown outcome that the search would only try after an interchangeable one.
    init(history: [RecordedOperation], key keyHistory: KeyHistory, log: SearchLog, timeOrigin: UInt64) {
        let entries = keyHistory.entries
        let values = keyHistory.values
        var state = ValueTable.absent
        var placed = Array(repeating: false, count: entries.count)
        var placedPerClass = Array(repeating: Int32(0), count: keyHistory.interchangeableClasses)
        var prefix: [Placed] = []
        // Without operations of unknown outcome at its end: the search placed those only for
        // what came next to fit, and nothing did.
        var longest = log.longestPrefix[...]
        while let last = longest.last, !entries[Int(last)].isCompleted { longest.removeLast() }
        for operation in longest {
            let entry = entries[Int(operation)]
            // The prefix was reached by applying these steps, so each fits.
            state = entry.step.apply(to: state) ?? state
            placed[Int(operation)] = true
            if !entry.isCompleted { placedPerClass[Int(entry.interchangeable)] += 1 }
            prefix.append(Placed(index: entry.index, operation: history[entry.index], valueAfter: values[state]))
        }
        let left = entries.indices.filter { !placed[$0] }
        let earliestReturn = left.map { entries[$0].ret }.min() ?? .max
        let next = left.filter {
            entries[$0].call <= earliestReturn
                && (entries[$0].isCompleted || placedPerClass[Int(entries[$0].interchangeable)] == entries[$0].rank)
        }.sorted { (entries[$0].call, $0) < (entries[$1].call, $1) }
        let candidates = next.map { position in
            let entry = entries[position]
            let operation = history[entry.index]
            let refusals = log.refusals(Int32(position)).map { values[$0] }
            let truncated = log.refusalsTruncated[position]
            let fitsHere = entry.step.apply(to: state) != nil
            let fitsSomewhere = log.fitted[position]
            return Stuck(
                index: entry.index, operation: operation, fitsAfterPrefix: fitsHere, fitsSomewhere: fitsSomewhere,
                refusedWhenValueWas: refusals, refusalsTruncated: truncated,
                reason: Self.reason(
                    operation, valueHere: values[state], fitsHere: fitsHere, fitsSomewhere: fitsSomewhere,
                    refusals: refusals, truncated: truncated))
        }
        self.init(
            key: keyHistory.key, longestPrefix: prefix, valueAfterPrefix: values[state],
            remaining: left.count(where: { entries[$0].isCompleted }),
            stuck: candidates.filter { $0.operation.outcome != .unknown },
            unknownTriedNext: candidates.filter { $0.operation.outcome == .unknown }, timeOrigin: timeOrigin)
    }

    private static func reason(
        _ operation: RecordedOperation, valueHere: String?, fitsHere: Bool, fitsSomewhere: Bool,
        refusals: [String?], truncated: Bool
    ) -> String {
        if operation.outcome == .unknown {
            return fitsHere
                ? "outcome unknown: it may have taken effect here, but that leads nowhere either"
                : "outcome unknown: its comparison fails here, so it cannot have taken effect here"
        }
        if fitsHere {
            return "fits here, but then the operations left cannot all be placed"
        }
        let claim: String
        switch (operation.kind, operation.outcome) {
        case (.read, .ok(let value)): claim = "returned \(ValueFormatter.quote(value))"
        case (.cas(let expected, _), .ok): claim = "succeeded, so found \(ValueFormatter.quote(expected))"
        case (.cas(let expected, _), _): claim = "failed its comparison, so did not find \(ValueFormatter.quote(expected))"
        default: claim = "does not fit"  // Writes always fit.
        }
        if fitsSomewhere {
            return "\(claim), but the value here is \(ValueFormatter.quote(valueHere)) "
                + "(it fits elsewhere, where what follows cannot be placed)"
        }
        let seen = refusals.isEmpty ? ValueFormatter.quote(valueHere) : ValueFormatter.alternatives(refusals, truncated: truncated)
        return "\(claim), but the value was \(seen) at every point it could be placed"
    }
}
