import Manifest
import Testing

@Suite struct DurationTests {
    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)), ("10s", .seconds(10)), ("1m30s", .seconds(90)), ("1.5h", .seconds(5400)),
        ("2h45m", .seconds(9900)), ("0s", .zero), ("1us", .microseconds(1)), ("1µs", .microseconds(1)), ("7ns", .nanoseconds(7)),
        (".5s", .milliseconds(500)),
    ])
    func parses(text: String, expected: Duration) throws {
        #expect(try DurationText.parse(text) == expected)
    }

    @Test(arguments: [
        ("5", "has no unit; write \"5s\""), ("-5s", "negative"), ("5 s", "contains spaces; write \"5s\""),
        ("5sec", "unknown unit \"sec\"; write \"s\""), ("2d", "days"), ("", "empty"), ("s", "number before each unit"),
        ("99999999999999h", "too long"), ("5x", "unknown unit \"x\""),
    ])
    func refuses(text: String, words: String) {
        do {
            _ = try DurationText.parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.message.contains(words), "\(error.message)")
        }
    }

    @Test(arguments: ["0s", "250ms", "1.5s", "1m30s", "2h", "1h0.001s", "999ns", "3us", "25h"])
    func formatsCanonically(text: String) throws {
        #expect(DurationText.format(try DurationText.parse(text)) == text)
    }
}

@Suite struct ByteSizeTests {
    @Test(arguments: [
        ("128Mi", Int64(128 << 20)), ("1Gi", 1 << 30), ("1G", 1_000_000_000), ("1.5Gi", 3 << 29), ("4KiB", 4096), ("10k", 10_000),
        ("7B", 7),
    ])
    func parses(text: String, bytes: Int64) throws {
        #expect(try ByteSize.parse(text).bytes == bytes)
    }

    @Test(arguments: [
        ("128", "has no unit"), ("128m", "\"m\" would be thousandths"), ("-1Mi", "negative"), ("12 Mi", "contains a space"),
        ("1.3B", "not a whole number"), ("99999999Pi", "too large"), ("abc", "not a size"), ("4Mb", "did you mean"),
    ])
    func refuses(text: String, words: String) {
        do {
            _ = try ByteSize.parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.message.contains(words), "\(error.message)")
        }
    }

    @Test(arguments: [(Int64(128 << 20), "128Mi"), (1_000_000, "1M"), (1023, "1023"), (3 << 29, "1536Mi")])
    func describes(bytes: Int64, text: String) {
        #expect(ByteSize(bytes: bytes).description == text)
    }
}

@Suite struct VersionConstraintTests {
    @Test(arguments: [
        (">= 6.1, < 7", "6.18.44-fc-v857", true), (">= 6.1, < 7", "7.0", false), ("~> 6.1", "6.9", true), ("~> 6.1", "7.0", false),
        ("~> 6.1.2", "6.1.9", true), ("~> 6.1.2", "6.2.0", false), ("= 5.10", "5.10.0", true), ("!= 5.10", "5.10.1", true),
        ("> 5", "v5.0.1", true), ("<= 5", "5.0.1", false),
    ])
    func compares(constraint: String, version: String, satisfied: Bool) throws {
        #expect(try VersionConstraint.parse(constraint).isSatisfied(by: version) == satisfied)
    }

    @Test(arguments: [">= ", ">= 6.x", "6.1,,7", ">= 6..1"])
    func refuses(text: String) {
        #expect(throws: DurationText.ParseError.self) { try VersionConstraint.parse(text) }
    }
}
