/// An amount of memory or disk: an integer of bytes, or a string with a unit — binary
/// (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, as Kubernetes writes them) or decimal (`K`, `M`, `G`, `T`, `P`).
public struct ByteSize: ManifestValue, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var bytes: Int64

    public init(bytes: Int64) {
        self.bytes = bytes
    }

    public static func kibibytes(_ count: Int64) -> ByteSize { ByteSize(bytes: count << 10) }
    public static func mebibytes(_ count: Int64) -> ByteSize { ByteSize(bytes: count << 20) }
    public static func gibibytes(_ count: Int64) -> ByteSize { ByteSize(bytes: count << 30) }

    public static func < (lhs: ByteSize, rhs: ByteSize) -> Bool { lhs.bytes < rhs.bytes }

    private static let units: [(suffix: String, multiplier: Int64)] = [
        ("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40), ("Pi", 1 << 50),
        ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40), ("PiB", 1 << 50),
        ("K", 1_000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000), ("P", 1_000_000_000_000_000),
        ("k", 1_000), ("KB", 1_000), ("kB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000),
        ("B", 1),
    ]

    /// Parses the string form; the error message says what to write instead.
    public static func parse(_ text: String) throws(DurationText.ParseError) -> ByteSize {
        if let bytes = text.utf8.withContiguousStorageIfAvailable(parseWellFormed) ?? nil { return ByteSize(bytes: bytes) }
        return try diagnose(text)
    }

    /// The common case without allocating: whole number and a binary or decimal unit letter.
    private static func parseWellFormed(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        var number: Int64 = 0
        while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39, index < 15 {
            number = number * 10 + Int64(bytes[index] - 0x30)
            index += 1
        }
        guard index > 0, index < bytes.count else { return nil }
        let shift: Int64
        switch bytes[index] {
        case UInt8(ascii: "K"): shift = 1
        case UInt8(ascii: "M"): shift = 2
        case UInt8(ascii: "G"): shift = 3
        case UInt8(ascii: "T"): shift = 4
        default: return nil
        }
        let rest = bytes.count - index - 1
        let multiplier: Int64
        if rest == 0 {
            multiplier = [1_000, 1_000_000, 1_000_000_000, 1_000_000_000_000][Int(shift) - 1]
        } else if rest == 1, bytes[index + 1] == UInt8(ascii: "i") {
            multiplier = 1 << (10 * shift)
        } else {
            return nil
        }
        let (result, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : result
    }

    /// Parses what the fast path refused, to tell exactly what is wrong with it.
    private static func diagnose(_ text: String) throws(DurationText.ParseError) -> ByteSize {
        if text.isEmpty { throw DurationText.ParseError(message: "is empty; write a size such as \"128Mi\"") }
        if text.hasPrefix("-") { throw DurationText.ParseError(message: "\"\(text)\" is negative; sizes are zero or more") }
        let numberEnd = text.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? text.endIndex
        let numberText = text[..<numberEnd]
        let unit = text[numberEnd...]
        if unit.hasPrefix(" ") {
            throw DurationText.ParseError(message: "\"\(text)\" contains a space; write \"\(text.replacingAll(" ", with: ""))\"")
        }
        guard !numberText.isEmpty, let number = Double(numberText) else {
            throw DurationText.ParseError(message: "\"\(text)\" is not a size; write a number and a unit, e.g. \"128Mi\" or \"1G\"")
        }
        if unit.isEmpty {
            throw DurationText.ParseError(message: "\"\(text)\" has no unit; write \"\(text)Mi\" or another unit (Ki, Mi, Gi, K, M, G), or \(text) without quotes for bytes")
        }
        guard let multiplier = units.first(where: { $0.suffix == unit })?.multiplier else {
            let hint = unit == "m" ? " (\"m\" would be thousandths); write \"Mi\" or \"M\"" : Suggestion.hint(for: String(unit), among: ["Ki", "Mi", "Gi", "Ti", "K", "M", "G", "T"])
            throw DurationText.ParseError(message: "\"\(text)\" has unknown unit \"\(unit)\"\(hint); units are Ki, Mi, Gi, Ti, Pi (1024) and K, M, G, T, P (1000)")
        }
        let bytes = number * Double(multiplier)
        guard bytes < 9.2e18 else { throw DurationText.ParseError(message: "\"\(text)\" is too large") }
        guard bytes == bytes.rounded() else {
            throw DurationText.ParseError(message: "\"\(text)\" is not a whole number of bytes; write it in a smaller unit")
        }
        // Whole numbers are multiplied exactly; Double is exact only below 2^53.
        if let whole = Int64(numberText) {
            let (exact, overflow) = whole.multipliedReportingOverflow(by: multiplier)
            if overflow { throw DurationText.ParseError(message: "\"\(text)\" is too large") }
            return ByteSize(bytes: exact)
        }
        return ByteSize(bytes: Int64(bytes))
    }

    /// The bytes a JSON value denotes, when it is a valid size.
    static func bytes(of json: JSONValue) -> Int64? {
        switch json {
        case .integer(let number): number >= 0 ? number : nil
        case .string(let text): try? parse(text).bytes
        default: nil
        }
    }

    public static var schema: ValueSchema {
        ValueSchema(
            typeName: "size", json: ["oneOf": [["type": "integer", "minimum": 0], ["type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|KiB|MiB|GiB|TiB|PiB|K|M|G|T|P|k|KB|kB|MB|GB|TB|B)$"]]])
    }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> ByteSize? {
        switch json {
        case .integer(let number) where number >= 0:
            return ByteSize(bytes: number)
        case .integer(let number):
            issues.report(path(), "\(number) is negative; sizes are zero or more")
        case .string(let text):
            do throws(DurationText.ParseError) {
                return try parse(text)
            } catch {
                issues.report(path(), error.message)
            }
        default:
            issues.report(path(), "must be a size such as \"128Mi\" or a number of bytes, not \(json.kindDescription)")
        }
        return nil
    }

    /// The exact value in the largest binary unit that divides it, else decimal, else bytes.
    public var description: String {
        guard bytes > 0 else { return "0" }
        for (suffix, multiplier) in [("Pi", Int64(1) << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)]
        where bytes % multiplier == 0 {
            return "\(bytes / multiplier)\(suffix)"
        }
        for (suffix, multiplier) in [("P", Int64(1_000_000_000_000_000)), ("T", 1_000_000_000_000), ("G", 1_000_000_000), ("M", 1_000_000), ("K", 1_000)]
        where bytes % multiplier == 0 {
            return "\(bytes / multiplier)\(suffix)"
        }
        return String(bytes)
    }

    public var json: JSONValue {
        let text = description
        return Int64(text) != nil ? .integer(bytes) : .string(text)
    }
}
