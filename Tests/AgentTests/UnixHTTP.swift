import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.0 client over a unix or TCP socket, for tests that must speak to the API
/// or to a service without going through deployctl.
enum UnixHTTP {
    static func request(_ method: String, _ path: String, body: String? = nil, socket socketPath: String) throws -> (status: Int, body: String) {
        let answer = try exchange(method, path, body: body, socket: socketPath)
        return (answer.status, answer.body)
    }

    /// A connection that could not be made: the request was never sent.
    struct NotConnected: Error, CustomStringConvertible {
        var description: String
    }

    /// A request over the unix socket, with the answer's headers (names lowercased). With
    /// `connectionClose` false the request is sent as a kept-alive client sends it (no
    /// `Connection` header: the KV fast path takes only such requests); the connection is
    /// closed after the answer all the same.
    static func exchange(
        _ method: String, _ path: String, body: String? = nil, headers: KeyValuePairs<String, String> = [:], socket socketPath: String,
        timeout: Duration = .seconds(60), connectionClose: Bool = true
    ) throws -> (status: Int, headers: [String: String], body: String)
    {
        let descriptor = try connect(socket: socketPath)
        defer { close(descriptor) }
        return try exchange(
            descriptor, method: method, path: path, host: "agentd", body: body, headers: headers, timeout: timeout, connectionClose: connectionClose)
    }

    /// Writes `text` whole on a connected socket (a request of the test's own making).
    static func send(_ text: String, on descriptor: Int32) throws {
        guard write(descriptor, text, text.utf8.count) == text.utf8.count else { throw TestFailure("write: errno \(errno)") }
    }

    /// A connected unix socket, which the caller closes.
    static func connect(socket socketPath: String) throws -> Int32 {
        let descriptor = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket: \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in socketPath.utf8.enumerated() { buffer[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            close(descriptor)
            throw NotConnected(description: "connect \(socketPath): errno \(error)")
        }
        return descriptor
    }

    static func request(_ method: String, _ path: String, host: String = "127.0.0.1", port: Int, headers: KeyValuePairs<String, String> = [:], timeoutSeconds: Int = 5) throws -> (status: Int, body: String) {
        let descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket: \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestFailure("connect \(host):\(port): errno \(errno)") }
        let answer = try exchange(descriptor, method: method, path: path, host: host, body: nil, headers: headers, timeout: .seconds(timeoutSeconds))
        return (answer.status, answer.body)
    }

    private static func exchange(
        _ descriptor: Int32, method: String, path: String, host: String, body: String?, headers: KeyValuePairs<String, String> = [:],
        timeout: Duration = .seconds(60), connectionClose: Bool = true
    ) throws -> (status: Int, headers: [String: String], body: String) {
        // HTTP/1.1 with `Connection: close`: the server ends the connection after its answer.
        var request = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n" + (connectionClose ? "Connection: close\r\n" : "")
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        if let body {
            if !headers.contains(where: { $0.key.lowercased() == "content-type" }) { request += "Content-Type: application/json\r\n" }
            request += "Content-Length: \(body.utf8.count)\r\n"
        }
        request += "\r\n" + (body ?? "")
        let bytes = Array(request.utf8)
        // Send and receive together: a server may answer (413, say) before it has read the whole
        // body and then stop reading, so a client that only reads once it has sent everything
        // would wait forever.
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        let deadline = ContinuousClock.now + timeout
        var sent = 0
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        exchange: while ContinuousClock.now < deadline {
            var ready = pollfd(fd: descriptor, events: Int16(POLLIN) | (sent < bytes.count ? Int16(POLLOUT) : 0), revents: 0)
            guard poll(&ready, 1, 1000) > 0 else { continue }
            if ready.revents & Int16(POLLOUT) != 0 && sent < bytes.count {
                let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if count > 0 {
                    sent += count
                } else if errno == EPIPE || errno == ECONNRESET {
                    sent = bytes.count
                } else if errno != EAGAIN {
                    throw TestFailure("send: errno \(errno)")
                }
            }
            if ready.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let count = recv(descriptor, &buffer, buffer.count, 0)
                if count < 0 && errno == EAGAIN { continue }
                if count <= 0 { break exchange }
                response.append(contentsOf: buffer[0..<count])
                if let complete = Self.completeLength(response), response.count >= complete { break exchange }
            }
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let headerEnd = text.range(of: "\r\n\r\n") else { throw TestFailure("no HTTP response: \(text)") }
        let headLines = text[..<headerEnd.lowerBound].split(separator: "\r\n")
        let status = headLines.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        var fields: [String: String] = [:]
        for line in headLines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        if fields["transfer-encoding"]?.lowercased() == "chunked" { return (status, fields, try dechunk(text).body) }
        return (status, fields, String(text[headerEnd.upperBound...]))
    }

    /// The whole response's length when its headers are in and carry a Content-Length.
    private static func completeLength(_ bytes: [UInt8]) -> Int? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let headerEnd = text.range(of: "\r\n\r\n") else { return nil }
        let headers = text[..<headerEnd.lowerBound].lowercased()
        guard let line = headers.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return nil }
        return text[..<headerEnd.upperBound].utf8.count + length
    }

    private static func dechunk(_ text: String) throws -> (status: Int, body: String) {
        guard let headerEnd = text.range(of: "\r\n\r\n") else { throw TestFailure("no HTTP response: \(text)") }
        let status = text[..<headerEnd.lowerBound].split(separator: "\r\n").first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        var rest = Substring(text[headerEnd.upperBound...])
        var body = ""
        while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
            let start = lineEnd.upperBound
            let end = rest.utf8.index(start, offsetBy: size)
            body += rest[start..<end]
            // Past the chunk's CRLF, counted in bytes: as Characters, "\r\n" is one.
            rest = rest[(rest.utf8.index(end, offsetBy: 2, limitedBy: rest.utf8.endIndex) ?? rest.utf8.endIndex)...]
        }
        return (status, body)
    }
}
