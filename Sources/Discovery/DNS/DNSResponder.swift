import NIOCore

// The query path: bytes of one query in, bytes of one response (or nothing) out. Pure apart from
// the generator it is handed: no I/O, no locks, no clock; the UDP and TCP handlers only move bytes.

/// How the response travels, which bounds its size.
enum DNSTransport {
    /// RFC 1035 §4.2.1: 512 bytes, or the EDNS0 payload size (RFC 6891 §6.2.5).
    case udp
    /// RFC 1035 §4.2.2 / RFC 7766: up to 65535 bytes, never truncated below that.
    case tcp
}

/// The EDNS0 sizes the responder works with.
struct DNSPayloadLimits: Sendable {
    /// The UDP payload size we advertise in our OPT: what we accept in a query.
    var advertisedUDPPayloadBytes: UInt16
    /// The most we send over UDP however large the client's payload size.
    var maxUDPPayloadBytes: Int
}

/// What to do with a query.
enum DNSReply {
    /// Send nothing: no readable header, or the packet is a response (answering responses can
    /// make two servers bounce a packet forever).
    case drop
    /// Send these bytes.
    case send(ByteBuffer, DNSResponseCode, truncated: Bool)
}

enum DNSResponder {
    private enum Parsed {
        case drop
        /// An error answered with the header alone, and an OPT when the query had one.
        case headerOnly(DNSHeader, DNSResponseCode, DNSEDNS?)
        case query(DNSQuery)
    }

    /// Answers one query from `zone`.
    static func respond(
        to request: ByteBuffer, zone: DNSZone, transport: DNSTransport, limits: DNSPayloadLimits,
        random: inout DNSRandom, allocator: ByteBufferAllocator
    ) -> DNSReply {
        let parsed: Parsed = request.withUnsafeReadableBytes { bytes in
            guard let header = DNSQueryReader.header(of: bytes), !header.isResponse else { return .drop }
            // RFC 1035 §4.1.1: only opcode 0 (QUERY) is served; NOTIFY, UPDATE... are not.
            guard header.opcode == 0 else {
                return .headerOnly(header, .notImplemented, (try? DNSQueryReader.edns(ofUnanswered: bytes)) ?? nil)
            }
            // RFC 9619: QDCOUNT must be 1 for QUERY.
            guard header.questionCount == 1 else {
                return .headerOnly(header, .formatError, (try? DNSQueryReader.edns(ofUnanswered: bytes)) ?? nil)
            }
            do {
                return .query(try DNSQueryReader.query(from: bytes))
            } catch {
                // Unreadable: whether it had a (single, well-placed) OPT is not known.
                return .headerOnly(header, .formatError, nil)
            }
        }
        switch parsed {
        case .drop:
            return .drop
        case .headerOnly(let header, let code, let edns):
            let capacity = DNSWireLimit.headerBytes + DNSMessageWriter.optBytes
            let response = message(capacity: capacity, allocator: allocator) { memory in
                var writer = DNSMessageWriter(memory: memory, id: header.id, flags: responseFlags(header.flags), limit: capacity)
                appendOPT(&writer, answering: edns, code: code, limits: limits)
                return writer.finish(responseCode: code.rawValue, truncated: false)
            }
            return .send(response, code, truncated: false)
        case .query(let query):
            return answer(query, zone: zone, transport: transport, limits: limits, random: &random, allocator: allocator)
        }
    }

    /// A ByteBuffer of at most `capacity` bytes written by `write`, which returns how many it wrote.
    private static func message(
        capacity: Int, allocator: ByteBufferAllocator, _ write: (UnsafeMutableRawBufferPointer) -> Int
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: capacity)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { memory in
            write(UnsafeMutableRawBufferPointer(rebasing: memory.prefix(capacity)))
        }
        return buffer
    }

    /// QR set; opcode, RD and CD copied (RFC 1035 §4.1.1, RFC 4035 §3.2.2); RA clear: no
    /// recursion is offered.
    private static func responseFlags(_ queryFlags: UInt16) -> UInt16 {
        DNSHeaderFlag.response
            | queryFlags & (DNSHeaderFlag.opcodeMask | DNSHeaderFlag.recursionDesired | DNSHeaderFlag.checkingDisabled)
    }

    private static func answer(
        _ query: DNSQuery, zone: DNSZone, transport: DNSTransport, limits: DNSPayloadLimits,
        random: inout DNSRandom, allocator: ByteBufferAllocator
    ) -> DNSReply {
        // RFC 6891 §6.2.3–6.2.5: sizes below 512 count as 512; we send no more than our cap.
        var limit: Int
        switch transport {
        case .tcp: limit = Int(UInt16.max)
        case .udp:
            limit = DNSWireLimit.classicUDPPayloadBytes
            if let edns = query.edns {
                limit = max(limit, min(Int(edns.udpPayloadBytes), limits.maxUDPPayloadBytes))
            }
        }
        // Most answers are a few hundred bytes: write into that much first, and again into the
        // full size when anything was left out there, an answer or an additional record (a
        // large SRV set over TCP or with a large EDNS0 size).
        let firstCapacity = min(limit, Self.firstCapacity)
        let first = compose(query, zone: zone, capacity: firstCapacity, limit: limit, limits: limits, random: &random, allocator: allocator)
        if first.leftOut && firstCapacity < limit {
            return compose(query, zone: zone, capacity: limit, limit: limit, limits: limits, random: &random, allocator: allocator).reply
        }
        return first.reply
    }

    /// The size of the memory a response is first written into.
    static let firstCapacity = 1232

    /// The response to `query` written into `capacity` bytes, the whole message kept within
    /// `limit`, and whether a record was left out for lack of room.
    private static func compose(
        _ query: DNSQuery, zone: DNSZone, capacity: Int, limit: Int, limits: DNSPayloadLimits, random: inout DNSRandom,
        allocator: ByteBufferAllocator
    ) -> (reply: DNSReply, leftOut: Bool) {
        // Keep room for the OPT, which even a truncated response carries (RFC 6891 §7).
        let optBytes = query.edns == nil ? 0 : DNSMessageWriter.optBytes
        let recordLimit = min(limit, capacity) - optBytes

        var code = DNSResponseCode.noError
        var truncated = false
        var leftOut = false
        let response = message(capacity: capacity, allocator: allocator) { memory in
            var authoritative = false
            var writer = DNSMessageWriter(
                memory: memory, id: query.header.id, flags: responseFlags(query.header.flags), limit: recordLimit)
            writer.writeQuestion(name: query.name, type: query.type, questionClass: query.questionClass)

            if let edns = query.edns, edns.version != 0 {
                // RFC 6891 §6.1.3: an unknown version gets BADVERS, with our version (0) in the OPT.
                code = .badVersion
            } else if query.questionClass != DNSClass.internet && query.questionClass != DNSClass.any {
                code = .refused  // CHAOS (version.bind) and the like: not ours.
            } else if query.type == DNSRecordType.axfr || query.type == DNSRecordType.ixfr {
                code = .refused  // No zone transfers: the zone is the catalog, replicated by Raft.
            } else {
                switch zone.lookup(query.name) {
                case .outside:
                    code = .refused  // RFC 1035 §4.1.1: we do not recurse for names not ours.
                case .nonexistent(let domainOffset):
                    code = .nameError
                    authoritative = true
                    truncated = !appendSOA(&writer, .authority, zone: zone, domainOffset: domainOffset)
                case .found(let entry, let domainOffset):
                    authoritative = true
                    truncated = !appendAnswers(
                        &writer, entry: entry, type: query.type, zone: zone, domainOffset: domainOffset, random: &random)
                    // RFC 2308 §2.2: NODATA is NOERROR with no answer and the SOA in authority.
                    if !truncated && writer.answerCount == 0 {
                        truncated = !appendSOA(&writer, .authority, zone: zone, domainOffset: domainOffset)
                    }
                }
            }
            appendOPT(&writer, answering: query.edns, code: code, limits: limits)
            leftOut = writer.leftOut
            return writer.finish(responseCode: code.rawValue, truncated: truncated, authoritative: authoritative)
        }
        return (.send(response, code, truncated: truncated), leftOut)
    }

    /// Our OPT (RFC 6891 §7), when the query had one: our payload size, the response code's
    /// upper 8 bits, DO copied.
    private static func appendOPT(
        _ writer: inout DNSMessageWriter, answering edns: DNSEDNS?, code: DNSResponseCode, limits: DNSPayloadLimits
    ) {
        guard let edns else { return }
        writer.appendOPT(
            udpPayloadBytes: limits.advertisedUDPPayloadBytes, extendedCode: UInt8(code.rawValue >> 4), dnssecOK: edns.dnssecOK)
    }

    private static func appendSOA(
        _ writer: inout DNSMessageWriter, _ section: DNSMessageWriter.Section, zone: DNSZone, domainOffset: Int
    ) -> Bool {
        writer.appendSOA(
            section, domainOffset: DNSMessageWriter.questionOffset + domainOffset, serial: zone.serial, ttl: zone.ttlSeconds)
    }

    /// Writes the records of `entry` that answer `type`. Returns false when an answer did not fit
    /// (TC is then set, RFC 2181 §9); additional records that do not fit are left out silently,
    /// as RFC 2181 §9 says they do not call for TC.
    private static func appendAnswers(
        _ writer: inout DNSMessageWriter, entry: DNSZoneEntry, type: UInt16, zone: DNSZone, domainOffset: Int,
        random: inout DNSRandom
    ) -> Bool {
        let owner = DNSMessageWriter.questionOffset
        let ttl = zone.ttlSeconds
        func appendIPv4(_ random: inout DNSRandom) -> Bool {
            forEachShuffled(entry.ipv4.count, &random) { index in
                writer.appendA(.answer, ownerOffset: owner, ipv4: entry.ipv4[index], ttl: ttl)
            }
        }
        func appendIPv6(_ random: inout DNSRandom) -> Bool {
            forEachShuffled(entry.ipv6.count, &random) { index in
                writer.appendAAAA(.answer, ownerOffset: owner, ipv6: entry.ipv6[index], ttl: ttl)
            }
        }
        switch type {
        case DNSRecordType.a:
            return appendIPv4(&random)
        case DNSRecordType.aaaa:
            return appendIPv6(&random)
        case DNSRecordType.srv:
            return appendServices(&writer, entry: entry, zone: zone, random: &random)
        case DNSRecordType.any:
            // RFC 8482 §4.1 lets a server answer ANY with a subset of its RRsets. We answer the
            // addresses (or the SRV set of a name without addresses, or the apex's SOA and NS):
            // useful to `dig ANY`, and never larger than an A plus an AAAA query would get, so
            // ANY amplifies nothing that those do not.
            if entry.isApex {
                return answerApex(&writer, type: DNSRecordType.soa, zone: zone, domainOffset: domainOffset)
                    && answerApex(&writer, type: DNSRecordType.ns, zone: zone, domainOffset: domainOffset)
            }
            if entry.ipv4.isEmpty && entry.ipv6.isEmpty {
                return appendServices(&writer, entry: entry, zone: zone, random: &random)
            }
            return appendIPv4(&random) && appendIPv6(&random)
        case DNSRecordType.soa, DNSRecordType.ns:
            guard entry.isApex else { return true }
            return answerApex(&writer, type: type, zone: zone, domainOffset: domainOffset)
        default:
            return true  // NODATA
        }
    }

    private static func answerApex(_ writer: inout DNSMessageWriter, type: UInt16, zone: DNSZone, domainOffset: Int) -> Bool {
        // At the apex the question's name is the domain: domainOffset is 0.
        let domainAt = DNSMessageWriter.questionOffset + domainOffset
        if type == DNSRecordType.soa {
            return writer.appendSOA(.answer, domainOffset: domainAt, serial: zone.serial, ttl: zone.ttlSeconds)
        }
        guard let targetOffset = writer.appendNS(domainOffset: domainAt, ttl: zone.ttlSeconds) else { return false }
        appendAddresses(&writer, of: zone.nameserver, at: targetOffset, ttl: zone.ttlSeconds)
        return true
    }

    /// SRV answers, shuffled (clients that take the first record then spread too; RFC 2782's
    /// weighted choice is the client's and sees the same set), then their targets' addresses in
    /// the additional section, each target once.
    private static func appendServices(
        _ writer: inout DNSMessageWriter, entry: DNSZoneEntry, zone: DNSZone, random: inout DNSRandom
    ) -> Bool {
        guard !entry.services.isEmpty else { return true }
        // The targets written so far, each once, with where its name is: on the stack.
        return withUnsafeTemporaryAllocation(of: (target: Int32, offset: Int).self, capacity: entry.services.count) { written in
            var writtenCount = 0
            let complete = forEachShuffled(entry.services.count, &random) { index in
                let service = entry.services[index]
                guard let offset = writer.appendSRV(service: service, target: zone.targets[Int(service.target)].name, ttl: zone.ttlSeconds)
                else { return false }
                // A name written past 16 KiB (TCP only) is out of a pointer's 14 bits: its
                // addresses, which would point to it, are left out (RFC 2181 §9 allows that).
                if offset <= DNSWireLimit.compressionOffsetMax,
                    !written[..<writtenCount].contains(where: { $0.target == service.target })
                {
                    written.initializeElement(at: writtenCount, to: (service.target, offset))
                    writtenCount += 1
                }
                return true
            }
            for (target, offset) in written[..<writtenCount] {
                guard appendAddresses(&writer, of: zone.targets[Int(target)], at: offset, ttl: zone.ttlSeconds) else { break }
            }
            return complete
        }
    }

    /// A and AAAA records of a target, owned by the name at `offset`. Stops at the first that
    /// does not fit and returns false.
    @discardableResult
    private static func appendAddresses(_ writer: inout DNSMessageWriter, of target: DNSTarget, at offset: Int, ttl: UInt32) -> Bool {
        for address in target.ipv4 {
            guard writer.appendA(.additional, ownerOffset: offset, ipv4: address, ttl: ttl) else { return false }
        }
        for address in target.ipv6 {
            guard writer.appendAAAA(.additional, ownerOffset: offset, ipv6: address, ttl: ttl) else { return false }
        }
        return true
    }

    /// Calls `body` with 0..<count in a uniformly random order (Fisher–Yates), until it returns
    /// false. The permutation lives on the stack for the usual handful of records. Returns
    /// whether every index was visited.
    private static func forEachShuffled(_ count: Int, _ random: inout DNSRandom, _ body: (Int) -> Bool) -> Bool {
        guard count > 0 else { return true }
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: count) { order in
            for index in 0..<count { order.initializeElement(at: index, to: Int32(index)) }
            var index = count - 1
            while index > 0 {
                let other = Int(random.next(upperBound: UInt64(index + 1)))
                order.swapAt(index, other)
                index -= 1
            }
            for position in 0..<count where !body(Int(order[position])) {
                return false
            }
            return true
        }
    }
}
