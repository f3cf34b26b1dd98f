/// One key's operations, ready for the search: those that can have changed or seen something,
/// with their steps and their windows in real time.
struct KeyHistory {
    struct Entry {
        /// Position in the whole history.
        var index: Int
        var step: RegisterStep
        var call: UInt64
        /// `UInt64.max` (infinity) for an operation of unknown outcome.
        var ret: UInt64
        /// For an operation of unknown outcome, its class of interchangeable operations and its
        /// rank in that class by call (`classifyInterchangeable`); -1 for a completed one.
        var interchangeable: Int32 = -1
        var rank: Int32 = -1
        /// Its number among the completed operations, or among those of unknown outcome: the
        /// two are kept in separate sets (`LinearizedSet`).
        var slot: Int32 = -1

        var isCompleted: Bool { ret != .max }
    }

    var key: String
    var values: ValueTable
    /// The completed operations, in the history's order, then those of unknown outcome, in
    /// order of call: an operation's number in the search is its position here.
    var entries: [Entry] = []
    var interchangeableClasses = 0
    var completedCount = 0
    var unknownCount = 0

    /// Splits `history` by key, in sorted key order. Checking each key alone is enough: a
    /// history of independent objects is linearizable iff each object's sub-history is
    /// (Herlihy & Wing's locality), which keeps each search small.
    static func partition(_ history: [RecordedOperation]) -> [KeyHistory] {
        var byKey: [String: (completed: [Entry], unknown: [Entry], values: ValueTable)] = [:]
        for (index, operation) in history.enumerated() {
            var parts = byKey.removeValue(forKey: operation.key) ?? ([], [], ValueTable())
            if let step = RegisterStep(operation, values: &parts.values) {
                let entry = Entry(index: index, step: step, call: operation.callTime, ret: operation.returnTime)
                if operation.outcome == .unknown {
                    parts.unknown.append(entry)
                } else {
                    parts.completed.append(entry)
                }
            }
            byKey[operation.key] = parts
        }
        return byKey.keys.sorted().map { key in
            let parts = byKey[key]!
            var keyHistory = KeyHistory(key: key, values: parts.values)
            keyHistory.completedCount = parts.completed.count
            keyHistory.unknownCount = parts.unknown.count
            // Unknown ones in order of call: the search tries them in this order.
            let unknown = parts.unknown.sorted { ($0.call, $0.index) < ($1.call, $1.index) }
            keyHistory.entries = parts.completed + unknown.map {
                var entry = $0
                entry.ret = .max
                return entry
            }
            for position in keyHistory.entries.indices {
                keyHistory.entries[position].slot = Int32(
                    position < parts.completed.count ? position : position - parts.completed.count)
            }
            keyHistory.classifyInterchangeable()
            return keyHistory
        }
    }
}
