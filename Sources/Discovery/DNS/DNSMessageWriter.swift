// Builds a response (RFC 1035 §4.1). Names are compressed by construction rather than through a
// general table: the question's name is always written first, uncompressed, at offset 12, so every
// answer's owner is the pointer 0xC00C, and the zone's domain is the question name's tail, so names
// made up here (ns.DOMAIN, the SOA's) end in a pointer to that tail.
// SRV targets are written whole: RFC 2782 forbids compressing them (and RFC 3597 §4 any name in
// RDATA of a type newer than RFC 1035); later owner names point into them instead.
//
// The writer stores into memory its caller lends it (a ByteBuffer's writable bytes, taken once
// per message) rather than through ByteBuffer's own writes: each of those checks capacity,
// uniqueness and exclusivity, and a response of ten records made some thirty of them, over half
// of the responder's time. Every store here is still checked against the memory's end.

/// The response being written; records are added whole or not at all.
struct DNSMessageWriter {
    /// The offset of the question's name: answers' owners point here.
    static let questionOffset = DNSWireLimit.headerBytes

    enum Section {
        case answer, authority, additional
    }

    private let memory: UnsafeMutableRawBufferPointer
    /// The most bytes the records may take the message to (UDP payload size, less room kept for
    /// OPT), at most the memory's size.
    let limit: Int
    /// The bytes written so far.
    private(set) var length = 0
    /// Whether a record was left out for lack of room: an answer (TC follows) or an additional
    /// record (which RFC 2181 §9 lets go without TC).
    private(set) var leftOut = false
    private var counts: (answer: UInt16, authority: UInt16, additional: UInt16) = (0, 0, 0)
    private let flags: UInt16

    /// Starts a message with its header in `memory`, which must hold at least the header.
    init(memory: UnsafeMutableRawBufferPointer, id: UInt16, flags: UInt16, limit: Int) {
        precondition(memory.count >= DNSWireLimit.headerBytes, "a DNS message needs room for its header")
        self.memory = memory
        self.flags = flags
        self.limit = min(limit, memory.count)
        put(id)
        put(flags)
        for _ in 0..<4 { put(UInt16(0)) }
    }

    var answerCount: UInt16 { counts.answer }

    /// Writes the question (the message then has QDCOUNT 1). The question always fits: a name is
    /// at most 255 octets, and the smallest limit is 512.
    mutating func writeQuestion(name: DNSWireName, type: UInt16, questionClass: UInt16) {
        put(name.bytes)
        put(type)
        put(questionClass)
        set(UInt16(1), at: 4)
    }

    /// An A record (RFC 1035 §3.4.1) owned by the name at `ownerOffset`, if it fits.
    mutating func appendA(_ section: Section, ownerOffset: Int, ipv4: UInt32, ttl: UInt32) -> Bool {
        guard reserve(Self.recordHeadBytes + 4) else { return false }
        putRecordHead(ownerOffset: ownerOffset, type: DNSRecordType.a, ttl: ttl, dataLength: 4)
        put(ipv4)
        return count(section)
    }

    /// An AAAA record (RFC 3596 §2.2), if it fits.
    mutating func appendAAAA(_ section: Section, ownerOffset: Int, ipv6: DNSIPv6, ttl: UInt32) -> Bool {
        guard reserve(Self.recordHeadBytes + 16) else { return false }
        putRecordHead(ownerOffset: ownerOffset, type: DNSRecordType.aaaa, ttl: ttl, dataLength: 16)
        put(ipv6.high)
        put(ipv6.low)
        return count(section)
    }

    /// An SRV answer (RFC 2782) owned by the question's name, its target uncompressed. Returns the
    /// target's offset, or nil when the record does not fit.
    mutating func appendSRV(service: DNSServiceRecord, target: [UInt8], ttl: UInt32) -> Int? {
        guard reserve(Self.recordHeadBytes + 6 + target.count) else { return nil }
        putRecordHead(ownerOffset: Self.questionOffset, type: DNSRecordType.srv, ttl: ttl, dataLength: 6 + target.count)
        put(service.priority)
        put(service.weight)
        put(service.port)
        let targetOffset = length
        put(target)
        _ = count(.answer)
        return targetOffset
    }

    /// The SOA record of the domain (RFC 1035 §3.3.13): MNAME ns.DOMAIN, RNAME hostmaster.DOMAIN,
    /// MINIMUM the negative-caching TTL (RFC 2308 §4), also the record's own TTL (§5).
    mutating func appendSOA(_ section: Section, domainOffset: Int, serial: UInt32, ttl: UInt32) -> Bool {
        let dataLength = Self.nameBytes(labels: "ns") + Self.nameBytes(labels: "hostmaster") + 20
        guard reserve(Self.recordHeadBytes + dataLength) else { return false }
        putRecordHead(ownerOffset: domainOffset, type: DNSRecordType.soa, ttl: ttl, dataLength: dataLength)
        putName(labels: "ns", pointer: domainOffset)
        putName(labels: "hostmaster", pointer: domainOffset)
        // Refresh, retry and expire matter only to secondaries, which a zone without transfers
        // has none of; these are the values Consul and RFC 1912 §2.2 suggest.
        put(serial)
        put(UInt32(3600))
        put(UInt32(600))
        put(UInt32(86400))
        put(ttl)
        return count(section)
    }

    /// The NS answer of the domain. Returns the offset of its target, `ns.DOMAIN`, or nil when
    /// it does not fit.
    mutating func appendNS(domainOffset: Int, ttl: UInt32) -> Int? {
        let dataLength = Self.nameBytes(labels: "ns")
        guard reserve(Self.recordHeadBytes + dataLength) else { return nil }
        putRecordHead(ownerOffset: domainOffset, type: DNSRecordType.ns, ttl: ttl, dataLength: dataLength)
        let targetOffset = length
        putName(labels: "ns", pointer: domainOffset)
        _ = count(.answer)
        return targetOffset
    }

    /// Appends the OPT record (RFC 6891 §6.1.2–6.1.3) outside `limit`, which kept room for it.
    mutating func appendOPT(udpPayloadBytes: UInt16, extendedCode: UInt8, dnssecOK: Bool) {
        put(UInt8(0))
        put(DNSRecordType.opt)
        put(udpPayloadBytes)
        put(UInt32(extendedCode) << 24 | (dnssecOK ? 0x8000 : 0))  // version 0
        put(UInt16(0))
        counts.additional += 1
    }

    /// Finishes the message: the counts, the TC and AA bits and the response code's low 4 bits go
    /// in the header. Returns the message's length.
    mutating func finish(responseCode: UInt16, truncated: Bool, authoritative: Bool = false) -> Int {
        set(flags | (truncated ? DNSHeaderFlag.truncated : 0) | (authoritative ? DNSHeaderFlag.authoritative : 0)
            | (responseCode & 0x0F), at: 2)
        set(counts.answer, at: 6)
        set(counts.authority, at: 8)
        set(counts.additional, at: 10)
        return length
    }

    /// The encoded size of the OPT record.
    static let optBytes = 11

    /// Owner (a compression pointer), type, class, TTL and RDLENGTH.
    private static let recordHeadBytes = 12

    /// Whether `bytes` more fit under the limit; notes it when they do not.
    private mutating func reserve(_ bytes: Int) -> Bool {
        guard length + bytes <= limit else {
            leftOut = true
            return false
        }
        return true
    }

    private mutating func count(_ section: Section) -> Bool {
        switch section {
        case .answer: counts.answer += 1
        case .authority: counts.authority += 1
        case .additional: counts.additional += 1
        }
        return true
    }

    private mutating func putRecordHead(ownerOffset: Int, type: UInt16, ttl: UInt32, dataLength: Int) {
        put(UInt16(0xC000 | ownerOffset))
        put(type)
        put(DNSClass.internet)
        put(ttl)
        put(UInt16(dataLength))
    }

    /// The wire size of `prefix` as one label followed by a pointer.
    private static func nameBytes(labels prefix: StaticString) -> Int {
        1 + prefix.utf8CodeUnitCount + 2
    }

    /// `prefix` as one label followed by a pointer: a name ending in a name already written.
    private mutating func putName(labels prefix: StaticString, pointer: Int) {
        put(UInt8(prefix.utf8CodeUnitCount))
        prefix.withUTF8Buffer { put(UnsafeRawBufferPointer($0)) }
        put(UInt16(0xC000 | pointer))
    }

    private mutating func put<Value: FixedWidthInteger>(_ value: Value) {
        set(value, at: length)
        length += MemoryLayout<Value>.size
    }

    private mutating func put(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { put($0) }
    }

    private mutating func put(_ bytes: UnsafeRawBufferPointer) {
        precondition(length + bytes.count <= memory.count, "DNS response written past its buffer")
        UnsafeMutableRawBufferPointer(rebasing: memory[length..<(length + bytes.count)]).copyMemory(from: bytes)
        length += bytes.count
    }

    /// Stores `value` big-endian at `offset`.
    private func set<Value: FixedWidthInteger>(_ value: Value, at offset: Int) {
        precondition(offset >= 0 && offset + MemoryLayout<Value>.size <= memory.count, "DNS response written past its buffer")
        memory.baseAddress!.storeBytes(of: value.bigEndian, toByteOffset: offset, as: Value.self)
    }
}
