import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTLS
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
import TestSupport

/// A TLS front to a `TestRegistry`, as a load balancer or CDN in front of a real registry: it
/// passes pulls (GET and HEAD) through, except those it is told to refuse, which it answers
/// itself with the status and `Retry-After` given (a rate limit, an overloaded backend).
/// docker-registry cannot be made to send a 429 or a 503; this can.
public final class RegistryFront: Sendable {
    public let port: Int
    private let registry: TestRegistry
    private let http: HTTPClient
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)
    private let refusals = Mutex<[Refusal]>([])
    private let seen = Mutex<[(path: String, time: ContinuousClock.Instant)]>([])
    private let cuts = Mutex<[(pathContaining: String, bytes: Int)]>([])
    private let misplacedRanges = Mutex<[String]>([])
    private let ranges = Mutex<[String]>([])

    private struct Refusal {
        var pathContaining: String
        var status: Int
        var retryAfter: String?
        var delay: Duration
    }

    /// `127.0.0.1:<port>`: what an image reference names to pull through the front.
    public var host: String { "127.0.0.1:\(port)" }

    /// Serves on `port` (default: a free loopback port) with the registry's own certificate
    /// (issued for 127.0.0.1 by the registry's CA, so a puller trusting `registry.caFile`
    /// trusts the front).
    public init(_ registry: TestRegistry, port: Int? = nil) async throws {
        self.registry = registry
        self.port = try port ?? freeLoopbackPort()
        var client = TLSConfiguration.makeClientConfiguration()
        client.additionalTrustRoots = [.file(registry.caFile)]
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: client))
        let server = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(registry.directory + "/server.pem").map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: registry.directory + "/server.key", format: .pem)))
        let router = Router()
        for method in [HTTPRequest.Method.get, .head] {
            router.on("**", method: method) { [self] request, _ in try await self.answer(request) }
        }
        let running = try await serveOnLoopback(router, port: self.port, server: try .tls(tlsConfiguration: server), name: "registry front")
        task.withLock { $0 = running }
    }

    /// The next request whose path contains `pathContaining` is answered `status` (with
    /// `Retry-After: retryAfter` when given), `delay` after it came, instead of going to the
    /// registry. Queued: each call refuses one more request.
    public func refuseNext(pathContaining: String, status: Int, retryAfter: String? = nil, delay: Duration = .zero) {
        refusals.withLock { $0.append(Refusal(pathContaining: pathContaining, status: status, retryAfter: retryAfter, delay: delay)) }
    }

    /// The next answer whose path contains `pathContaining` breaks off after `bytes` bytes of
    /// its body (its Content-Length says all of them): a connection lost mid-download.
    public func cutNext(pathContaining: String, after bytes: Int) {
        cuts.withLock { $0.append((pathContaining, bytes)) }
    }

    /// The next request with a Range header whose path contains `pathContaining` is answered
    /// 206 with the whole content from its first byte (and a Content-Range that says so), not
    /// from the offset asked: a cache that does ranges wrong.
    public func misplaceNextRange(pathContaining: String) {
        misplacedRanges.withLock { $0.append(pathContaining) }
    }

    /// The Range headers of the requests that had one, in order.
    public var rangesAsked: [String] { ranges.withLock { $0 } }

    /// When each request whose path contains `pathContaining` came, refused or passed, in order.
    public func requestTimes(pathContaining: String) -> [ContinuousClock.Instant] {
        seen.withLock { $0.filter { $0.path.contains(pathContaining) }.map(\.time) }
    }

    public func stop() async {
        task.withLock { $0?.cancel() }
        try? await http.shutdown()
    }

    /// A registry's error document for `status` (the distribution spec's error codes).
    private static func errorBody(status: Int) -> String {
        switch status {
        case 404: #"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#
        case 429: #"{"errors":[{"code":"TOOMANYREQUESTS","message":"try again later"}]}"#
        default: #"{"errors":[{"code":"UNAVAILABLE","message":"try again later"}]}"#
        }
    }

    private func answer(_ request: Request) async throws -> Response {
        let path = request.uri.string
        seen.withLock { $0.append((path, .now)) }
        let refusal = refusals.withLock { refusals -> Refusal? in
            guard let index = refusals.firstIndex(where: { path.contains($0.pathContaining) }) else { return nil }
            return refusals.remove(at: index)
        }
        if let refusal {
            if refusal.delay > .zero { try await Task.sleep(for: refusal.delay) }
            var headers: HTTPFields = [.contentType: "application/json"]
            if let retryAfter = refusal.retryAfter { headers[.retryAfter] = retryAfter }
            return Response(
                status: .init(code: refusal.status), headers: headers,
                body: .init(byteBuffer: ByteBuffer(string: Self.errorBody(status: refusal.status))))
        }
        let range = request.headers[.range]
        if let range { ranges.withLock { $0.append(range) } }
        let misplace = range != nil && misplacedRanges.withLock { misplaced -> Bool in
            guard let index = misplaced.firstIndex(where: { path.contains($0) }) else { return false }
            misplaced.remove(at: index)
            return true
        }
        var forwarded = HTTPClientRequest(url: "https://\(registry.host)\(path)")
        forwarded.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where field.name != .connection && !(misplace && field.name == .range) {
            forwarded.headers.add(name: field.name.rawName, value: field.value)
        }
        let response = try await http.execute(forwarded, deadline: .now() + .seconds(30))
        let body = try await response.body.collect(upTo: 256 << 20)
        var headers = HTTPFields()
        for (name, value) in response.headers where !["connection", "transfer-encoding", "content-length"].contains(name.lowercased()) {
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
        }
        var status = Int(response.status.code)
        if misplace && status == 200 {
            status = 206
            headers[.contentRange] = "bytes 0-\(body.readableBytes - 1)/\(body.readableBytes)"
        }
        let cut = cuts.withLock { cuts -> Int? in
            guard let index = cuts.firstIndex(where: { path.contains($0.pathContaining) }) else { return nil }
            return cuts.remove(at: index).bytes
        }
        if let cut {
            struct CutShort: Error {}
            let sent = body.getSlice(at: body.readerIndex, length: min(cut, body.readableBytes)) ?? ByteBuffer()
            return Response(status: .init(code: status), headers: headers, body: .init(contentLength: body.readableBytes) { writer in
                try await writer.write(sent)
                throw CutShort()
            })
        }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: body))
    }
}
