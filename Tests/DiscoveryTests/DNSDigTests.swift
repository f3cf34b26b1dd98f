import Discovery
import Foundation
import Testing
import TestSupport

/// Acceptance: Debian's `dig` against a running server, its output parsed.
/// On threads of their own: each test waits for its `dig` processes.
@Suite(.dedicatedThread) struct DNSDigTests {
    @Test func aRecordsAreThePassingInstancesOnly() async throws {
        try await DNSFixture.withServer { _, port in
            let result = try DigResult.run(port: port, ["web.service.flotilla.", "A"])
            #expect(result.status == "NOERROR")
            #expect(result.flags.contains("aa"))
            #expect(Set(result.answers("A")) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
            #expect(result.answers("A").count == 3)
        }
    }

    /// On 0.0.0.0 an answer leaves from the address its query went to. A query to 127.0.0.2
    /// (local, but not the loopback device's own address) got its answer from 127.0.0.1, the
    /// address the kernel picks for the route back, and dig drops such an answer ("reply from
    /// unexpected source") as every resolver does. Two sockets (SO_REUSEPORT) do the same.
    /// On :: (both families on one socket) the same, IPv4 queries included.
    @Test(arguments: [("0.0.0.0", 1), ("0.0.0.0", 2), ("::", 1)])
    func onEveryAddressTheAnswerComesFromTheAddressAsked(host: String, udpSockets: Int) async throws {
        if host == "::", !((try? String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8)) ?? "").contains("00000000000000000000000000000001") {
            print("skipped: ::1 is not available")  // A kernel without IPv6 on loopback.
            return
        }
        let configuration = DNSServer.Configuration(port: 0, udpSocketCount: udpSockets, shuffleSeed: 1)
        try await DNSFixture.withServer(configuration: configuration, host: host) { _, port in
            for address in (host == "::" ? ["::1", "127.0.0.2"] : ["127.0.0.1", "127.0.0.2"]) {
                for _ in 0..<4 {
                    let result = try DigResult.run(port: port, ["@" + address, "web.service.flotilla.", "A"])
                    #expect(result.status == "NOERROR" && result.answers("A").count == 3, "@\(address): \(result.output)")
                }
            }
        }
    }

    @Test func addressesComeInEveryOrderAcrossQueries() async throws {
        try await DNSFixture.withServer { _, port in
            var orders: Set<[String]> = []
            for _ in 0..<40 {
                orders.insert(try DigResult.run(port: port, ["+short", "web.service.flotilla."]).output
                    .split(separator: "\n").map(String.init))
            }
            #expect(orders.count == 6, "orders seen: \(orders)")
        }
    }

    @Test func aaaaRecordsAndNoDataWithSOA() async throws {
        try await DNSFixture.withServer { _, port in
            let api = try DigResult.run(port: port, ["api.service.flotilla.", "AAAA"])
            #expect(api.answers("AAAA") == ["2001:db8::10"])
            // web has IPv4 instances only: NOERROR, no answer, the SOA in authority (RFC 2308 §2.2).
            let web = try DigResult.run(port: port, ["web.service.flotilla.", "AAAA"])
            #expect(web.status == "NOERROR")
            #expect(web.answer.isEmpty)
            #expect(web.authority.count == 1)
            #expect(web.authority.first?[3] == "SOA")
            #expect(web.authority.first?[4] == "ns.flotilla.")
            let txt = try DigResult.run(port: port, ["web.service.flotilla.", "TXT"])
            #expect(txt.status == "NOERROR" && txt.answer.isEmpty && txt.authority.first?[3] == "SOA")
        }
    }

    @Test func srvRecordsWithTargetsInTheAdditionalSection() async throws {
        try await DNSFixture.withServer { _, port in
            let result = try DigResult.run(port: port, ["web.service.flotilla.", "SRV"])
            #expect(Set(result.answers("SRV")) == [
                "1 1 8080 n1.node.flotilla.", "1 1 8080 n2.node.flotilla.", "1 1 8080 n3.node.flotilla.",
            ])
            let additional = Set(result.additional.filter { $0[3] == "A" || $0[3] == "AAAA" }.map { "\($0[0]) \($0[4])" })
            #expect(additional == [
                "n1.node.flotilla. 192.0.2.1", "n2.node.flotilla. 192.0.2.2", "n2.node.flotilla. 2001:db8::2",
                "n3.node.flotilla. 192.0.2.3",
            ])
        }
    }

    @Test func srvForANamedPortAndAnAddressNotTheNodes() async throws {
        try await DNSFixture.withServer { _, port in
            let metrics = try DigResult.run(port: port, ["_metrics._tcp.web.service.flotilla.", "SRV"])
            #expect(metrics.answers("SRV").count == 3)
            #expect(metrics.answers("SRV").allSatisfy { $0.hasPrefix("1 1 9100 ") })
            // api's IPv6 instance listens on an address that is not its node's: its target is the
            // address's own name, which resolves to exactly that address.
            let grpc = try DigResult.run(port: port, ["_grpc._tcp.api.service.flotilla.", "SRV"])
            #expect(Set(grpc.answers("SRV")) == [
                "1 1 7000 20010db8000000000000000000000010.addr.flotilla.", "1 1 7001 n2.node.flotilla.",
            ])
            #expect(grpc.additional.contains { $0[0] == "20010db8000000000000000000000010.addr.flotilla." && $0[4] == "2001:db8::10" })
            let target = try DigResult.run(port: port, ["20010db8000000000000000000000010.addr.flotilla.", "AAAA"])
            #expect(target.answers("AAAA") == ["2001:db8::10"])
        }
    }

    @Test func tagFilter() async throws {
        try await DNSFixture.withServer { _, port in
            let v2 = try DigResult.run(port: port, ["v2.web.service.flotilla.", "A"])
            #expect(Set(v2.answers("A")) == ["192.0.2.2", "192.0.2.3"])  // not the failing .9
            let tagged = try DigResult.run(port: port, ["_http._tcp.v1.web.service.flotilla.", "SRV"])
            #expect(tagged.answers("SRV") == ["1 1 8080 n1.node.flotilla."])
        }
    }

    @Test func nodeLookup() async throws {
        try await DNSFixture.withServer { _, port in
            let a = try DigResult.run(port: port, ["n2.node.flotilla.", "A"])
            let aaaa = try DigResult.run(port: port, ["n2.node.flotilla.", "AAAA"])
            #expect(a.answers("A") == ["192.0.2.2"])
            #expect(aaaa.answers("AAAA") == ["2001:db8::2"])
        }
    }

    @Test(arguments: ["nope.service.flotilla.", "db.service.flotilla.", "x.web.service.flotilla.", "n9.node.flotilla."])
    func nxdomainWithSOA(name: String) async throws {
        try await DNSFixture.withServer { _, port in
            let result = try DigResult.run(port: port, [name, "A"])
            #expect(result.status == "NXDOMAIN")
            #expect(result.flags.contains("aa"))
            #expect(result.authority.first?[3] == "SOA")
        }
    }

    @Test func emptyNonTerminalsAreNoData() async throws {
        try await DNSFixture.withServer { _, port in
            for name in ["service.flotilla.", "node.flotilla.", "_tcp.web.service.flotilla."] {
                let result = try DigResult.run(port: port, [name, "A"])
                #expect(result.status == "NOERROR", "\(name)")
                #expect(result.answer.isEmpty && result.authority.first?[3] == "SOA", "\(name)")
            }
        }
    }

    @Test func refusedOutsideTheDomainWithoutRecursion() async throws {
        try await DNSFixture.withServer { _, port in
            let result = try DigResult.run(port: port, ["+rec", "example.com.", "A"])
            #expect(result.status == "REFUSED")
            #expect(result.flags.contains("rd"))
            #expect(!result.flags.contains("ra"))
            #expect(!result.flags.contains("aa"))
            let inside = try DigResult.run(port: port, ["+rec", "web.service.flotilla.", "A"])
            #expect(inside.flags.contains("rd") && !inside.flags.contains("ra"))
            // "xflotilla." ends with the domain's bytes but not on a label boundary.
            #expect(try DigResult.run(port: port, ["web.xflotilla.", "A"]).status == "REFUSED")
        }
    }

    @Test func apexSOAAndNS() async throws {
        try await DNSFixture.withServer(DNSFixture.catalog(ttl: .seconds(5))) { _, port in
            let soa = try DigResult.run(port: port, ["flotilla.", "SOA"])
            #expect(soa.answers("SOA") == ["ns.flotilla. hostmaster.flotilla. 7 3600 600 86400 5"])
            let ns = try DigResult.run(port: port, ["flotilla.", "NS"])
            #expect(ns.answers("NS") == ["ns.flotilla."])
            #expect(ns.additional.contains { $0[0] == "ns.flotilla." && $0[4] == "127.0.0.1" })
            #expect(ns.answer.allSatisfy { $0[1] == "5" })
        }
    }

    @Test func ttlIsConfigurable() async throws {
        try await DNSFixture.withServer(DNSFixture.catalog(ttl: .seconds(3))) { _, port in
            let result = try DigResult.run(port: port, ["web.service.flotilla.", "A"])
            #expect(result.answer.map { $0[1] } == ["3", "3", "3"])
            let negative = try DigResult.run(port: port, ["nope.service.flotilla.", "A"])
            #expect(negative.authority.first?.last == "3")  // SOA minimum: the negative TTL
        }
    }

    @Test func anyAnswersTheAddresses() async throws {
        try await DNSFixture.withServer { _, port in
            let result = try DigResult.run(port: port, ["api.service.flotilla.", "ANY"])
            #expect(Set(result.answer.map { $0[3] }) == ["A", "AAAA"])
        }
    }

    @Test func questionCaseIsEchoed() async throws {
        try await DNSFixture.withServer { _, port in
            let result = try DigResult.run(port: port, ["WeB.SeRvIcE.FlOtIlLa.", "A"])
            #expect(result.question.first?.hasPrefix("WeB.SeRvIcE.FlOtIlLa.") == true)
            #expect(result.answer.count == 3 && result.answer.allSatisfy { $0[0] == "WeB.SeRvIcE.FlOtIlLa." })
        }
    }

    @Test func largeAnswersTruncateOverUDPAndCompleteOverTCP() async throws {
        try await DNSFixture.withServer(DNSFixture.bigCatalog(count: 60)) { _, port in
            let udp = try DigResult.run(port: port, ["+noedns", "+ignore", "big.service.flotilla.", "A"])
            #expect(udp.flags.contains("tc"))
            // 512 - 12 (header) - 26 (question) = 474 bytes: 29 records of 16 bytes.
            #expect(udp.answer.count == 29)
            let tcp = try DigResult.run(port: port, ["+noedns", "+tcp", "big.service.flotilla.", "A"])
            #expect(!tcp.flags.contains("tc"))
            #expect(tcp.answer.count == 60)
            // dig retries over TCP by itself on TC.
            #expect(try DigResult.run(port: port, ["+noedns", "big.service.flotilla.", "A"]).answer.count == 60)
        }
    }

    /// A response is written into 1232 bytes first and again into the full size when something
    /// did not fit there: 200 addresses (3,238 bytes) come whole over TCP and, from a server
    /// configured to send up to 4096 bytes over UDP, with a 4096-byte EDNS0 size, and are cut at
    /// 4096 when there are more than that holds; additional records left out of the first write
    /// are there in the second.
    @Test func answersLargerThanTheFirstBufferAreComplete() async throws {
        let upTo4096 = DNSServer.Configuration(port: 0, maxUDPPayloadBytes: 4096, shuffleSeed: 1)
        try await DNSFixture.withServer(DNSFixture.bigCatalog(count: 200), configuration: upTo4096) { _, port in
            let tcp = try DigResult.run(port: port, ["+noedns", "+tcp", "big.service.flotilla.", "A"])
            #expect(!tcp.flags.contains("tc"))
            #expect(tcp.answer.count == 200)
            let udp = try DigResult.run(port: port, ["+bufsize=4096", "+ignore", "big.service.flotilla.", "A"])
            #expect(!udp.flags.contains("tc"))
            #expect(udp.answer.count == 200)
        }
        // 30 SRV answers fit in 1232 bytes, their 30 targets' addresses do not: over TCP and
        // with a 4096-byte EDNS0 size every one comes in the additional section.
        try await DNSFixture.withServer(DNSFixture.bigCatalog(count: 30), configuration: upTo4096) { _, port in
            for options in [["+noedns", "+tcp"], ["+bufsize=4096", "+ignore"]] {
                let srv = try DigResult.run(port: port, options + ["big.service.flotilla.", "SRV"])
                #expect(srv.answer.count == 30)
                #expect(srv.additional.filter { $0[3] == "A" }.count == 30)
            }
        }
        try await DNSFixture.withServer(DNSFixture.bigCatalog(count: 300), configuration: upTo4096) { _, port in
            let udp = try DigResult.run(port: port, ["+bufsize=4096", "+ignore", "big.service.flotilla.", "A"])
            #expect(udp.flags.contains("tc"))
            // 4096 - 12 - 26 - 11 (our OPT) = 4047 bytes: 252 records.
            #expect(udp.answer.count == 252)
            #expect(try DigResult.run(port: port, ["+noedns", "+tcp", "big.service.flotilla.", "A"]).answer.count == 300)
        }
    }

    /// Over TCP an answer may pass 16 KiB, beyond what a compression pointer (14 bits) reaches:
    /// a target written past that cannot own additional records by pointer. 500 SRV answers
    /// (about 19 KB): every address in the additional section must belong to the name it is
    /// given for; targets out of a pointer's reach get none (RFC 2181 §9 allows leaving them out).
    @Test func additionalRecordsOfTargetsBeyondPointerReachAreLeftOut() async throws {
        let count = 500
        try await DNSFixture.withServer(DNSFixture.bigCatalog(count: count)) { _, port in
            let result = try DigResult.run(port: port, ["+noedns", "+tcp", "big.service.flotilla.", "SRV"])
            #expect(result.status == "NOERROR")
            #expect(!result.flags.contains("tc"))
            #expect(result.answer.count == count)
            let addresses = result.additional.filter { $0[3] == "A" }
            #expect(addresses.count > 100 && addresses.count < count)
            for record in addresses {
                let index = Int(record[0].dropFirst().prefix { $0 != "." }) ?? -1
                #expect(record[0] == "b\(index).node.flotilla.", "an address owned by \(record[0])")
                #expect(record[4] == "198.51.\(100 + index >> 8).\(index & 255)", "\(record[0]) given \(record[4])")
            }
        }
    }

    /// By default no UDP answer passes the 1232 bytes we advertise, whatever the client offers:
    /// before, a client offering 4096 (older dig, some stub resolvers) got up to 4096 bytes, IP
    /// fragments on a real network (lost whole when one is dropped: a timeout, not TC and TCP)
    /// and a 100-fold amplifier on a reachable address.
    @Test func udpAnswersStayWithinWhatWeAdvertiseByDefault() async throws {
        try await DNSFixture.withServer(DNSFixture.bigCatalog(count: 200)) { _, port in
            let udp = try DigResult.run(port: port, ["+bufsize=4096", "+ignore", "big.service.flotilla.", "A"])
            #expect(udp.flags.contains("tc"))
            // 1232 - 12 - 26 - 11 (our OPT) = 1183 bytes: 73 records.
            #expect(udp.answer.count == 73)
            #expect(try DigResult.run(port: port, ["+noedns", "+tcp", "big.service.flotilla.", "A"]).answer.count == 200)
        }
    }

    @Test func ednsBufferSizeIsHonoured() async throws {
        try await DNSFixture.withServer(DNSFixture.bigCatalog(count: 60)) { _, port in
            let small = try DigResult.run(port: port, ["+bufsize=600", "+ignore", "big.service.flotilla.", "A"])
            #expect(small.flags.contains("tc"))
            // 600 - 12 - 26 - 11 (our OPT) = 551 bytes: 34 records.
            #expect(small.answer.count == 34)
            // Below 512 counts as 512 (RFC 6891 §6.2.5): 512 - 49 = 463: 28 records.
            #expect(try DigResult.run(port: port, ["+bufsize=100", "+ignore", "big.service.flotilla.", "A"]).answer.count == 28)
            let large = try DigResult.run(port: port, ["+bufsize=4096", "+ignore", "big.service.flotilla.", "A"])
            #expect(!large.flags.contains("tc"))
            #expect(large.answer.count == 60)
            #expect(large.output.contains("udp: 1232"))
        }
    }

    @Test func truncationDropsAdditionalRecordsBeforeAnswers() async throws {
        try await DNSFixture.withServer(DNSFixture.bigCatalog(count: 30)) { _, port in
            // 30 SRV answers (10 of 36 bytes, 20 of 37: targets b0… b29.node.flotilla.) take 1100
            // bytes; with header and question 1138 of the 1221 left beside the OPT: 5 A records fit.
            let result = try DigResult.run(port: port, ["+bufsize=1232", "+ignore", "big.service.flotilla.", "SRV"])
            #expect(result.answer.count == 30)
            #expect(!result.flags.contains("tc"))  // RFC 2181 §9: missing extras do not set TC
            #expect(result.additional.filter { $0[3] == "A" }.count == 5)
            #expect(result.output.contains("udp: 1232"))  // the OPT survives
        }
    }

    @Test func unknownEDNSVersionIsBADVERS() async throws {
        try await DNSFixture.withServer { _, port in
            let result = try DigResult.run(port: port, ["+edns=1", "+noednsneg", "web.service.flotilla.", "A"])
            #expect(result.status == "BADVERS")
            #expect(result.answer.isEmpty)
        }
    }

    @Test func catalogUpdateIsVisibleOnTheNextQuery() async throws {
        try await DNSFixture.withServer { server, port in
            #expect(try DigResult.run(port: port, ["new.service.flotilla.", "A"]).status == "NXDOMAIN")
            var catalog = DNSFixture.catalog()
            catalog.instances.append(DNSInstance(service: "new", node: "n1", address: DNSFixture.address("192.0.2.50"), passing: true))
            catalog.instances.removeAll { $0.service == "web" && $0.address == .ipv4(0xC000_0201) }
            let problems = try server.update(catalog)
            #expect(problems.isEmpty)
            #expect(try DigResult.run(port: port, ["new.service.flotilla.", "A"]).answers("A") == ["192.0.2.50"])
            #expect(Set(try DigResult.run(port: port, ["web.service.flotilla.", "A"]).answers("A")) == ["192.0.2.2", "192.0.2.3"])
        }
    }

    @Test func tcpAnswers() async throws {
        try await DNSFixture.withServer { _, port in
            let result = try DigResult.run(port: port, ["+tcp", "web.service.flotilla.", "SRV"])
            #expect(result.answers("SRV").count == 3)
            #expect(result.output.contains("(TCP)"))
        }
    }
}
