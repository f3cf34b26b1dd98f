// Text for people reading a failed test: an operation's description leaves out its times, which
// only mean something relative to the rest of the history (`TimeFormatter`).

extension RecordedOperation: CustomStringConvertible {
    public var description: String {
        let key = ValueFormatter.quote(self.key)
        let asked: String
        switch kind {
        case .read: asked = "read \(key)"
        case .write(let value): asked = "write \(key) \(ValueFormatter.quote(value))"
        case .cas(let expected, let new):
            asked = "cas \(key) \(ValueFormatter.quote(expected))→\(ValueFormatter.quote(new))"
        }
        let answer: String
        switch (kind, outcome) {
        case (.read, .ok(let value)): answer = "returned \(ValueFormatter.quote(value))"
        case (_, .ok): answer = "ok"
        case (_, .compareFailed): answer = "comparison failed"
        case (_, .failed): answer = "failed"
        case (_, .unknown): answer = "unknown"
        }
        return "client \(client) \(asked): \(answer)"
    }
}

enum ValueFormatter {
    /// A value as Swift would write it, with absence as `absent` so it cannot be mistaken for a
    /// string.
    static func quote(_ value: String?) -> String {
        guard let value else { return "absent" }
        return "\"" + value.replacingOccurrences("\\", with: "\\\\").replacingOccurrences("\"", with: "\\\"") + "\""
    }

    /// "a", "a or b", "a, b or c".
    static func alternatives(_ values: [String?], truncated: Bool) -> String {
        let quoted = values.map(quote)
        if truncated { return quoted.joined(separator: ", ") + " or others" }
        guard let last = quoted.last else { return "" }
        let rest = quoted.dropLast()
        return rest.isEmpty ? last : rest.joined(separator: ", ") + " or " + last
    }
}

extension String {
    // Foundation's replacingOccurrences(of:with:), without Foundation.
    fileprivate func replacingOccurrences(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}

/// Times as milliseconds, to the microsecond, since `origin`.
struct TimeFormatter {
    var origin: UInt64

    func milliseconds(_ time: UInt64) -> String {
        let sign = time < origin ? "-" : ""
        let micros = (time < origin ? origin - time : time - origin) / 1_000
        let fraction = String(micros % 1_000)
        return sign + String(micros / 1_000) + "." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    /// "[1.000, 2.500]"; for an operation of unknown outcome "[1.000, ∞) gave up at 2.500".
    func window(_ operation: RecordedOperation) -> String {
        let call = milliseconds(operation.callTime)
        if operation.outcome == .unknown {
            return "[\(call), ∞) gave up at \(milliseconds(operation.returnTime))"
        }
        return "[\(call), \(milliseconds(operation.returnTime))]"
    }
}
