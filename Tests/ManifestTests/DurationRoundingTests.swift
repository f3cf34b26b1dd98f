import Manifest
import Testing

/// `DurationText.formatRounded`: durations in events and messages, written as a manifest writes
/// them and rounded to what a person can use.
@Suite struct DurationRoundingTests {
    @Test(arguments: [
        (Duration.nanoseconds(180_208_666), "180ms"), (.seconds(0.18020866606474542), "180ms"), (.seconds(600), "10m"),
        (.seconds(90), "1m30s"), (.milliseconds(2500), "2.5s"), (.nanoseconds(9_999_600_000), "10s"), (.milliseconds(9_999), "9.999s"),
        (.seconds(10.4), "10s"), (.seconds(59.6), "1m"), (.nanoseconds(999_600), "1ms"), (.nanoseconds(250_400), "250us"),
        (.nanoseconds(7), "7ns"), (.zero, "0s"), (.seconds(3600 + 0.4), "1h"), (.seconds(-1.5), "-1.5s"),
    ])
    func rounds(duration: Duration, expected: String) {
        #expect(DurationText.formatRounded(duration) == expected)
    }

    /// A duration already as coarse as the rounding is written exactly: it reads back to itself.
    @Test(arguments: ["180ms", "2.5s", "10m", "1m30s", "2h", "25h", "1h0m1s", "250us", "7ns", "0s", "9.999s"])
    func roundTripsWhereExact(text: String) throws {
        let duration = try DurationText.parse(text)
        #expect(try DurationText.parse(DurationText.formatRounded(duration)) == duration)
    }

    @Test func hugeDurationsDoNotTrap() {
        #expect(DurationText.formatRounded(.seconds(Int64.max)) == DurationText.format(.nanoseconds(Int64.max / 1_000_000_000 * 1_000_000_000)))
    }
}
