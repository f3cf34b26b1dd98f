/// The sequential specification the history is judged against: one register per key, starting
/// absent. Values are numbered (`ValueTable`) so that the search's state, and the memo's keys,
/// are small integers rather than strings.
struct RegisterStep {
    /// What an operation's output says it did, in value numbers.
    enum Effect: Hashable {
        /// Saw `value`.
        case read(Int32)
        /// Set `value`.
        case write(Int32)
        /// Saw `expected` and set `new`. Also a CAS of unknown outcome: if it took effect, it
        /// swapped, for if it found another value it changed nothing, the same as never taking
        /// effect.
        case swap(expected: Int32, new: Int32)
        /// Saw something other than `expected`.
        case compareFailed(expected: Int32)
    }

    var effect: Effect

    /// The value after this operation from `state`, or nil if its output contradicts `state`.
    @inline(__always)
    func apply(to state: Int32) -> Int32? {
        switch effect {
        case .read(let value): return state == value ? state : nil
        case .write(let value): return value
        case .swap(let expected, let new): return state == expected ? new : nil
        case .compareFailed(let expected): return state != expected ? state : nil
        }
    }
}

/// Numbers the values of one key's history; 0 is absent.
struct ValueTable {
    static let absent: Int32 = 0
    private var numbers: [String: Int32] = [:]
    private(set) var values: [String?] = [nil]

    mutating func number(_ value: String?) -> Int32 {
        guard let value else { return Self.absent }
        if let number = numbers[value] { return number }
        let number = Int32(values.count)
        numbers[value] = number
        values.append(value)
        return number
    }

    subscript(number: Int32) -> String? { values[Int(number)] }
}

extension RegisterStep {
    /// The step for a recorded operation, or nil for one that cannot have changed or seen
    /// anything: a definite failure, or a read of unknown outcome (it returned nothing).
    init?(_ operation: RecordedOperation, values: inout ValueTable) {
        switch (operation.kind, operation.outcome) {
        case (_, .failed), (.read, .unknown):
            return nil
        case (.read, .ok(let value)):
            effect = .read(values.number(value))
        case (.read, .compareFailed), (.write, .compareFailed):
            // Rejected by `MalformedHistory.validate`.
            return nil
        case (.write(let value), .ok), (.write(let value), .unknown):
            effect = .write(values.number(value))
        case (.cas(let expected, let new), .ok), (.cas(let expected, let new), .unknown):
            effect = .swap(expected: values.number(expected), new: values.number(new))
        case (.cas(let expected, _), .compareFailed):
            effect = .compareFailed(expected: values.number(expected))
        }
    }
}
