// Numbers of the DNS wire format that the server reads or writes.
// Sources: RFC 1035 §3.2.2, §4.1.1; RFC 2782 (SRV); RFC 3596 (AAAA); RFC 6891 (OPT, BADVERS).

/// Resource record types the server knows by number (RFC 1035 §3.2.2 and later RFCs).
public enum DNSRecordType {
    /// IPv4 host address (RFC 1035).
    public static let a: UInt16 = 1
    /// Authoritative name server (RFC 1035).
    public static let ns: UInt16 = 2
    /// Start of authority (RFC 1035).
    public static let soa: UInt16 = 6
    /// IPv6 host address (RFC 3596).
    public static let aaaa: UInt16 = 28
    /// Service location (RFC 2782).
    public static let srv: UInt16 = 33
    /// EDNS0 pseudo-record (RFC 6891).
    public static let opt: UInt16 = 41
    /// Incremental zone transfer (RFC 1995): never served here.
    public static let ixfr: UInt16 = 251
    /// Zone transfer (RFC 5936): never served here.
    public static let axfr: UInt16 = 252
    /// Any type (RFC 1035 QTYPE *, RFC 8482).
    public static let any: UInt16 = 255
}

/// Classes the server accepts in a question (RFC 1035 §3.2.4–3.2.5).
enum DNSClass {
    static let internet: UInt16 = 1
    static let any: UInt16 = 255
}

/// Response codes (RFC 1035 §4.1.1; BADVERS from RFC 6891 §9, which needs the OPT's extended bits).
public enum DNSResponseCode: UInt16, Sendable, CaseIterable {
    /// No error.
    case noError = 0
    /// The query could not be parsed.
    case formatError = 1
    /// The server failed internally.
    case serverFailure = 2
    /// The name does not exist (NXDOMAIN).
    case nameError = 3
    /// The opcode is not implemented.
    case notImplemented = 4
    /// The server refuses the query (outside its zone: no recursion here).
    case refused = 5
    /// The query's EDNS version is not supported (12 bits: 4 in the header, 8 in the OPT record).
    case badVersion = 16
}

/// Bits of the header's second 16-bit word (RFC 1035 §4.1.1; AD/CD from RFC 4035 §3.2).
enum DNSHeaderFlag {
    static let response: UInt16 = 0x8000
    static let opcodeMask: UInt16 = 0x7800
    static let authoritative: UInt16 = 0x0400
    static let truncated: UInt16 = 0x0200
    static let recursionDesired: UInt16 = 0x0100
    static let recursionAvailable: UInt16 = 0x0080
    static let checkingDisabled: UInt16 = 0x0010
}

enum DNSWireLimit {
    /// RFC 1035 §4.1.1: the fixed header.
    static let headerBytes = 12
    /// RFC 1035 §2.3.4.
    static let labelBytes = 63
    /// RFC 1035 §2.3.4: a name on the wire, length octets and the root's zero included.
    static let nameBytes = 255
    /// The most of one UDP query read: a longer datagram is cut there (and then is FORMERR).
    /// We advertise 1232 (DNSServer.Configuration), so no conforming client comes near it.
    static let udpQueryBytes = 4096
    /// RFC 1035 §4.2.1: the UDP payload without EDNS0.
    static let classicUDPPayloadBytes = 512
    /// The most compression pointers one name may follow. Pointers must also go strictly backward,
    /// which alone ends every chain; this bound keeps the work per name small besides.
    static let compressionJumps = 32
    /// RFC 1035 §4.1.4: pointers carry 14 bits of offset.
    static let compressionOffsetMax = 0x3FFF
}
