import Foundation
import Testing

@testable import ImagePull

/// `Retry-After` in the forms RFC 9110 gives it: delay-seconds and the three HTTP-date forms.
struct RetryAfterTests {
    /// 1994-11-06 08:49:37 GMT, the RFC's example.
    let example = Date(timeIntervalSince1970: 784_111_777)

    @Test func secondsAndTheThreeDateForms() {
        #expect(RetryAfter.delay("120") == .seconds(120))
        #expect(RetryAfter.delay(" 0 ") == .seconds(0))
        let now = example - 90
        for form in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            #expect(RetryAfter.delay(form, now: now) == .seconds(90), "\(form)")
        }
        // A date already past asks for no wait.
        #expect(RetryAfter.delay("Sun, 06 Nov 1994 08:49:37 GMT", now: example + 5) == .zero)
    }

    @Test func anythingElseIsIgnored() {
        for value in ["", "-5", "1.5", "soon", "Sun, 06 Nov 1994", "06 Nov 1994 08:49:37 GMT"] {
            #expect(RetryAfter.delay(value, now: example) == nil, "\(value)")
        }
        #expect(RetryAfter.delay("99999999999999999999999") == .seconds(Int.max))
    }
}

/// Which registries count as on this machine for plain HTTP.
struct LoopbackRegistryTests {
    @Test func loopbackNamesAndAddresses() {
        for registry in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "[::1]"] {
            #expect(RegistryAccess.isLoopback(registry), "\(registry)")
        }
        for registry in ["registry.example:5000", "128.0.0.1:5000", "localhost.example:5000", "10.0.0.1", "[::2]:5000", "docker.io"] {
            #expect(!RegistryAccess.isLoopback(registry), "\(registry)")
        }
    }
}
