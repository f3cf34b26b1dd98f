/// Durations as manifests write them: a sequence of number-unit pairs, as in Go and Nomad
/// (`"250ms"`, `"10s"`, `"1m30s"`, `"1.5h"`); units ns, us (or µs), ms, s, m, h.
public enum DurationText {
    /// Why a duration string could not be read; `message` says what to write instead.
    public struct ParseError: Error, Sendable, Equatable {
        public var message: String
    }

    private static let nanosecondsPerUnit: [(unit: String, nanoseconds: Int64)] = [
        ("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000),
        ("m", 60_000_000_000), ("h", 3_600_000_000_000),
    ]

    /// Units people write out of habit, and what to write instead.
    private static let unitFixes: [String: String] = [
        "sec": "s", "secs": "s", "second": "s", "seconds": "s", "min": "m", "mins": "m", "minute": "m",
        "minutes": "m", "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "msec": "ms", "millis": "ms",
        "S": "s", "M": "m", "H": "h", "MS": "ms",
    ]

    /// Parses `text`; the error message names the problem and the fix.
    public static func parse(_ text: String) throws(ParseError) -> Duration {
        let fast = text.utf8.withContiguousStorageIfAvailable(parseWellFormed) ?? parseWellFormed(Array(text.utf8).withUnsafeBufferPointer { $0 })
        if let fast { return .nanoseconds(fast) }
        return try diagnose(text)
    }

    /// The common case without allocating: number-unit pairs, plain ASCII, no overflow.
    /// Returns nil for anything else, which ``diagnose(_:)`` then explains.
    private static func parseWellFormed(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        var total: Int64 = 0
        guard !bytes.isEmpty else { return nil }
        while index < bytes.count {
            var whole: Int64 = 0
            var digits = 0
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                guard digits < 18 else { return nil }
                whole = whole * 10 + Int64(bytes[index] - 0x30)
                digits += 1
                index += 1
            }
            var fractionStart = index
            var fractionEnd = index
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                fractionStart = index
                while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
                fractionEnd = index
            }
            guard digits > 0 || fractionEnd > fractionStart else { return nil }
            let scale: Int64
            switch (index < bytes.count ? bytes[index] : 0, index + 1 < bytes.count ? bytes[index + 1] : 0) {
            case (UInt8(ascii: "h"), _): scale = 3_600_000_000_000; index += 1
            case (UInt8(ascii: "m"), UInt8(ascii: "s")): scale = 1_000_000; index += 2
            case (UInt8(ascii: "m"), _): scale = 60_000_000_000; index += 1
            case (UInt8(ascii: "s"), _): scale = 1_000_000_000; index += 1
            case (UInt8(ascii: "u"), UInt8(ascii: "s")): scale = 1_000; index += 2
            case (UInt8(ascii: "n"), UInt8(ascii: "s")): scale = 1; index += 2
            default: return nil
            }
            let (scaled, overflow1) = whole.multipliedReportingOverflow(by: scale)
            guard !overflow1 else { return nil }
            var fractional: Int64 = 0
            var place = scale
            for position in fractionStart..<fractionEnd {
                place /= 10
                if place == 0 { break }
                fractional += Int64(bytes[position] - 0x30) * place
            }
            let (sum, overflow2) = total.addingReportingOverflow(scaled + fractional)
            guard !overflow2 else { return nil }
            total = sum
        }
        return total
    }

    /// Parses what the fast path refused, to tell exactly what is wrong with it.
    private static func diagnose(_ text: String) throws(ParseError) -> Duration {
        if text.isEmpty { throw ParseError(message: "is empty; write a duration such as \"10s\"") }
        if text.hasPrefix("-") {
            throw ParseError(message: "\"\(text)\" is negative; durations are zero or more, e.g. \"\(text.dropFirst())\"")
        }
        if text.contains(" ") {
            throw ParseError(message: "\"\(text)\" contains spaces; write \"\(text.replacingAll(" ", with: ""))\"")
        }
        if text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
            throw ParseError(message: "\"\(text)\" has no unit; write \"\(text)s\" (units: ns, us, ms, s, m, h)")
        }
        let scalars = Array(text.unicodeScalars)
        var index = 0
        var total: Int64 = 0
        while index < scalars.count {
            var wholeDigits: Int64 = 0
            var fraction: [Int64] = []
            var sawDigit = false
            while index < scalars.count, let digit = scalars[index].decimalDigit {
                sawDigit = true
                let (shifted, overflow1) = wholeDigits.multipliedReportingOverflow(by: 10)
                let (added, overflow2) = shifted.addingReportingOverflow(digit)
                if overflow1 || overflow2 { throw tooLong(text) }
                wholeDigits = added
                index += 1
            }
            if index < scalars.count, scalars[index] == "." {
                index += 1
                while index < scalars.count, let digit = scalars[index].decimalDigit {
                    sawDigit = true
                    fraction.append(digit)
                    index += 1
                }
            }
            guard sawDigit else {
                throw ParseError(message: "\"\(text)\" is not a duration; write a number before each unit, e.g. \"1m30s\"")
            }
            var unit = ""
            while index < scalars.count, scalars[index].decimalDigit == nil, scalars[index] != "." {
                unit.unicodeScalars.append(scalars[index])
                index += 1
            }
            guard !unit.isEmpty else {
                throw ParseError(message: "\"\(text)\" ends without a unit; write \"\(text)s\" (units: ns, us, ms, s, m, h)")
            }
            guard let scale = nanosecondsPerUnit.first(where: { $0.unit == unit })?.nanoseconds else {
                if let fix = unitFixes[unit] {
                    throw ParseError(message: "\"\(text)\" has unknown unit \"\(unit)\"; write \"\(fix)\" instead (units: ns, us, ms, s, m, h)")
                }
                if unit == "d" || unit == "day" || unit == "days" {
                    throw ParseError(message: "\"\(text)\" uses days; write hours instead, e.g. \"24h\"")
                }
                throw ParseError(message: "\"\(text)\" has unknown unit \"\(unit)\"; use ns, us, ms, s, m or h")
            }
            let (whole, overflow1) = wholeDigits.multipliedReportingOverflow(by: scale)
            if overflow1 { throw tooLong(text) }
            // The fraction is exact to the nanosecond; finer digits are dropped.
            var fractional: Int64 = 0
            var place = scale
            for digit in fraction {
                place /= 10
                if place == 0 { break }
                fractional += digit * place
            }
            let (sum1, overflow2) = total.addingReportingOverflow(whole)
            let (sum2, overflow3) = sum1.addingReportingOverflow(fractional)
            if overflow2 || overflow3 { throw tooLong(text) }
            total = sum2
        }
        return .nanoseconds(total)
    }

    /// The shortest canonical spelling: `"0s"`, `"250ms"`, `"1.5s"`, `"1m30s"`, `"2h"`.
    public static func format(_ duration: Duration) -> String {
        let nanoseconds = duration.totalNanoseconds
        if nanoseconds == 0 { return "0s" }
        if nanoseconds < 1_000_000_000 {
            if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
            if nanoseconds % 1_000 == 0 { return "\(nanoseconds / 1_000)us" }
            return "\(nanoseconds)ns"
        }
        var text = ""
        let hours = nanoseconds / 3_600_000_000_000
        let minutes = nanoseconds / 60_000_000_000 % 60
        let remainder = nanoseconds % 60_000_000_000
        if hours > 0 { text += "\(hours)h" }
        if minutes > 0 { text += "\(minutes)m" }
        if remainder > 0 {
            let seconds = remainder / 1_000_000_000
            var fraction = String(remainder % 1_000_000_000)
            if fraction == "0" {
                text += "\(seconds)s"
            } else {
                fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
                while fraction.hasSuffix("0") { fraction.removeLast() }
                text += "\(seconds).\(fraction)s"
            }
        }
        return text
    }

    /// The spelling for people, in events and messages: ``format(_:)`` of the duration rounded
    /// to what a reader can use — to the millisecond below 10s (`"180ms"`, `"2.5s"`), to the
    /// second from there on (`"10m"`, `"1m30s"`), finer only below a millisecond. A duration
    /// already that coarse is written exactly, so it reads back through ``parse(_:)`` to itself.
    /// Negative durations get a leading `-`, which the parser refuses.
    public static func formatRounded(_ duration: Duration) -> String {
        if duration < .zero { return "-" + formatRounded(.zero - duration) }
        let (seconds, attoseconds) = duration.components
        // Clamped rather than trapping: a watchdog timeout from WATCHDOG_USEC can be huge.
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (sum, carry) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        let nanoseconds = overflow || carry ? Int64.max : sum
        let step: Int64
        switch nanoseconds {
        case ..<1_000: step = 1
        case ..<1_000_000: step = 1_000
        case ..<10_000_000_000: step = 1_000_000
        default: step = 1_000_000_000
        }
        var rounded = nanoseconds / step * step
        if nanoseconds % step * 2 >= step, rounded <= Int64.max - step { rounded += step }
        return format(.nanoseconds(rounded))
    }

    private static func tooLong(_ text: String) -> ParseError {
        ParseError(message: "\"\(text)\" is too long; durations are at most 2562047h")
    }
}

extension Duration: ManifestValue {
    public static var schema: ValueSchema {
        ValueSchema(typeName: "duration", json: ["type": "string", "pattern": "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|ms|s|m|h)(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|ms|s|m|h))*$"])
    }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> Duration? {
        switch json {
        case .string(let text):
            do throws(DurationText.ParseError) {
                return try DurationText.parse(text)
            } catch {
                issues.report(path(), error.message)
            }
        case .integer(let number):
            issues.report(path(), "\(number) has no unit; write \"\(number)s\" (durations are strings such as \"250ms\", \"10s\", \"1m30s\")")
        default:
            issues.report(path(), "must be a duration string such as \"10s\", not \(json.kindDescription)")
        }
        return nil
    }

    public var json: JSONValue { .string(DurationText.format(self)) }

    /// The duration in whole nanoseconds (manifest durations are never finer).
    public var totalNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

extension Unicode.Scalar {
    fileprivate var decimalDigit: Int64? {
        value >= 0x30 && value <= 0x39 ? Int64(value - 0x30) : nil
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}
