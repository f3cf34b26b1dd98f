import NIOCore

// Builds a response in a ByteBuffer (RFC 1035 §4.1). Names are compressed by construction rather
// than through a general table: the question's name is always written first, uncompressed, at
// offset 12, so every answer's owner is the pointer 0xC00C, and the zone's domain is the question
// name's tail, so names made up here (ns.DOMAIN, the SOA's) end in a pointer to that tail.
// SRV targets are written whole: RFC 2782 forbids compressing them (and RFC 3597 §4 any name in
// RDATA of a type newer than RFC 1035); later owner names point into them instead.

/// The response being written; records are added whole or not at all.
struct DNSMessageWriter {
    /// The offset of the question's name: answers' owners point here.
    static let questionOffset = DNSWireLimit.headerBytes

    enum Section {
        case answer, authority, additional
    }

    private(set) var buffer: ByteBuffer
    /// The most bytes the message may take (UDP payload size, less room kept for OPT).
    let limit: Int
    private var counts: (answer: UInt16, authority: UInt16, additional: UInt16) = (0, 0, 0)
    private let id: UInt16
    private let flags: UInt16

    init(buffer: ByteBuffer, id: UInt16, flags: UInt16, limit: Int) {
        self.buffer = buffer
        self.id = id
        self.flags = flags
        self.limit = limit
        self.buffer.writeMultipleIntegers(id, flags, UInt16(0), UInt16(0), UInt16(0), UInt16(0))
    }

    var answerCount: UInt16 { counts.answer }

    /// Writes the question (the message then has QDCOUNT 1). The question always fits: a name is
    /// at most 255 octets, and the smallest limit is 512.
    mutating func writeQuestion(name: DNSWireName, type: UInt16, questionClass: UInt16) {
        buffer.writeBytes(name.bytes)
        buffer.writeMultipleIntegers(type, questionClass)
        buffer.setInteger(UInt16(1), at: 4)
    }

    /// Appends one record written by `body`, unless the message would then exceed `limit`: then
    /// the bytes are taken back and false returned.
    mutating func append(_ section: Section, _ body: (inout ByteBuffer) -> Void) -> Bool {
        let start = buffer.writerIndex
        body(&buffer)
        guard buffer.writerIndex <= limit else {
            buffer.moveWriterIndex(to: start)
            return false
        }
        switch section {
        case .answer: counts.answer += 1
        case .authority: counts.authority += 1
        case .additional: counts.additional += 1
        }
        return true
    }

    /// Appends the OPT record (RFC 6891 §6.1.2–6.1.3) outside `limit`, which kept room for it.
    mutating func appendOPT(udpPayloadBytes: UInt16, extendedCode: UInt8, dnssecOK: Bool) {
        let ttl = UInt32(extendedCode) << 24 | (dnssecOK ? 0x8000 : 0)  // version 0
        buffer.writeMultipleIntegers(UInt8(0), DNSRecordType.opt, udpPayloadBytes, ttl, UInt16(0))
        counts.additional += 1
    }

    /// The finished message, with the counts, the TC and AA bits and the response code's low 4 bits
    /// in the header.
    mutating func finish(responseCode: UInt16, truncated: Bool, authoritative: Bool = false) -> ByteBuffer {
        let flags = flags | (truncated ? DNSHeaderFlag.truncated : 0) | (authoritative ? DNSHeaderFlag.authoritative : 0)
            | (responseCode & 0x0F)
        buffer.setInteger(flags, at: 2)
        buffer.setMultipleIntegers(counts.answer, counts.authority, counts.additional, at: 6)
        return buffer
    }

    /// The encoded size of the OPT record.
    static let optBytes = 11
}

extension ByteBuffer {
    /// Owner (a compression pointer), type, class IN, TTL; the caller writes RDLENGTH and RDATA.
    @inline(__always)
    mutating func writeDNSRecordHead(ownerOffset: Int, type: UInt16, ttl: UInt32) {
        writeMultipleIntegers(UInt16(0xC000 | ownerOffset), type, DNSClass.internet, ttl)
    }

    /// An A record (RFC 1035 §3.4.1).
    mutating func writeDNSRecord(ownerOffset: Int, ipv4: UInt32, ttl: UInt32) {
        writeDNSRecordHead(ownerOffset: ownerOffset, type: DNSRecordType.a, ttl: ttl)
        writeMultipleIntegers(UInt16(4), ipv4)
    }

    /// An AAAA record (RFC 3596 §2.2).
    mutating func writeDNSRecord(ownerOffset: Int, ipv6: DNSIPv6, ttl: UInt32) {
        writeDNSRecordHead(ownerOffset: ownerOffset, type: DNSRecordType.aaaa, ttl: ttl)
        writeMultipleIntegers(UInt16(16), ipv6.high, ipv6.low)
    }

    /// An SRV record (RFC 2782), its target uncompressed. Returns the target's offset.
    mutating func writeDNSRecord(ownerOffset: Int, service: DNSServiceRecord, target: [UInt8], ttl: UInt32) -> Int {
        writeDNSRecordHead(ownerOffset: ownerOffset, type: DNSRecordType.srv, ttl: ttl)
        writeMultipleIntegers(UInt16(6 + target.count), service.priority, service.weight, service.port)
        let targetOffset = writerIndex
        writeBytes(target)
        return targetOffset
    }

    /// `prefix` labels followed by a pointer: a name ending in a name already written.
    mutating func writeDNSName(labels prefix: StaticString, pointer: Int) {
        prefix.withUTF8Buffer { label in
            writeInteger(UInt8(label.count))
            writeBytes(label)
        }
        writeInteger(UInt16(0xC000 | pointer))
    }

    /// The SOA record of the domain (RFC 1035 §3.3.13): MNAME ns.DOMAIN, RNAME hostmaster.DOMAIN,
    /// MINIMUM the negative-caching TTL (RFC 2308 §4), also the record's own TTL (§5).
    mutating func writeDNSSOARecord(domainOffset: Int, serial: UInt32, ttl: UInt32) {
        writeDNSRecordHead(ownerOffset: domainOffset, type: DNSRecordType.soa, ttl: ttl)
        let lengthAt = writerIndex
        writeInteger(UInt16(0))
        writeDNSName(labels: "ns", pointer: domainOffset)
        writeDNSName(labels: "hostmaster", pointer: domainOffset)
        // Refresh, retry and expire matter only to secondaries, which a zone without transfers
        // has none of; these are the values Consul and RFC 1912 §2.2 suggest.
        writeMultipleIntegers(serial, UInt32(3600), UInt32(600), UInt32(86400), ttl)
        setInteger(UInt16(writerIndex - lengthAt - 2), at: lengthAt)
    }

    /// The NS record of the domain. Returns the offset of its target, `ns.DOMAIN`.
    mutating func writeDNSNSRecord(domainOffset: Int, ttl: UInt32) -> Int {
        writeDNSRecordHead(ownerOffset: domainOffset, type: DNSRecordType.ns, ttl: ttl)
        writeInteger(UInt16(5))  // \002ns + pointer
        let targetOffset = writerIndex
        writeDNSName(labels: "ns", pointer: domainOffset)
        return targetOffset
    }
}
