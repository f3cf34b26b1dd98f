import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A catalog watch (`watch=true`, server-sent events) through a client agent streams as it does
/// on a server: the first answer at once, not the whole stream when the server ends it.
@Suite(.dedicatedThread, .enabled(if: getuid() == 0, "needs root: agentd launches services"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct ClientRelayedWatchTests {
    @Test func aCatalogWatchThroughAClientStreams() throws {
        let (server, client, _, _) = try ClientAgentTests.serverAndClient()
        defer {
            client.shutdown()
            server.shutdown()
        }
        let descriptor = try UnixHTTP.connect(socket: client.socket)
        defer { close(descriptor) }
        try UnixHTTP.send("GET /v1/catalog/service/web?watch=true&wait=30s HTTP/1.1\r\nHost: agentd\r\n\r\n", on: descriptor)
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let asked = Date()
        var received = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !received.contains("event: instances"), Date().timeIntervalSince(asked) < 10 {
            let count = read(descriptor, &buffer, buffer.count)
            if count > 0 { received += String(decoding: buffer[..<count], as: UTF8.self) }
            if count == 0 { break }
        }
        #expect(received.contains("HTTP/1.1 200") && received.contains("event: instances"),
                "no first event within 10 s of asking (the watch lasts 30 s): \(received.prefix(600))")
    }
}
