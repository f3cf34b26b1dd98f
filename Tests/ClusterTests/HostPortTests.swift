import Testing

@testable import Cluster

/// The one `host:port` parser: flags, the member list and certificate addresses all use it.
@Suite struct HostPortTests {
    @Test func addressesParseAndPrintBack() throws {
        let v4 = try #require(HostPort("10.0.0.1:4647"))
        #expect(v4 == HostPort(host: "10.0.0.1", port: 4647) && v4.ipAddress == "10.0.0.1" && v4.description == "10.0.0.1:4647")
        let v6 = try #require(HostPort("[fd00::1]:4647"))
        #expect(v6.host == "fd00::1" && v6.ipAddress == "fd00::1" && v6.description == "[fd00::1]:4647")
        let named = try #require(HostPort("node-a:4647"))
        #expect(named.ipAddress == nil, "a name is not put in a certificate as an address")
    }

    @Test(arguments: ["4647", ":4647", "host:", "host:x", "host:65536", "host:-1", "[]:1"])
    func malformedAddressesAreRefused(text: String) {
        #expect(HostPort(text) == nil)
    }
}
