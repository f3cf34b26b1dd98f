/// A service's standard stream.
public enum LogStream: String, Sendable, Hashable, Codable, CaseIterable {
    case stdout, stderr
}

/// One line of a service's output, as kept in its log files.
public struct LogLine: Sendable, Hashable, CustomStringConvertible {
    /// When the supervisor took the line from the service's pipe: Unix epoch nanoseconds.
    public var timestampNanoseconds: Int64
    /// Which stream it came from.
    public var stream: LogStream
    /// The line, without its newline.
    public var text: String
    /// The line has no newline yet: the service has written only this much of it so far (or
    /// ended without one).
    public var isPartial: Bool

    /// A line.
    public init(timestampNanoseconds: Int64, stream: LogStream, text: String, isPartial: Bool = false) {
        self.timestampNanoseconds = timestampNanoseconds
        self.stream = stream
        self.text = text
        self.isPartial = isPartial
    }

    /// `2026-11-26T21:26:00.123456789Z stdout the text` (CRI's log line shape).
    public var description: String {
        "\(LogTimestamp.format(timestampNanoseconds)) \(stream.rawValue) \(text)"
    }
}

/// RFC 3339 UTC timestamps with nanoseconds, fixed width (30 characters), without Foundation.
enum LogTimestamp {
    /// `YYYY-MM-DDThh:mm:ss.nnnnnnnnnZ`.
    static func format(_ nanoseconds: Int64) -> String {
        String(decoding: bytes(nanoseconds), as: UTF8.self)
    }

    static func bytes(_ nanoseconds: Int64) -> [UInt8] {
        let seconds = nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds - 999_999_999) / 1_000_000_000
        let fraction = nanoseconds - seconds * 1_000_000_000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civil(fromDays: days)
        var out: [UInt8] = []
        out.reserveCapacity(30)
        func digits(_ value: Int64, _ count: Int) {
            var divisor: Int64 = 1
            for _ in 1..<count { divisor *= 10 }
            var value = value
            for _ in 0..<count {
                out.append(UInt8(ascii: "0") + UInt8((value / divisor) % 10))
                value %= divisor
                divisor /= 10
            }
        }
        digits(year, 4); out.append(UInt8(ascii: "-"))
        digits(month, 2); out.append(UInt8(ascii: "-"))
        digits(day, 2); out.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2); out.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2); out.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2); out.append(UInt8(ascii: "."))
        digits(fraction, 9); out.append(UInt8(ascii: "Z"))
        return out
    }

    /// Parses what `format` writes; nil for anything else.
    static func parse<C: Collection<UInt8>>(_ text: C) -> Int64? where C.Index == Int {
        guard text.count == 30 else { return nil }
        let base = text.startIndex
        func number(_ offset: Int, _ count: Int) -> Int64? {
            var value: Int64 = 0
            for i in offset..<(offset + count) {
                let byte = text[base + i]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
            let minute = number(14, 2), let second = number(17, 2), let fraction = number(20, 9)
        else { return nil }
        let days = self.days(fromCivil: year, month, day)
        return ((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000_000) + fraction
    }

    /// Howard Hinnant's civil_from_days (chrono-compatible low-level date algorithms).
    static func civil(fromDays z: Int64) -> (Int64, Int64, Int64) {
        let z = z + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Howard Hinnant's days_from_civil.
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
