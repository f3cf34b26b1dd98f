import Discovery
import NIOPosix
import Testing
import TestSupport

/// Hand-made and malformed packets over real sockets: each is answered (FORMERR or another code)
/// or dropped, and the server goes on serving. Serialized, on a thread of their own: the tests
/// block on sockets.
@Suite(.serialized, .dedicatedThread, .timeLimit(.minutes(10))) struct DNSPacketTests {
    static let good = TestQuery.make(id: 0xABCD, name: "web.service.flotilla.")

    /// Sends a good query and checks that it, and nothing before it, is answered.
    static func expectStillServing(_ client: TestUDPClient, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let answer = try client.exchange(good)
        #expect(answer.id == 0xABCD, "a response to an earlier packet arrived first", sourceLocation: sourceLocation)
        #expect(answer.answers.count == 3, sourceLocation: sourceLocation)
    }

    @Test func truncatedHeaderIsDropped() async throws {
        try await DNSFixture.withServer { server, port in
            let client = try TestUDPClient(port: port)
            for length in [0, 1, 5, 11] {
                client.send(Array(Self.good.prefix(length)))
                try Self.expectStillServing(client)
            }
            #expect(server.counts.dropped == 4)
        }
    }

    @Test func responsePacketIsDropped() async throws {
        try await DNSFixture.withServer { _, port in
            let client = try TestUDPClient(port: port)
            client.send(TestQuery.make(id: 1, name: "web.service.flotilla.", flags: 0x8100))
            try Self.expectStillServing(client)
        }
    }

    /// Packets whose header is readable but whose body is broken: FORMERR, same ID, no question.
    static let malformed: [(String, [UInt8])] = [
        ("label loop: the name points to itself", TestQuery.header(id: 7) + [0xC0, 0x0C, 0, 1, 0, 1]),
        ("two pointers pointing at each other",
            TestQuery.header(id: 7) + [0xC0, 0x0E, 0xC0, 0x0C, 0, 1, 0, 1]),
        ("forward pointer", TestQuery.header(id: 7) + [0xC0, 0x12, 0, 1, 0, 1] + TestQuery.name("web.service.flotilla.")),
        ("pointer out of bounds", TestQuery.header(id: 7) + [0xFF, 0xFF, 0, 1, 0, 1]),
        ("label type 0x40", TestQuery.header(id: 7) + [0x40] + [UInt8](repeating: 0x61, count: 64) + [0, 0, 1, 0, 1]),
        ("label type 0x80", TestQuery.header(id: 7) + [0x80, 0x61, 0, 0, 1, 0, 1]),
        ("name over 255 octets",
            TestQuery.header(id: 7) + (0..<5).flatMap { _ in [63] + [UInt8](repeating: 0x61, count: 63) } + [0, 0, 1, 0, 1]),
        ("label longer than the packet", TestQuery.header(id: 7) + [20, 0x61, 0x62]),
        ("question without type and class", TestQuery.header(id: 7) + TestQuery.name("web.service.flotilla.")),
        ("QDCOUNT 0", TestQuery.header(id: 7, qd: 0)),
        ("QDCOUNT 2", TestQuery.header(id: 7, qd: 2) + TestQuery.name("a.flotilla.") + [0, 1, 0, 1] + TestQuery.name("b.flotilla.") + [0, 1, 0, 1]),
        ("ARCOUNT larger than the data", TestQuery.header(id: 7, ar: 2) + TestQuery.name("web.service.flotilla.") + [0, 1, 0, 1] + TestQuery.opt()),
        ("two OPT records", TestQuery.header(id: 7, ar: 2) + TestQuery.name("web.service.flotilla.") + [0, 1, 0, 1] + TestQuery.opt() + TestQuery.opt()),
        ("OPT not at the root", TestQuery.header(id: 7, ar: 1) + TestQuery.name("web.service.flotilla.") + [0, 1, 0, 1] + [0xC0, 0x0C] + TestQuery.opt().dropFirst()),
        ("OPT in the answer section", TestQuery.header(id: 7, an: 1) + TestQuery.name("web.service.flotilla.") + [0, 1, 0, 1] + TestQuery.opt()),
        ("OPT in the authority section", TestQuery.header(id: 7, ns: 1) + TestQuery.name("web.service.flotilla.") + [0, 1, 0, 1] + TestQuery.opt()),
        ("RDLENGTH past the end", TestQuery.header(id: 7, ar: 1) + TestQuery.name("web.service.flotilla.") + [0, 1, 0, 1] + [0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 9]),
    ]

    @Test(arguments: malformed.indices)
    func malformedPacketIsFORMERR(index: Int) async throws {
        let (description, packet) = Self.malformed[index]
        try await DNSFixture.withServer { _, port in
            let client = try TestUDPClient(port: port)
            let response = try client.exchange(packet)
            #expect(response.id == 7, "\(description)")
            #expect(response.rcode == 1, "\(description): rcode \(response.rcode)")
            #expect(response.flags & 0x8000 != 0, "\(description): QR")
            try Self.expectStillServing(client)
        }
    }

    /// A long but valid query: a 250-octet name and an OPT with a 900-byte padding option
    /// (RFC 7830), about 1200 bytes. It must be read whole (NXDOMAIN), not cut (FORMERR).
    @Test func longQueryIsReadWhole() async throws {
        try await DNSFixture.withServer { _, port in
            let client = try TestUDPClient(port: port)
            let long = [String](repeating: String(repeating: "a", count: 63), count: 3).joined(separator: ".")
                + "." + String(repeating: "b", count: 39) + ".service.flotilla."
            #expect(TestQuery.name(long).count == 250)
            var packet = TestQuery.header(id: 11, ar: 1) + TestQuery.name(long) + [0, 1, 0, 1]
            packet += [0, 0, 41, 4, 0, 0, 0, 0, 0] + [UInt8(904 >> 8), UInt8(904 & 0xFF)]  // OPT, RDLENGTH 904
            packet += [0, 12, UInt8(900 >> 8), UInt8(900 & 0xFF)] + [UInt8](repeating: 0, count: 900)  // PADDING
            #expect(packet.count > 1100)
            let response = try client.exchange(packet)
            #expect(response.id == 11)
            #expect(response.rcode == 3)
            #expect(response.questions.first?.name == long)
        }
    }

    @Test func otherOpcodesAreNOTIMP() async throws {
        try await DNSFixture.withServer { _, port in
            let client = try TestUDPClient(port: port)
            for opcode: UInt16 in [1, 2, 4, 5] {  // IQUERY, STATUS, NOTIFY, UPDATE
                let response = try client.exchange(TestQuery.make(id: 9, name: "web.service.flotilla.", flags: opcode << 11))
                #expect(response.rcode == 4, "opcode \(opcode)")
                #expect((response.flags >> 11) & 0xF == opcode)
            }
        }
    }

    /// RFC 6891 §7: a response to a query with an OPT carries one, errors included: NOTIMP to
    /// another opcode, FORMERR to QDCOUNT 0 or 2. Our payload size is in it.
    @Test func errorResponsesToEDNSQueriesCarryAnOPT() async throws {
        try await DNSFixture.withServer { _, port in
            let client = try TestUDPClient(port: port)
            let question = TestQuery.name("web.service.flotilla.") + [0, 1, 0, 1]
            let cases: [(String, [UInt8], UInt16)] = [
                ("NOTIFY", TestQuery.header(id: 21, flags: 4 << 11, ar: 1) + question + TestQuery.opt(), 4),
                ("QDCOUNT 0", TestQuery.header(id: 22, qd: 0, ar: 1) + TestQuery.opt(), 1),
                ("QDCOUNT 2", TestQuery.header(id: 23, qd: 2, ar: 1) + question + question + TestQuery.opt(), 1),
            ]
            for (description, packet, rcode) in cases {
                let response = try client.exchange(packet)
                #expect(response.rcode == rcode, "\(description): rcode \(response.rcode)")
                let opt = response.additional.filter { $0.type == 41 }
                #expect(opt.count == 1, "\(description): \(opt.count) OPT records")
                #expect(opt.first?.recordClass == 1232, "\(description): payload size")
            }
            // Without an OPT in the query, none in the response (RFC 6891 §7).
            let plain = try client.exchange(TestQuery.make(id: 24, name: "web.service.flotilla.", flags: 4 << 11))
            #expect(plain.rcode == 4)
            #expect(plain.additional.isEmpty)
        }
    }

    @Test func chaosClassAndZoneTransfersAreRefused() async throws {
        try await DNSFixture.withServer { _, port in
            let client = try TestUDPClient(port: port)
            var chaos = TestQuery.make(id: 3, name: "version.bind.", type: 16)
            chaos[chaos.count - 1] = 3  // class CH
            #expect(try client.exchange(chaos).rcode == 5)
            #expect(try client.exchange(TestQuery.make(id: 4, name: "flotilla.", type: 252)).rcode == 5)
        }
    }

    /// A few thousand packets from a seeded generator: random bytes, and valid queries with
    /// random bytes overwritten (which reach deeper into the parser). A packet with a readable
    /// header and QR clear must be answered with its ID; any other must be dropped.
    @Test func seededGarbageIsAnsweredOrDropped() async throws {
        try await DNSFixture.withServer { server, port in
            let client = try TestUDPClient(port: port)
            var random = DNSRandom(seed: 0x5EED)
            var expectedDrops: UInt64 = 0
            let valid = TestQuery.make(id: 1, name: "_http._tcp.v2.web.service.flotilla.", type: 33, edns: true)
            for round in 0..<3000 {
                var packet: [UInt8]
                if round % 2 == 0 {
                    packet = (0..<Int(random.next(upperBound: UInt64(600)))).map { _ in UInt8.random(in: 0...255, using: &random) }
                } else {
                    packet = Array(valid.prefix(Int(random.next(upperBound: UInt64(valid.count + 1)))))
                    for _ in 0..<Int(random.next(upperBound: UInt64(6))) where !packet.isEmpty {
                        packet[Int(random.next(upperBound: UInt64(packet.count)))] = UInt8.random(in: 0...255, using: &random)
                    }
                }
                let answerable = packet.count >= 12 && packet[2] & 0x80 == 0
                client.send(packet)
                if answerable {
                    let response = try #require(client.receive(), "round \(round): no answer to \(packet)")
                    #expect(response.count >= 12 && response[0] == packet[0] && response[1] == packet[1], "round \(round)")
                    #expect(response.count >= 3 && response[2] & 0x80 != 0, "round \(round)")
                } else {
                    expectedDrops += 1
                    try Self.expectStillServing(client)
                }
            }
            try Self.expectStillServing(client)
            #expect(server.counts.dropped == expectedDrops)
        }
    }

    @Test func tcpPipelinedQueriesAreAnsweredInOrder() async throws {
        try await DNSFixture.withServer { _, port in
            let client = try TestTCPClient(port: port)
            let names = ["web.service.flotilla.", "n1.node.flotilla.", "nope.service.flotilla.", "api.service.flotilla."]
            client.send(names.enumerated().flatMap { TestTCPClient.frame(TestQuery.make(id: UInt16($0.offset), name: $0.element)) })
            for (index, name) in names.enumerated() {
                let response = try TestMessage(try #require(client.receiveMessage()))
                #expect(response.id == UInt16(index))
                #expect(response.questions.first?.name == name)
            }
            // The same connection takes more queries afterwards.
            client.send(TestTCPClient.frame(Self.good))
            #expect(try TestMessage(try #require(client.receiveMessage())).answers.count == 3)
        }
    }

    /// A client that pipelines queries with large answers and does not read: what the server
    /// holds of its answers stays near its write buffer's water mark (64 KiB) plus one answer,
    /// rather than the answers to every query of its last read (one read of 2 KiB is 50 queries
    /// here, 19 KB of answer each). What the kernel holds (the server's send queue, the client's
    /// receive queue) is taken from /proc/net/tcp. Once the client reads, every query is
    /// answered, in order.
    @Test func tcpAnswersWaitWhileTheClientDoesNotRead() async throws {
        try await DNSFixture.withServer(DNSFixture.bigCatalog(count: 500)) { server, port in
            let client = try TestTCPClient(port: port, timeoutMilliseconds: 5000, receiveBufferBytes: 4096)
            let query = { (id: Int) in TestTCPClient.frame(TestQuery.make(id: UInt16(id), name: "big.service.flotilla.", type: 33)) }
            client.send(query(0))
            let answerBytes = 2 + (try #require(client.receiveMessage())).count
            let count = 300
            client.send((1...count).flatMap(query))
            try await Task.sleep(for: .seconds(1))
            let answered = Int(server.counts.responses[.noError] ?? 0) - 1
            let serverSide = try #require(try TestTCPClient.kernelQueues(localPort: port, remotePort: client.localPort))
            let clientSide = try #require(try TestTCPClient.kernelQueues(localPort: client.localPort, remotePort: port))
            let heldByServer = answered * answerBytes - serverSide.transmit - clientSide.receive
            #expect(
                heldByServer <= 200_000,
                "\(answered) answers of about \(answerBytes) bytes, \(serverSide.transmit) + \(clientSide.receive) in the kernel")
            var inOrder = true
            for id in 1...count {
                let response = try TestMessage(try #require(client.receiveMessage(), "answer \(id)"))
                inOrder = inOrder && response.id == UInt16(id) && response.answers.count == 500
            }
            #expect(inOrder)
        }
    }

    @Test func tcpQuerySplitAcrossWritesIsAnswered() async throws {
        try await DNSFixture.withServer { _, port in
            let client = try TestTCPClient(port: port)
            let frame = TestTCPClient.frame(Self.good)
            client.send(Array(frame.prefix(1)))
            try await Task.sleep(for: .milliseconds(50))
            client.send(Array(frame.dropFirst()))
            #expect(try TestMessage(try #require(client.receiveMessage())).id == 0xABCD)
        }
    }

    @Test(arguments: [
        ("length 0", [UInt8(0), 0]),
        ("length shorter than a header", [0, 5, 1, 2, 3, 4, 5]),
        ("length over the query cap", [0xFF, 0xFF] + [UInt8](repeating: 0, count: 100)),
    ])
    func badTCPFrameClosesTheConnection(description: String, bytes: [UInt8]) async throws {
        try await DNSFixture.withServer { _, port in
            let client = try TestTCPClient(port: port)
            client.send(bytes)
            #expect(client.isClosedByPeer(), "\(description)")
            let other = try TestTCPClient(port: port)
            other.send(TestTCPClient.frame(Self.good))
            #expect(try TestMessage(try #require(other.receiveMessage())).answers.count == 3)
        }
    }

    @Test func tcpMalformedQueryIsFORMERRAndTheConnectionStays() async throws {
        try await DNSFixture.withServer { _, port in
            let client = try TestTCPClient(port: port)
            client.send(TestTCPClient.frame(Self.malformed[0].1))
            #expect(try TestMessage(try #require(client.receiveMessage())).rcode == 1)
            client.send(TestTCPClient.frame(Self.good))
            #expect(try TestMessage(try #require(client.receiveMessage())).answers.count == 3)
        }
    }

    @Test func idleTCPConnectionIsClosed() async throws {
        let configuration = DNSServer.Configuration(tcpIdleTimeout: .milliseconds(200))
        try await DNSFixture.withServer(configuration: configuration) { _, port in
            let client = try TestTCPClient(port: port, timeoutMilliseconds: 3000)
            let start = ContinuousClock.now
            #expect(client.isClosedByPeer())
            #expect(ContinuousClock.now - start < .seconds(2))
        }
    }

    /// A slowloris: a byte now and then, never a whole query, does not keep a connection.
    @Test func aTCPConnectionTricklingBytesIsClosedAsIdle() async throws {
        let configuration = DNSServer.Configuration(tcpIdleTimeout: .milliseconds(300))
        try await DNSFixture.withServer(configuration: configuration) { _, port in
            let client = try TestTCPClient(port: port, timeoutMilliseconds: 3000)
            // A frame of 100 bytes announced, its bytes sent one each 100 ms.
            client.send([0, 100])
            let start = ContinuousClock.now
            var closed = false
            while !closed && ContinuousClock.now - start < .seconds(3) {
                usleep(100_000)
                client.send([0])
                closed = client.isClosedByPeer(waiting: false)
            }
            #expect(closed, "still open after 3 s of a byte every 100 ms")
            #expect(ContinuousClock.now - start < .seconds(2))
        }
    }

    @Test func tcpConnectionsBeyondTheCapAreClosed() async throws {
        let configuration = DNSServer.Configuration(maxTCPConnections: 2)
        try await DNSFixture.withServer(configuration: configuration) { server, port in
            let first = try TestTCPClient(port: port)
            let second = try TestTCPClient(port: port)
            for client in [first, second] {
                client.send(TestTCPClient.frame(Self.good))
                #expect(client.receiveMessage() != nil)
            }
            let third = try TestTCPClient(port: port)
            #expect(third.isClosedByPeer())
            #expect(server.counts.refusedConnections == 1)
        }
    }

    @Test func stopClosesOpenConnectionsAndStartFailsOnATakenPort() async throws {
        // On a group that is not the server's (as in the agent), so that only stop can close them.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try DNSServer(configuration: .init(port: 0), catalog: DNSFixture.catalog(), eventLoopGroup: group)
        try await server.start()
        let port = try #require(server.port)
        let client = try TestTCPClient(port: port)
        client.send(TestTCPClient.frame(Self.good))
        #expect(client.receiveMessage() != nil)
        // A second server on the same port cannot bind it: not UDP (which it would try first,
        // and which SO_REUSEADDR would let it share silently), nor TCP.
        let second = try DNSServer(configuration: .init(port: port), catalog: DNSFixture.catalog())
        let error = await #expect(throws: DNSServerError.self) { try await second.start() }
        #expect(error?.message.hasPrefix("bind UDP 127.0.0.1:\(port)") == true)
        try await server.stop()
        #expect(client.isClosedByPeer())
        #expect(server.port == nil)
        try await group.shutdownGracefully()
    }

    /// Queries queued faster than one read takes them (the server reads a burst per wakeup):
    /// every one is answered, none left in the socket until another datagram happens to come.
    /// 100 such queries fit the server's default receive buffer: on loopback each takes 832 bytes
    /// of it (/proc/net/udp's rx_queue), 83,200 of Debian's 212,992.
    @Test func queriesQueuedBeyondOneReadAreAllAnswered() async throws {
        try await DNSFixture.withServer { server, port in
            let client = try TestUDPClient(port: port)
            let ids = (1...100).map { UInt16($0) }
            for id in ids {
                client.send(TestQuery.make(id: id, name: "web.service.flotilla."))
            }
            var answered = Set<UInt16>()
            while answered.count < ids.count, let bytes = client.receive() {
                let response = try TestMessage(bytes)
                #expect(response.answers.count == 3)
                answered.insert(response.id)
            }
            #expect(answered == Set(ids), "unanswered: \(Set(ids).subtracting(answered).sorted())")
            #expect(server.counts.responses[.noError] == UInt64(ids.count))
        }
    }

    /// Two UDP sockets on one port (SO_REUSEPORT): the kernel spreads clients by their source
    /// port, and whichever socket a client lands on answers it.
    @Test func severalUDPSocketsShareThePort() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let configuration = DNSServer.Configuration(udpSocketCount: 2)
        let server = try DNSServer(configuration: .init(port: 0, udpSocketCount: configuration.udpSocketCount), catalog: DNSFixture.catalog(), eventLoopGroup: group)
        try await server.start()
        let port = try #require(server.port)
        for _ in 0..<16 {
            try Self.expectStillServing(try TestUDPClient(port: port))
        }
        try await server.stop()
        let late = try TestUDPClient(port: port)
        late.setTimeout(milliseconds: 200)
        late.send(Self.good)
        #expect(late.receive() == nil)  // both sockets closed
        try await group.shutdownGracefully()
    }

    @Test func lifecycle() async throws {
        let idle = try DNSServer(configuration: .init(port: 0), catalog: DNSFixture.catalog())
        try await idle.stop()  // never started: nothing to do
        await #expect(throws: DNSServerError.self) { try await idle.start() }
        let server = try DNSServer(configuration: .init(port: 0), catalog: DNSFixture.catalog())
        try await server.start()
        let again = await #expect(throws: DNSServerError.self) { try await server.start() }
        #expect(again?.code == "dns.server.state")
        try await server.stop()
        try await server.stop()
        #expect(server.port == nil)
    }

    @Test func ipv6Loopback() async throws {
        let server = try DNSServer(configuration: .init(host: "::1", port: 0), catalog: DNSFixture.catalog())
        do {
            try await server.start()
        } catch {
            // A kernel without IPv6 on loopback: nothing to test here.
            print("skipped: ::1 is not available: \(error)")
            return
        }
        let port = try #require(server.port)
        let process = try DigResult.run(port: port, ["@::1", "web.service.flotilla."])
        try await server.stop()
        #expect(process.answers("A").count == 3)
        #expect(process.output.contains("SERVER: ::1#\(port)"))
    }
}
