import NIOCore
import Testing
import TestSupport

@testable import Discovery

/// The reader, the writer and the responder without sockets.
@Suite struct DNSWireTests {
    static func parse(_ bytes: [UInt8]) throws(DNSParseError) -> DNSQuery {
        let result: Result<DNSQuery, DNSParseError> = bytes.withUnsafeBytes { raw in
            do throws(DNSParseError) { return .success(try DNSQueryReader.query(from: raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    static func readName(_ bytes: [UInt8], at offset: Int) throws(DNSParseError) -> [UInt8] {
        let result: Result<[UInt8], DNSParseError> = bytes.withUnsafeBytes { raw in
            var reader = DNSQueryReader(raw)
            do throws(DNSParseError) {
                var skipped: [UInt8] = []
                // Move to `offset` by reading bytes (the reader has no seek).
                for _ in 0..<offset { skipped.append(try reader.readUInt8()) }
                var name: [UInt8] = []
                try reader.readName(into: &name, keep: true)
                return .success(name)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    static func respond(
        _ bytes: [UInt8], zone: DNSZone, transport: DNSTransport = .udp, seed: UInt64 = 1
    ) -> DNSReply {
        var random = DNSRandom(seed: seed)
        return DNSResponder.respond(
            to: ByteBuffer(bytes: bytes), zone: zone, transport: transport,
            limits: DNSPayloadLimits(advertisedUDPPayloadBytes: 1232, maxUDPPayloadBytes: 4096), random: &random,
            allocator: ByteBufferAllocator())
    }

    static func message(_ reply: DNSReply) throws -> TestMessage {
        guard case .send(let buffer, _, _) = reply else { throw TestMessage.Malformed() }
        return try TestMessage(Array(buffer.readableBytesView))
    }

    @Test func queryRoundTrip() throws {
        let query = try Self.parse(TestQuery.make(id: 0x1234, name: "Web.Service.Flotilla.", type: 33, edns: true))
        #expect(query.header.id == 0x1234)
        #expect(query.header.flags == 0x0100)
        #expect(query.name.bytes == TestQuery.name("Web.Service.Flotilla."))  // case kept
        #expect(query.name == DNSWireName(bytes: TestQuery.name("web.service.flotilla.")))  // matched without it
        #expect(query.type == 33 && query.questionClass == 1)
        #expect(query.edns == DNSEDNS(udpPayloadBytes: 1232, version: 0, dnssecOK: false))
    }

    @Test func compressedNamesAreFollowedBackward() throws {
        // "www.example." at 12, then "foo" + pointer to it at 25.
        let packet = TestQuery.header(id: 1) + TestQuery.name("www.example.") + [3, 0x66, 0x6F, 0x6F, 0xC0, 12]
        #expect(try Self.readName(packet, at: 25) == TestQuery.name("foo.www.example."))
        // A pointer to a pointer: still backward each time.
        #expect(try Self.readName(packet + [0xC0, 25], at: 31) == TestQuery.name("foo.www.example."))
    }

    @Test func badNamesAreErrors() throws {
        let header = TestQuery.header(id: 1)
        #expect(throws: DNSParseError.badPointer) { try Self.readName(header + [0xC0, 12], at: 12) }
        #expect(throws: DNSParseError.badPointer) { try Self.readName(header + [0xC0, 14, 0], at: 12) }
        // "a" then a pointer back to "a": strictly earlier than the pointer but not than the
        // run it ends, so it would loop.
        #expect(throws: DNSParseError.badPointer) { try Self.readName(header + [1, 0x61, 0xC0, 12], at: 12) }
        #expect(throws: DNSParseError.badLabelType) { try Self.readName(header + [0x41, 0x61], at: 12) }
        #expect(throws: DNSParseError.badLabelType) { try Self.readName(header + [0x80, 0x61], at: 12) }
        #expect(throws: DNSParseError.truncated) { try Self.readName(header + [5, 0x61], at: 12) }
        #expect(throws: DNSParseError.truncated) { try Self.readName(header + [0xC0], at: 12) }
        #expect(throws: DNSParseError.truncated) { try Self.readName(header + [1, 0x61], at: 12) }
        // 40 pointers, each to the one before it: every jump is backward, yet too many.
        var chain = header + [0]
        for index in 0..<40 { chain += [0xC0, UInt8(index == 0 ? 12 : 13 + 2 * (index - 1))] }
        #expect(throws: DNSParseError.tooManyPointers) { try Self.readName(chain, at: chain.count - 2) }
        #expect(try Self.readName(chain, at: 13 + 2 * 20) == [0])  // 21 jumps: fine
    }

    @Test func nameLengthLimitIs255Octets() throws {
        let header = TestQuery.header(id: 1)
        // 3 × 64 + 62 + 1 = 255 octets: allowed; one more octet: not.
        let longest = (0..<3).flatMap { _ in [UInt8(63)] + [UInt8](repeating: 0x61, count: 63) } + [61] + [UInt8](repeating: 0x61, count: 61) + [0]
        #expect(longest.count == 255)
        #expect(try Self.readName(header + longest, at: 12).count == 255)
        let tooLong = (0..<3).flatMap { _ in [UInt8(63)] + [UInt8](repeating: 0x61, count: 63) } + [62] + [UInt8](repeating: 0x61, count: 62) + [0]
        #expect(throws: DNSParseError.nameTooLong) { try Self.readName(header + tooLong, at: 12) }
    }

    @Test func additionalSectionOPT() throws {
        let question = TestQuery.name("a.flotilla.") + [0, 1, 0, 1]
        let twoOPT = TestQuery.header(id: 1, ar: 2) + question + TestQuery.opt() + TestQuery.opt()
        #expect(throws: DNSParseError.duplicateOPT) { try Self.parse(twoOPT) }
        let withDO = TestQuery.header(id: 1, ar: 1) + question + [0, 0, 41, 0x10, 0, 0, 1, 0x80, 0, 0, 0]
        #expect(try Self.parse(withDO).edns == DNSEDNS(udpPayloadBytes: 4096, version: 1, dnssecOK: true))
        // A non-OPT additional record (e.g. a TSIG) and an answer record are skipped.
        let other = TestQuery.header(id: 1, an: 1, ar: 2) + question + [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]
            + [0xC0, 12, 0, 250, 0, 255, 0, 0, 0, 0, 0, 1, 9] + TestQuery.opt(payload: 100)
        #expect(try Self.parse(other).edns?.udpPayloadBytes == 100)
        #expect(throws: DNSParseError.truncated) { try Self.parse(TestQuery.header(id: 1, an: 1) + question) }
    }

    @Test func responseCompressionOffsets() throws {
        let zone = try DNSZone(catalog: DNSFixture.catalog())
        let reply = Self.respond(TestQuery.make(id: 5, name: "WEB.service.flotilla.", type: 33, edns: true), zone: zone)
        let message = try Self.message(reply)
        #expect(message.answers.count == 3)
        let bytes = message.bytes
        for answer in message.answers {
            #expect(answer.name == "WEB.service.flotilla.")  // the owner is the question's name
            // RDATA: priority, weight, port, then the target uncompressed (RFC 2782).
            #expect(!answer.rdata[6...].contains { $0 & 0xC0 == 0xC0 })
        }
        // Every address record of the additional section is owned by a pointer into an SRV target.
        let targetOffsets = Set(message.answers.map { $0.rdataOffset + 6 })
        for record in message.additional where record.type == 1 || record.type == 28 {
            let ownerAt = record.rdataOffset - 10 - 2
            let pointer = Int(bytes[ownerAt] & 0x3F) << 8 | Int(bytes[ownerAt + 1])
            #expect(bytes[ownerAt] & 0xC0 == 0xC0)
            #expect(targetOffsets.contains(pointer))
            #expect(record.name.hasSuffix(".node.flotilla."))
        }
        // The SOA of a NODATA answer is owned by a pointer to the question's "flotilla." (offset
        // 12 + 4 + 8 in "\3WEB\7service\10flotilla\0").
        let nodata = try Self.message(Self.respond(TestQuery.make(id: 6, name: "WEB.service.flotilla.", type: 16), zone: zone))
        let soa = try #require(nodata.authority.first)
        #expect(soa.type == 6 && soa.name == "flotilla.")
        let soaOwner = soa.rdataOffset - 12
        #expect(Array(nodata.bytes[soaOwner..<(soaOwner + 2)]) == [0xC0, 12 + 4 + 8])
    }

    /// Every response is well-formed whatever the query: 100,000 seeded mutations of valid
    /// queries through the responder (no sockets, so thousands per second), each either dropped
    /// (exactly when the header is unreadable or QR is set) or answered with a message an
    /// independent decoder reads whole, with the query's ID.
    @Test(.cpuBound) func mutatedQueriesGetWellFormedResponses() throws {
        let zone = try DNSZone(catalog: DNSFixture.catalog())
        let seeds: [[UInt8]] = [
            TestQuery.make(id: 1, name: "web.service.flotilla.", type: 33, edns: true),
            TestQuery.make(id: 2, name: "_http._tcp.v2.web.service.flotilla.", type: 33),
            TestQuery.make(id: 3, name: "flotilla.", type: 2, edns: true),
            TestQuery.make(id: 4, name: "api.service.flotilla.", type: 255),
            TestQuery.header(id: 5, ar: 1) + TestQuery.name("n2.node.flotilla.") + [0, 28, 0, 1] + [0xC0, 12] + TestQuery.opt().dropFirst(),
        ]
        var random = DNSRandom(seed: 42)
        var answered = 0
        for round in 0..<100_000 {
            var packet = seeds[round % seeds.count]
            switch random.next(upperBound: UInt64(3)) {
            case 0:  // overwrite a few bytes
                for _ in 0...random.next(upperBound: UInt64(4)) {
                    packet[Int(random.next(upperBound: UInt64(packet.count)))] = UInt8.random(in: 0...255, using: &random)
                }
            case 1:  // cut
                packet = Array(packet.prefix(Int(random.next(upperBound: UInt64(packet.count + 1)))))
            default:  // append garbage, or lengthen a count
                packet += (0..<random.next(upperBound: UInt64(20))).map { _ in UInt8.random(in: 0...255, using: &random) }
                if packet.count > 11 { packet[5 + 2 * Int(random.next(upperBound: UInt64(4)))] &+= 1 }
            }
            let reply = Self.respond(packet, zone: zone, transport: round % 2 == 0 ? .udp : .tcp, seed: UInt64(round))
            let droppable = packet.count < 12 || packet[2] & 0x80 != 0
            switch reply {
            case .drop:
                #expect(droppable, "round \(round): \(packet) dropped")
            case .send(let buffer, _, _):
                #expect(!droppable, "round \(round): \(packet) answered")
                #expect(buffer.readableBytes <= (round % 2 == 0 ? 4096 : 65535))
                let message = try TestMessage(Array(buffer.readableBytesView))
                #expect(message.id == UInt16(packet[0]) << 8 | UInt16(packet[1]))
                #expect(message.flags & 0x8000 != 0)
                answered += 1
            }
        }
        #expect(answered > 50_000)
    }

    /// The domain must match whole labels: a label holding the bytes "\\008flotilla" ends with
    /// the domain's wire form byte for byte, yet the name is not under it.
    @Test func domainMatchesOnLabelBoundaries() throws {
        let zone = try DNSZone(catalog: DNSFixture.catalog())
        let inside = DNSWireName(bytes: TestQuery.name("a.FLOTILLA."))
        #expect(inside.offset(ofSuffix: zone.domain) == 2)
        let fake = DNSWireName(bytes: [10, 0x7A, 8] + Array("flotilla".utf8) + [0])
        #expect(fake.offset(ofSuffix: zone.domain) == nil)
        let query = TestQuery.header(id: 1) + fake.bytes + [0, 1, 0, 1]
        #expect(try Self.message(Self.respond(query, zone: zone)).rcode == 5)
    }

    @Test func zoneKeepsWhatItCanAndSaysWhatItLeftOut() throws {
        var catalog = DNSFixture.catalog()
        catalog.instances.append(DNSInstance(service: "bad.name", node: "n1", address: .ipv4(1), passing: true))
        catalog.instances.append(DNSInstance(service: "ok", tags: ["no good"], node: "n1", address: .ipv4(1), passing: true))
        catalog.nodes.append(DNSNode(name: "", addresses: []))
        let zone = try DNSZone(catalog: catalog)
        #expect(zone.problems.map(\.path) == ["nodes[3].name", "instances[7].service", "instances[8].tags[0]"])
        #expect(try Self.message(Self.respond(TestQuery.make(id: 1, name: "ok.service.flotilla."), zone: zone)).answers.count == 1)
        #expect(throws: DNSCatalogError.self) { try DNSZone(catalog: DNSCatalog(domain: "")) }
        #expect(throws: DNSCatalogError.self) { try DNSZone(catalog: DNSCatalog(domain: "a..b.")) }
        #expect(throws: DNSCatalogError.self) { try DNSZone(catalog: DNSCatalog(domain: String(repeating: "a", count: 64))) }
        #expect(try DNSZone(catalog: DNSCatalog(domain: "Consul")).domain == TestQuery.name("consul."))
    }

    @Test func sharedAddressesAreOneRecord() throws {
        // RFC 2181 §5: no duplicate records in an RRset, though two instances share an address.
        var catalog = DNSCatalog()
        for port: UInt16 in [80, 81] {
            catalog.instances.append(DNSInstance(service: "s", node: "n", address: .ipv4(1), ports: [DNSPort(number: port)], passing: true))
        }
        catalog.nodes = [DNSNode(name: "n", addresses: [.ipv4(1)])]
        let zone = try DNSZone(catalog: catalog)
        #expect(try Self.message(Self.respond(TestQuery.make(id: 1, name: "s.service.flotilla."), zone: zone)).answers.count == 1)
        let srv = try Self.message(Self.respond(TestQuery.make(id: 1, name: "s.service.flotilla.", type: 33), zone: zone))
        #expect(srv.answers.count == 2)
        #expect(srv.additional.count == 1)  // the shared target once
    }

    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"), ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"),
        ("::", "::"), ("::1", "::1"), ("2001:DB8::10", "2001:db8::10"), ("fe80:0:0:0:1:0:0:1", "fe80::1:0:0:1"),
        ("::ffff:192.0.2.1", "::ffff:c000:201"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("1::", "1::"),
    ])
    func addressesParseAndPrint(text: String, printed: String) throws {
        #expect(try #require(DNSAddress(text)).description == printed)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "g::", "[::1]", "fe80::1%eth0", "1:2:3:4:5:6:7::8"])
    func badAddressesAreNil(text: String) {
        #expect(DNSAddress(text) == nil)
    }
}
