import Discovery
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Shared by the DNS tests: a catalog, a running server, `dig`, raw sockets and an independent
// decoder of responses (written from RFC 1035 §4.1.4 again, not sharing the server's reader).
// Addresses are documentation ranges (RFC 5737, RFC 3849): they appear in answers only; all
// traffic goes to 127.0.0.1.

enum DNSFixture {
    static func address(_ text: String) -> DNSAddress {
        guard let address = DNSAddress(text) else {
            Issue.record("bad fixture address \(text)")
            return .ipv4(0)
        }
        return address
    }

    /// web: three passing instances on n1–n3 and a failing one; tags v1/v2. api: one IPv6
    /// instance whose address is not its node's, and one on n2's own address. db: all failing.
    static func catalog(ttl: Duration = .zero) -> DNSCatalog {
        let http = [DNSPort(name: "http", number: 8080), DNSPort(name: "metrics", number: 9100)]
        return DNSCatalog(
            domain: "flotilla.", ttl: ttl, serial: 7,
            instances: [
                DNSInstance(service: "web", tags: ["v1"], node: "n1", address: address("192.0.2.1"), ports: http, passing: true),
                DNSInstance(service: "web", tags: ["v2"], node: "n2", address: address("192.0.2.2"), ports: http, passing: true),
                DNSInstance(service: "web", tags: ["v2"], node: "n3", address: address("192.0.2.3"), ports: http, passing: true),
                DNSInstance(service: "web", tags: ["v2"], node: "n3", address: address("192.0.2.9"), ports: http, passing: false),
                DNSInstance(service: "api", node: "n2", address: address("2001:db8::10"), ports: [DNSPort(name: "grpc", number: 7000)], passing: true),
                DNSInstance(service: "api", node: "n2", address: address("192.0.2.2"), ports: [DNSPort(name: "grpc", number: 7001)], passing: true),
                DNSInstance(service: "db", node: "n1", address: address("192.0.2.1"), ports: [DNSPort(number: 5432)], passing: false),
            ],
            nodes: [
                DNSNode(name: "n1", addresses: [address("192.0.2.1")]),
                DNSNode(name: "n2", addresses: [address("192.0.2.2"), address("2001:db8::2")]),
                DNSNode(name: "n3", addresses: [address("192.0.2.3")]),
            ],
            nameserverAddresses: [address("127.0.0.1")])
    }

    /// One service `big` of `count` passing IPv4 instances on one node each.
    static func bigCatalog(count: Int) -> DNSCatalog {
        var catalog = DNSCatalog()
        for index in 0..<count {
            let ip = DNSAddress.ipv4(0xC633_6400 | UInt32(index))  // 198.51.100.x
            catalog.instances.append(
                DNSInstance(service: "big", node: "b\(index)", address: ip, ports: [DNSPort(name: "http", number: 80)], passing: true))
            catalog.nodes.append(DNSNode(name: "b\(index)", addresses: [ip]))
        }
        return catalog
    }

    /// Runs `body` against a server on `host` (127.0.0.1) with a kernel-chosen port, and stops it after.
    static func withServer(
        _ catalog: DNSCatalog = catalog(), configuration: DNSServer.Configuration = .init(port: 0, shuffleSeed: 1),
        host: String = "127.0.0.1", _ body: (DNSServer, Int) async throws -> Void
    ) async throws {
        var configuration = configuration
        configuration.host = host
        configuration.port = 0
        let server = try DNSServer(configuration: configuration, catalog: catalog)
        try await server.start()
        do {
            let port = try #require(server.port)
            try await body(server, port)
        } catch {
            try await server.stop()
            throw error
        }
        try await server.stop()
    }
}

/// One run of `dig`, its output parsed.
struct DigResult {
    var status: String = ""
    var flags: Set<String> = []
    var question: [String] = []
    var answer: [[String]] = []
    var authority: [[String]] = []
    var additional: [[String]] = []
    var output = ""

    /// The rdata of answer records of `type`, in order.
    func answers(_ type: String) -> [String] {
        answer.filter { $0.count > 4 && $0[3] == type }.map { $0[4...].joined(separator: " ") }
    }

    static func run(port: Int, _ arguments: [String]) throws -> DigResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/dig")
        let server = arguments.first { $0.hasPrefix("@") } ?? "@127.0.0.1"
        process.arguments = [server, "-p", "\(port)", "+norec", "+time=2", "+tries=1", "+nocookie"] + arguments.filter { !$0.hasPrefix("@") }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var result = DigResult()
        result.output = String(decoding: data, as: UTF8.self)
        var section: WritableKeyPath<DigResult, [[String]]>? = nil
        var inQuestion = false
        for line in result.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if let range = line.range(of: "status: ") {
                result.status = String(line[range.upperBound...].prefix { $0 != "," })
            } else if line.hasPrefix(";; flags:") {
                let flagText = line.dropFirst(";; flags:".count).prefix { $0 != ";" }
                result.flags = Set(flagText.split(separator: " ").map(String.init))
            } else if line.hasPrefix(";; QUESTION SECTION:") {
                section = nil
                inQuestion = true
            } else if line.hasPrefix(";; ANSWER SECTION:") {
                section = \.answer
            } else if line.hasPrefix(";; AUTHORITY SECTION:") {
                section = \.authority
            } else if line.hasPrefix(";; ADDITIONAL SECTION:") {
                section = \.additional
            } else if line.isEmpty {
                section = nil
                inQuestion = false
            } else if line.hasPrefix(";") {
                if inQuestion { result.question.append(String(line.dropFirst())) }
            } else if let section {
                result[keyPath: section].append(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
            }
        }
        return result
    }
}

/// Builds query packets by hand, including broken ones.
enum TestQuery {
    /// Wire form of a dotted name.
    static func name(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for label in text.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count))
            bytes.append(contentsOf: label.utf8)
        }
        bytes.append(0)
        return bytes
    }

    static func header(id: UInt16, flags: UInt16 = 0x0100, qd: UInt16 = 1, an: UInt16 = 0, ns: UInt16 = 0, ar: UInt16 = 0) -> [UInt8] {
        [id, flags, qd, an, ns, ar].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// EDNS0 OPT record: root owner, type 41, class = payload size, TTL = version etc.
    static func opt(payload: UInt16 = 1232, version: UInt8 = 0) -> [UInt8] {
        [0, 0, 41, UInt8(payload >> 8), UInt8(payload & 0xFF), 0, version, 0, 0, 0, 0]
    }

    static func make(id: UInt16, name: String, type: UInt16 = 1, flags: UInt16 = 0x0100, edns: Bool = false) -> [UInt8] {
        header(id: id, flags: flags, ar: edns ? 1 : 0) + self.name(name) + [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
            + (edns ? opt() : [])
    }
}

/// A response decoded independently of the server's code.
struct TestMessage {
    struct Record {
        var name: String
        var type: UInt16
        var rdata: [UInt8]
        var rdataOffset: Int
        var ttl: UInt32
        var recordClass: UInt16
    }

    var id: UInt16
    var flags: UInt16
    var rcode: UInt16 { flags & 0x0F }
    var questions: [(name: String, type: UInt16)] = []
    var answers: [Record] = []
    var authority: [Record] = []
    var additional: [Record] = []
    var bytes: [UInt8]

    struct Malformed: Error {}

    init(_ bytes: [UInt8]) throws {
        self.bytes = bytes
        guard bytes.count >= 12 else { throw Malformed() }
        func u16(_ at: Int) throws -> UInt16 {
            guard at + 2 <= bytes.count else { throw Malformed() }
            return UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
        }
        id = try u16(0)
        flags = try u16(2)
        var position = 12
        for _ in 0..<(try u16(4)) {
            let name = try TestMessage.name(bytes, at: &position)
            questions.append((name, try u16(position)))
            position += 4
        }
        func records(_ count: UInt16) throws -> [Record] {
            var result: [Record] = []
            for _ in 0..<count {
                let name = try TestMessage.name(bytes, at: &position)
                let type = try u16(position)
                let recordClass = try u16(position + 2)
                let ttl = UInt32(try u16(position + 4)) << 16 | UInt32(try u16(position + 6))
                let length = Int(try u16(position + 8))
                position += 10
                guard position + length <= bytes.count else { throw Malformed() }
                result.append(Record(name: name, type: type, rdata: Array(bytes[position..<(position + length)]), rdataOffset: position, ttl: ttl, recordClass: recordClass))
                position += length
            }
            return result
        }
        answers = try records(try u16(6))
        authority = try records(try u16(8))
        additional = try records(try u16(10))
        guard position == bytes.count else { throw Malformed() }
    }

    /// Decodes a name, following pointers (only backward ones, as the server writes).
    static func name(_ bytes: [UInt8], at position: inout Int) throws -> String {
        var labels: [String] = []
        var cursor = position
        var jumped = false
        for _ in 0..<128 {
            guard cursor < bytes.count else { throw Malformed() }
            let length = Int(bytes[cursor])
            if length == 0 {
                if !jumped { position = cursor + 1 }
                return labels.joined(separator: ".") + "."
            }
            if length & 0xC0 == 0xC0 {
                guard cursor + 1 < bytes.count else { throw Malformed() }
                let target = (length & 0x3F) << 8 | Int(bytes[cursor + 1])
                guard target < cursor else { throw Malformed() }
                if !jumped { position = cursor + 2 }
                jumped = true
                cursor = target
                continue
            }
            guard length <= 63, cursor + 1 + length <= bytes.count else { throw Malformed() }
            labels.append(String(decoding: bytes[(cursor + 1)...(cursor + length)], as: UTF8.self))
            cursor += 1 + length
        }
        throw Malformed()
    }
}

/// A blocking UDP socket on loopback with a receive timeout.
final class TestUDPClient {
    let fd: Int32
    let port: Int

    init(port: Int) throws {
        self.port = port
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        setTimeout(milliseconds: 2000)
    }

    deinit { close(fd) }

    func setTimeout(milliseconds: Int) {
        var timeout = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ bytes: [UInt8]) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        _ = bytes.withUnsafeBytes { raw in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// The next datagram, or nil after the timeout.
    func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count < 0 ? nil : Array(buffer[0..<count])
    }

    func exchange(_ bytes: [UInt8]) throws -> TestMessage {
        send(bytes)
        return try TestMessage(try #require(receive()))
    }
}

/// A blocking TCP connection to loopback with a receive timeout.
final class TestTCPClient {
    let fd: Int32

    /// `receiveBufferBytes` sets SO_RCVBUF before connecting (the kernel doubles it), so that a
    /// client that does not read holds little in the kernel.
    init(port: Int, timeoutMilliseconds: Int = 2000, receiveBufferBytes: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        if var bytes = receiveBufferBytes {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
        }
        var timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(fd) }

    /// The connection's port on this side.
    var localPort: Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// What the kernel holds of the TCP connection 127.0.0.1:`localPort` to 127.0.0.1:`remotePort`,
    /// from /proc/net/tcp: bytes written and not yet acknowledged (or not yet sent), and bytes
    /// received and not yet read. Nil when there is no such connection.
    static func kernelQueues(localPort: Int, remotePort: Int) throws -> (transmit: Int, receive: Int)? {
        let local = String(format: "0100007F:%04X", localPort)
        let remote = String(format: "0100007F:%04X", remotePort)
        // Read to its end: /proc files report a size of 0, and a read by size stops at a page.
        let table = String(decoding: try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/net/tcp")).readToEnd() ?? Data(), as: UTF8.self)
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[1] == local, fields[2] == remote else { continue }
            let queues = fields[4].split(separator: ":")
            guard queues.count == 2, let transmit = Int(queues[0], radix: 16), let receive = Int(queues[1], radix: 16) else { return nil }
            return (transmit, receive)
        }
        return nil
    }

    static func frame(_ message: [UInt8]) -> [UInt8] {
        [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
    }

    /// Exactly `count` bytes; nil on EOF or timeout.
    func receive(_ count: Int) -> [UInt8]? {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: count)
        while result.count < count {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, count - result.count, 0) }
            guard got > 0 else { return nil }
            result += buffer[0..<got]
        }
        return result
    }

    /// The next length-prefixed message, or nil on EOF or timeout.
    func receiveMessage() -> [UInt8]? {
        guard let length = receive(2) else { return nil }
        return receive(Int(length[0]) << 8 | Int(length[1]))
    }

    /// Whether the server closed the connection (EOF, or a reset) before the timeout; without
    /// `waiting`, whether it has by now.
    func isClosedByPeer(waiting: Bool = true) -> Bool {
        var byte: UInt8 = 0
        let got = recv(fd, &byte, 1, waiting ? 0 : Int32(MSG_DONTWAIT))
        return got == 0 || (got < 0 && errno == ECONNRESET)
    }
}
