/// Where the search for an order of one key's operations got furthest, and why it could go no
/// further: the longest prefix of a linearization it found, and the operations that could come
/// next in real time, each with why it cannot.
public struct ViolationExplanation: Sendable, Equatable, CustomStringConvertible {
    /// An operation with its position in the history passed to `checkLinearizability`, so it can
    /// be found in a log of that history.
    public struct Placed: Sendable, Equatable {
        public var index: Int
        public var operation: RecordedOperation
        /// The key's value after this operation, in this order.
        public var valueAfter: String?
    }

    /// An operation that real time allows next after the prefix, but that does not lead to a
    /// linearization there.
    public struct Stuck: Sendable, Equatable {
        public var index: Int
        public var operation: RecordedOperation
        /// Whether its output is consistent with the value after the prefix. If it is, what
        /// failed is every way of going on after it.
        public var fitsAfterPrefix: Bool
        /// Whether its output was consistent with the value at some point of the whole search.
        public var fitsSomewhere: Bool
        /// The values the key had, anywhere in the search, when this operation was tried and
        /// its output contradicted them; in the order first met, at most
        /// `ViolationExplanation.refusalsKept`.
        public var refusedWhenValueWas: [String?]
        /// Whether more values than those were met.
        public var refusalsTruncated: Bool
        /// A sentence for people, such as: read returned "v5", but the value was "v7" at every
        /// point it could be placed.
        public var reason: String
    }

    /// How many distinct contradicting values are kept per operation.
    public static let refusalsKept = 4

    public var key: String
    /// The longest prefix of a linearization found, in order (the first found of that length).
    public var longestPrefix: [Placed]
    public var valueAfterPrefix: String?
    /// Completed operations of the key left out of the prefix, in all.
    public var remaining: Int
    /// The completed operations that could come next, by call time.
    public var stuck: [Stuck]
    /// The operations of unknown outcome that could have taken effect next, by call time (one
    /// of each interchangeable kind): if any fits here, taking effect here did not help either.
    public var unknownTriedNext: [Stuck]
    /// Times in `description` are shown relative to this (the first call of the whole history).
    public var timeOrigin: UInt64

    /// How many operations of the prefix `description` shows, counting back from its end.
    static let prefixShown = 12
    /// How many of `unknownTriedNext` it shows.
    static let unknownShown = 5

    public var description: String {
        let time = TimeFormatter(origin: timeOrigin)
        var lines = ["key \(ValueFormatter.quote(key)) is not linearizable (times in ms since the first call)."]
        let hidden = longestPrefix.count - min(longestPrefix.count, Self.prefixShown)
        lines.append(
            "Longest linearizable prefix found: \(longestPrefix.count) operations (completed operations left out: "
                + "\(remaining)); after it the value is \(ValueFormatter.quote(valueAfterPrefix)).")
        if hidden > 0 { lines.append("  … \(hidden) earlier operations") }
        for placed in longestPrefix.dropFirst(hidden) {
            lines.append(
                "  #\(placed.index) \(placed.operation) \(time.window(placed.operation))"
                    + "  → value \(ValueFormatter.quote(placed.valueAfter))")
        }
        lines.append("None of the operations that could come next leads to a linearization:")
        for entry in stuck {
            lines.append("  #\(entry.index) \(entry.operation) \(time.window(entry.operation))")
            lines.append("      \(entry.reason)")
        }
        let fitting = unknownTriedNext.filter(\.fitsAfterPrefix)
        if !fitting.isEmpty {
            lines.append("Of unknown outcome, these could have taken effect here, but that leads nowhere either:")
            for entry in fitting.prefix(Self.unknownShown) {
                lines.append("  #\(entry.index) \(entry.operation) \(time.window(entry.operation))")
            }
            if fitting.count > Self.unknownShown { lines.append("  … \(fitting.count - Self.unknownShown) more") }
        }
        return lines.joined(separator: "\n")
    }
}
