import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

private let isRoot = getuid() == 0

/// Plain key-value writes and reads of one key are answered on the event loop (`KVFastPath`),
/// everything else by the router: the two answer alike, keep the connection as the router
/// does, and the fast path takes exactly the plain requests (its counters say which it took).
@Suite(.serialized, .enabled(if: isRoot, "needs root: agentd runs services in cgroups"), .timeLimit(.minutes(5)))
struct KVFastPathTests {
    /// A kept-alive HTTP/1.1 connection to the agent's socket, answers read whole.
    final class Connection {
        let descriptor: Int32
        private var pending: [UInt8] = []

        init(_ agent: DevAgent) throws {
            descriptor = try UnixHTTP.connect(socket: agent.socket)
        }

        deinit { close(descriptor) }

        func send(_ text: String) throws {
            try UnixHTTP.send(text, on: descriptor)
        }

        /// `PUT path` with `body`, and `extra` header lines.
        static func put(_ path: String, _ body: String, extra: String = "") -> String {
            "PUT \(path) HTTP/1.1\r\nHost: agentd\r\nContent-Length: \(body.utf8.count)\r\n\(extra)\r\n\(body)"
        }

        /// The next answer: its status line, its header lines in order, its body.
        func answer(timeout: Duration = .seconds(30)) throws -> (status: String, headers: [String], body: String) {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let answer = Self.parse(&pending) { return answer }
                var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 200) > 0 else { continue }
                var buffer = [UInt8](repeating: 0, count: 65536)
                let count = recv(descriptor, &buffer, buffer.count, 0)
                guard count > 0 else { throw TestFailure("the connection ended; unread: \(String(decoding: pending, as: UTF8.self))") }
                pending += buffer[0..<count]
            }
            throw TestFailure("no whole answer within \(timeout): \(String(decoding: pending, as: UTF8.self))")
        }

        /// Whether the server ends the connection within `timeout` (whatever it sends first).
        func isClosed(within timeout: Duration) -> Bool {
            let deadline = ContinuousClock.now + timeout
            var buffer = [UInt8](repeating: 0, count: 4096)
            while ContinuousClock.now < deadline {
                var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 200) > 0 else { continue }
                if recv(descriptor, &buffer, buffer.count, 0) <= 0 { return true }
            }
            return false
        }

        private static func parse(_ bytes: inout [UInt8]) -> (status: String, headers: [String], body: String)? {
            let text = String(decoding: bytes, as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { return nil }
            let lines = text[..<end.lowerBound].split(separator: "\r\n").map(String.init)
            let length = lines.first { $0.lowercased().hasPrefix("content-length:") }.flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            let headLength = text[..<end.upperBound].utf8.count
            guard bytes.count >= headLength + length else { return nil }
            let body = String(decoding: bytes[headLength..<(headLength + length)], as: UTF8.self)
            bytes.removeFirst(headLength + length)
            return (lines[0], Array(lines.dropFirst()), body)
        }
    }

    /// How many writes (or reads) the fast path took, from the agent's metrics.
    static func taken(_ agent: DevAgent, _ kind: String = "writes") throws -> Int {
        let metrics = try UnixHTTP.request("GET", "/metrics", socket: agent.socket).body
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("flotilla_api_kv_fast_\(kind)_total ") }
        return line.flatMap { Int(Double($0.split(separator: " ")[1]) ?? -1) } ?? 0
    }

    /// `headers` without the values that differ from answer to answer.
    static func shape(_ headers: [String]) -> [String] {
        headers.map { line in
            let name = String(line.prefix { $0 != ":" })
            return ["date", "x-flotilla-index", "content-length"].contains(name.lowercased()) ? name : line
        }
    }

    @Test func aPlainWriteIsAnsweredAsTheRouterAnswersTheSameWrite() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let before = try Self.taken(agent)
        let connection = try Connection(agent)
        // The same write twice: plain (the fast path), and with `cas=0` (the router's).
        try connection.send(Connection.put("/v1/kv/app/one", "hello"))
        let fast = try connection.answer()
        try connection.send(Connection.put("/v1/kv/app/two?cas=0", "hello"))
        let routed = try connection.answer()
        #expect(try Self.taken(agent) == before + 1)
        #expect(fast.status == "HTTP/1.1 200 OK" && routed.status == fast.status, "\(fast.status) / \(routed.status)")
        #expect(Self.shape(fast.headers) == Self.shape(routed.headers), "\(fast.headers) / \(routed.headers)")
        let date = try #require(fast.headers.first { $0.hasPrefix("Date: ") })
        #expect(date.range(of: #"^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$"#,
                                options: .regularExpression) != nil, "\(date)")
        let index = try #require(fast.headers.first { $0.hasPrefix("X-Flotilla-Index: ") }.map { String($0.dropFirst(18)) })
        #expect(fast.body == #"{"createIndex":\#(index),"key":"app/one","modifyIndex":\#(index),"size":5}"#, "\(fast.body)")
        let routedIndex = try #require(routed.headers.first { $0.hasPrefix("X-Flotilla-Index: ") }.map { String($0.dropFirst(18)) })
        #expect(routed.body == #"{"createIndex":\#(routedIndex),"key":"app/two","modifyIndex":\#(routedIndex),"size":5}"#)

        // The write is the store's: read back on the same connection, then written again
        // (a new modify index), with two writes pipelined in one send, answered in order.
        try connection.send("GET /v1/kv/app/one HTTP/1.1\r\nHost: agentd\r\n\r\n")
        let read = try connection.answer()
        #expect(read.body.contains(#""value":"aGVsbG8=""#), "\(read.body)")
        try connection.send(Connection.put("/v1/kv/app/one", "again") + Connection.put("/v1/kv/app/three", "x"))
        let second = try connection.answer()
        let third = try connection.answer()
        #expect(second.body.contains(#""key":"app/one""#) && second.body.contains(#""createIndex":\#(index),"#), "\(second.body)")
        #expect(!second.body.contains(#""modifyIndex":\#(index)}"#), "\(second.body)")
        #expect(third.body.contains(#""key":"app/three""#), "\(third.body)")
        #expect(try Self.taken(agent) == before + 3)
    }

    /// A client that sends its requests and then shuts its side (`nc -N`, a script's pipe) is
    /// answered every one: the half close reaches the router, which ends the connection on
    /// it, only after the write taken here and the read behind it.
    @Test func aClientThatHalfClosesAfterItsRequestsGetsEveryAnswer() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let before = try Self.taken(agent)
        let connection = try Connection(agent)
        try connection.send(Connection.put("/v1/kv/half/closed", "hello", extra: "Accept: */*\r\n")
            + "GET /v1/kv/half/closed HTTP/1.1\r\nHost: agentd\r\n\r\n")
        #expect(shutdown(connection.descriptor, Int32(SHUT_WR)) == 0)
        let written = try connection.answer()
        #expect(written.status == "HTTP/1.1 200 OK" && written.body.contains(#""key":"half/closed""#), "\(written)")
        let read = try connection.answer()
        #expect(read.status == "HTTP/1.1 200 OK" && read.body.contains(#""value":"aGVsbG8=""#), "\(read)")
        #expect(connection.isClosed(within: .seconds(10)))
        #expect(try Self.taken(agent) == before + 1)
    }

    /// Requests pipelined behind a write taken here are answered as soon as it is, the router's
    /// ones included, without the client sending anything more.
    @Test func requestsPipelinedBehindAWriteAreAnsweredWithoutMoreBytes() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let connection = try Connection(agent)
        let get = "GET /v1/kv/piped HTTP/1.1\r\nHost: agentd\r\n\r\n"
        try connection.send(Connection.put("/v1/kv/piped", "hello") + get + get)
        #expect(try connection.answer(timeout: .seconds(10)).status == "HTTP/1.1 200 OK")
        for _ in 0..<2 {
            let read = try connection.answer(timeout: .seconds(10))
            #expect(read.status == "HTTP/1.1 200 OK" && read.body.contains(#""value":"aGVsbG8=""#), "\(read)")
        }
    }

    /// A client that half closes in the middle of a write's body: the write is not made and
    /// the connection ends, rather than staying open with the write counted in progress.
    @Test func aHalfCloseInTheMiddleOfABodyEndsTheConnection() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let before = try Self.taken(agent)
        let connection = try Connection(agent)
        try connection.send("PUT /v1/kv/cut HTTP/1.1\r\nHost: agentd\r\nContent-Length: 10\r\n\r\nhalf")
        #expect(shutdown(connection.descriptor, Int32(SHUT_WR)) == 0)
        #expect(connection.isClosed(within: .seconds(10)))
        #expect(try Self.taken(agent) == before + 1)
        #expect(try UnixHTTP.request("GET", "/v1/kv/cut", socket: agent.socket).status == 404)
    }

    @Test func writesItDoesNotTakeGetTheRoutersAnswers() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let before = try Self.taken(agent)
        let connection = try Connection(agent)
        // A refused key, a percent-encoded one, a value over the limit, a chunked body.
        try connection.send(Connection.put("/v1/kv/a/../b", "x"))
        let dots = try connection.answer()
        #expect(dots.status.hasPrefix("HTTP/1.1 400") && dots.body.contains(#""path":"key""#), "\(dots)")
        try connection.send(Connection.put("/v1/kv/a%2Fb", "x"))
        let encoded = try connection.answer()
        #expect(encoded.status == "HTTP/1.1 200 OK" && encoded.body.contains(#""key":"a/b""#), "\(encoded)")
        try connection.send("PUT /v1/kv/chunked HTTP/1.1\r\nHost: agentd\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        let chunked = try connection.answer()
        #expect(chunked.status == "HTTP/1.1 200 OK" && chunked.body.contains(#""size":2"#), "\(chunked)")
        #expect(try Self.taken(agent) == before, "the fast path took a write that is the router's")
        try connection.send(Connection.put("/v1/kv/typed", "x", extra: "Accept: text/plain\r\n"))
        let typed = try connection.answer()
        #expect(typed.status.hasPrefix("HTTP/1.1 406"), "\(typed)")
        // Over the limit, on a connection of its own (the router may stop reading its body).
        let other = try Connection(agent)
        try other.send(Connection.put("/v1/kv/big", String(repeating: "v", count: 512 * 1024 + 1)))
        let oversized = try other.answer()
        #expect(oversized.status.hasPrefix("HTTP/1.1 413"), "\(oversized.status) \(oversized.body)")

        // `Connection: close` is the router's too, which ends the connection after its answer.
        try connection.send(Connection.put("/v1/kv/last", "x", extra: "Connection: close\r\n"))
        #expect(try connection.answer().status == "HTTP/1.1 200 OK")
        #expect(connection.isClosed(within: .seconds(10)))
        #expect(try Self.taken(agent) == before)
    }

    /// `GET path` with `extra` header lines.
    static func get(_ path: String, extra: String = "") -> String {
        "GET \(path) HTTP/1.1\r\nHost: agentd\r\n\(extra)\r\n"
    }

    @Test func aReadOfOneKeyIsAnsweredAsTheRouterAnswersTheSameRead() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let connection = try Connection(agent)
        try connection.send(Connection.put("/v1/kv/app/one", "hello"))
        #expect(try connection.answer().status == "HTTP/1.1 200 OK")
        let before = try Self.taken(agent, "reads")
        // Each read twice: plain (the fast path), and with `recurse=false`, which asks the same
        // (the router's). Nothing changes in between, so the answers are the same.
        for (path, status) in [("/v1/kv/app/one", "HTTP/1.1 200 OK"), ("/v1/kv/app/one?stale=true", "HTTP/1.1 200 OK"),
                               ("/v1/kv/app/missing", "HTTP/1.1 404 Not Found")] {
            try connection.send(Self.get(path))
            let fast = try connection.answer()
            try connection.send(Self.get(path + (path.contains("?") ? "&" : "?") + "recurse=false"))
            let routed = try connection.answer()
            #expect(fast.status == status && routed.status == status, "\(path): \(fast.status) / \(routed.status)")
            #expect(Self.shape(fast.headers) == Self.shape(routed.headers), "\(path): \(fast.headers) / \(routed.headers)")
            #expect(fast.body == routed.body, "\(path): \(fast.body) / \(routed.body)")
        }
        #expect(try Self.taken(agent, "reads") == before + 3)
        try connection.send(Self.get("/v1/kv/app/one"))
        let read = try connection.answer()
        #expect(read.body.contains(#""key":"app/one""#) && read.body.contains(#""value":"aGVsbG8=""#), "\(read.body)")
        #expect(read.headers.contains("X-Flotilla-Known-Leader: true"), "\(read.headers)")
    }

    @Test func readsItDoesNotTakeGetTheRoutersAnswers() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let connection = try Connection(agent)
        try connection.send(Connection.put("/v1/kv/app/one", "hello"))
        let written = try connection.answer()
        let index = try #require(written.headers.first { $0.hasPrefix("X-Flotilla-Index: ") }.map { String($0.dropFirst(18)) })
        let before = try Self.taken(agent, "reads")
        try connection.send(Self.get("/v1/kv/app/one?raw=true"))
        let raw = try connection.answer()
        #expect(raw.status == "HTTP/1.1 200 OK" && raw.body == "hello", "\(raw)")
        try connection.send(Self.get("/v1/kv/app?recurse=true"))
        let list = try connection.answer()
        #expect(list.body.hasPrefix("[") && list.body.contains(#""key":"app/one""#), "\(list)")
        try connection.send(Self.get("/v1/kv/app/one?stale=false"))
        #expect(try connection.answer().status == "HTTP/1.1 200 OK")
        // A blocking query on the key's own index answers at once (it is not behind it).
        try connection.send(Self.get("/v1/kv/app/one?index=\(index)&wait=1s"))
        #expect(try connection.answer().status == "HTTP/1.1 200 OK")
        try connection.send(Self.get("/v1/kv/app%2Fone"))
        let encoded = try connection.answer()
        #expect(encoded.status == "HTTP/1.1 200 OK" && encoded.body.contains(#""key":"app/one""#), "\(encoded)")
        try connection.send(Self.get("/v1/kv/app/one", extra: "Accept: application/octet-stream\r\n"))
        // The router refuses it (406: the answer is JSON); taken here, it would be a 200.
        let octets = try connection.answer()
        #expect(octets.status == "HTTP/1.1 406 Not Acceptable", "\(octets)")
        #expect(try Self.taken(agent, "reads") == before, "the fast path took a read that is the router's")
    }
}
