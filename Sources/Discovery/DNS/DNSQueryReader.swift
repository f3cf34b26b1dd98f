// Reads a query off the wire with a bounds check before every byte (RFC 1035 §4.1, RFC 6891 §6).
// Nothing here may trap on any input: every failure is a DNSParseError, which the responder turns
// into FORMERR (the header was readable) or a drop (it was not).

/// Why a message could not be read.
enum DNSParseError: Error, Equatable {
    /// The message ends inside a field, or a count promises more records than the bytes hold.
    case truncated
    /// A label starts with 0b01 or 0b10 (RFC 1035 §4.1.4 reserves them; RFC 6891 §5 retired 0x41).
    case badLabelType
    /// A name exceeds 255 octets (RFC 1035 §2.3.4).
    case nameTooLong
    /// A compression pointer that does not point strictly before the labels it ends: forward,
    /// to itself, or into a loop.
    case badPointer
    /// More compression pointers in one name than DNSWireLimit.compressionJumps.
    case tooManyPointers
    /// More than one OPT record (RFC 6891 §6.1.1).
    case duplicateOPT
    /// An OPT record whose owner is not the root (RFC 6891 §6.1.2).
    case optNotAtRoot
    /// An OPT record in the answer or authority section (RFC 6891 §6.1.1: additional only).
    case optOutsideAdditional
}

/// The fixed 12-byte header (RFC 1035 §4.1.1).
struct DNSHeader: Equatable {
    var id: UInt16
    var flags: UInt16
    var questionCount: UInt16
    var answerCount: UInt16
    var authorityCount: UInt16
    var additionalCount: UInt16

    var isResponse: Bool { flags & DNSHeaderFlag.response != 0 }
    var opcode: UInt16 { (flags & DNSHeaderFlag.opcodeMask) >> 11 }
}

/// What a query's OPT record says (RFC 6891 §6.1.3).
struct DNSEDNS: Equatable {
    /// The requestor's UDP payload size, as sent (the responder applies the floor of 512).
    var udpPayloadBytes: UInt16
    var version: UInt8
    /// DNSSEC OK (RFC 3225 §3): copied into the response although nothing here is signed.
    var dnssecOK: Bool
}

/// A parsed query: the one question, and EDNS0 if the client sent an OPT record.
struct DNSQuery: Equatable {
    var header: DNSHeader
    /// The question's name, uncompressed, in the client's case.
    var name: DNSWireName
    var type: UInt16
    var questionClass: UInt16
    var edns: DNSEDNS?
}

/// Reads bytes of one message; `position` only moves forward, and every read checks `bytes.count`.
struct DNSQueryReader {
    private let bytes: UnsafeRawBufferPointer
    private(set) var position: Int = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// The header, or nil when the message is shorter than 12 bytes (then it is dropped: there is
    /// no ID to answer to).
    static func header(of bytes: UnsafeRawBufferPointer) -> DNSHeader? {
        var reader = DNSQueryReader(bytes)
        return try? reader.readHeader()
    }

    /// Parses a whole query: header, one question, the answer and authority sections skipped,
    /// the additional section searched for OPT. The caller has checked QDCOUNT == 1.
    static func query(from bytes: UnsafeRawBufferPointer) throws(DNSParseError) -> DNSQuery {
        var reader = DNSQueryReader(bytes)
        let header = try reader.readHeader()
        var name: [UInt8] = []
        name.reserveCapacity(64)
        try reader.readName(into: &name, keep: true)
        let type = try reader.readUInt16()
        let questionClass = try reader.readUInt16()
        // Further questions are not read: the responder answers FORMERR to QDCOUNT != 1 first.
        let edns = try reader.readEDNS(after: header)
        // Bytes after the counted records are ignored, as most servers do.
        return DNSQuery(header: header, name: DNSWireName(bytes: name), type: type, questionClass: questionClass, edns: edns)
    }

    /// The OPT of a message that is not answered as a query (an opcode other than QUERY, a
    /// QDCOUNT other than 1), so that its error response carries an OPT as RFC 6891 §7 requires.
    /// Every question is read past.
    static func edns(ofUnanswered bytes: UnsafeRawBufferPointer) throws(DNSParseError) -> DNSEDNS? {
        var reader = DNSQueryReader(bytes)
        let header = try reader.readHeader()
        var ignored: [UInt8] = []
        for _ in 0..<header.questionCount {
            try reader.readName(into: &ignored, keep: false)
            try reader.skip(4)  // type and class
        }
        return try reader.readEDNS(after: header)
    }

    /// Reads the answer, authority and additional sections: the EDNS0 fields of the one OPT
    /// record, nil without one.
    private mutating func readEDNS(after header: DNSHeader) throws(DNSParseError) -> DNSEDNS? {
        for _ in 0..<(Int(header.answerCount) + Int(header.authorityCount)) {
            try skipRecord()
        }
        var edns: DNSEDNS? = nil
        for _ in 0..<header.additionalCount {
            if let opt = try readAdditionalRecord() {
                guard edns == nil else { throw .duplicateOPT }
                edns = opt
            }
        }
        return edns
    }

    mutating func readHeader() throws(DNSParseError) -> DNSHeader {
        DNSHeader(
            id: try readUInt16(), flags: try readUInt16(), questionCount: try readUInt16(),
            answerCount: try readUInt16(), authorityCount: try readUInt16(), additionalCount: try readUInt16())
    }

    mutating func readUInt8() throws(DNSParseError) -> UInt8 {
        guard position < bytes.count else { throw .truncated }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func readUInt16() throws(DNSParseError) -> UInt16 {
        guard position + 2 <= bytes.count else { throw .truncated }
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    mutating func readUInt32() throws(DNSParseError) -> UInt32 {
        let high = try readUInt16()
        let low = try readUInt16()
        return UInt32(high) << 16 | UInt32(low)
    }

    /// Reads a possibly compressed name (RFC 1035 §4.1.4), appending its uncompressed wire form to
    /// `name` when `keep`. The reader ends after the name's first pointer or its root zero.
    ///
    /// A pointer must point strictly before the start of the label run that contains it, so each
    /// jump lands lower than the last and no chain can loop; the jump count is bounded besides.
    mutating func readName(into name: inout [UInt8], keep: Bool) throws(DNSParseError) {
        var cursor = position
        var runStart = position
        var resumeAt: Int? = nil
        var jumps = 0
        var nameBytes = 0
        while true {
            guard cursor < bytes.count else { throw .truncated }
            let length = bytes[cursor]
            switch length & 0xC0 {
            case 0x00:
                nameBytes += 1 + Int(length)
                guard nameBytes <= DNSWireLimit.nameBytes else { throw .nameTooLong }
                if length == 0 {
                    if keep { name.append(0) }
                    position = resumeAt ?? cursor + 1
                    return
                }
                let end = cursor + 1 + Int(length)
                guard end <= bytes.count else { throw .truncated }
                if keep {
                    name.append(length)
                    name.append(contentsOf: bytes[(cursor + 1)..<end])
                }
                cursor = end
            case 0xC0:
                guard cursor + 1 < bytes.count else { throw .truncated }
                let target = Int(length & 0x3F) << 8 | Int(bytes[cursor + 1])
                guard target < runStart else { throw .badPointer }
                jumps += 1
                guard jumps <= DNSWireLimit.compressionJumps else { throw .tooManyPointers }
                if resumeAt == nil { resumeAt = cursor + 2 }
                cursor = target
                runStart = target
            default:
                throw .badLabelType
            }
        }
    }

    /// Skips one resource record of the answer or authority section.
    private mutating func skipRecord() throws(DNSParseError) {
        var ignored: [UInt8] = []
        try readName(into: &ignored, keep: false)
        guard try readUInt16() != DNSRecordType.opt else { throw .optOutsideAdditional }
        _ = try readUInt16()  // class
        _ = try readUInt32()  // TTL
        try skip(Int(try readUInt16()))
    }

    /// Reads one record of the additional section: the EDNS0 fields if it is an OPT record.
    private mutating func readAdditionalRecord() throws(DNSParseError) -> DNSEDNS? {
        let ownerStart = position
        var ignored: [UInt8] = []
        try readName(into: &ignored, keep: false)
        let ownerIsRoot = position == ownerStart + 1
        let type = try readUInt16()
        let recordClass = try readUInt16()
        let ttl = try readUInt32()
        let length = Int(try readUInt16())
        // Options (RFC 6891 §6.1.2) are skipped whole: none is acted on. Cookies (RFC 7873) and
        // padding are optional for a server; unknown options MUST be ignored (§6.1.2).
        try skip(length)
        guard type == DNSRecordType.opt else { return nil }
        guard ownerIsRoot else { throw .optNotAtRoot }
        return DNSEDNS(
            udpPayloadBytes: recordClass,
            version: UInt8(truncatingIfNeeded: ttl >> 16),
            dnssecOK: ttl & 0x8000 != 0)
    }

    private mutating func skip(_ count: Int) throws(DNSParseError) {
        guard count <= bytes.count - position else { throw .truncated }
        position += count
    }
}
