import Foundation

/// A `Retry-After` header (RFC 9110 §10.2.3), as a registry's 429 or 503 sends it: a number of
/// seconds, or an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`, or the obsolete RFC 850 and
/// asctime forms a recipient must also read, §5.6.7).
enum RetryAfter {
    /// How long the header asks to wait from `now`: nil for a value that is neither form; zero
    /// for a date already past.
    static func delay(_ value: String, now: Date = Date()) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if !text.isEmpty, text.allSatisfy(\.isASCIIDigit) {
            // A number too large for Int is still a wait: the longest one.
            return .seconds(Int(text) ?? Int.max)
        }
        guard let date = httpDate(text) else { return nil }
        let milliseconds = (date.timeIntervalSince(now) * 1000).rounded(.up)
        return .milliseconds(Int64(max(0, min(milliseconds, Double(Int64.max / 2)))))
    }

    /// The three forms of RFC 9110 §5.6.7, in GMT.
    private static let dateFormats = [
        "EEE, dd MMM yyyy HH:mm:ss 'GMT'",  // IMF-fixdate
        "EEEE, dd-MMM-yy HH:mm:ss 'GMT'",  // RFC 850
        "EEE MMM d HH:mm:ss yyyy",  // asctime
    ]

    static func httpDate(_ text: String) -> Date? {
        // asctime pads a one-digit day with a space: "Sun Nov  6 08:49:37 1994".
        let collapsed = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in dateFormats {
            formatter.dateFormat = format
            if let date = formatter.date(from: collapsed) { return date }
        }
        return nil
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
