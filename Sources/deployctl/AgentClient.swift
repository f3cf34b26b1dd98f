import AgentAPI
import ArgumentParser
import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOPosix
import NIOSSL
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where deployctl finds the agent: `--address`/`FLOTILLA_ADDR` (a unix socket path, or
/// `https://host:port`, `http://` for a dev agent), `--token`/`FLOTILLA_TOKEN` for TCP, and
/// `--ca-file`/`FLOTILLA_CACERT`: the cluster CA that signed the agent's certificate.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "The agent: a unix socket path (default /run/flotilla/api.sock, or $FLOTILLA_ADDR) or https://host:port (http:// for a dev agent).")
    var address: String?

    @Option(name: .long, help: "Bearer token for TCP access (default $FLOTILLA_TOKEN).")
    var token: String?

    @Option(name: .customLong("ca-file"), help: "The cluster CA certificate to trust for https:// (default $FLOTILLA_CACERT; on any agent it is STATE/state/cluster/cluster-ca.pem).")
    var caFile: String?

    func client() -> AgentClient {
        let environment = ProcessInfo.processInfo.environment
        return AgentClient(
            address: address ?? environment["FLOTILLA_ADDR"] ?? AgentClient.defaultSocket,
            token: token ?? environment["FLOTILLA_TOKEN"], caFile: caFile ?? environment["FLOTILLA_CACERT"])
    }
}

/// Why a command failed, and the exit status it maps to.
enum CommandFailure: Error, CustomStringConvertible {
    /// The agent refused the request (exit 1).
    case refused(APIError)
    /// The agent could not be reached (exit 3).
    case unreachable(String)
    /// Something the user asked for cannot be done (exit 1).
    case failed(String)

    var description: String {
        switch self {
        case .refused(let error): error.description
        case .unreachable(let message): message
        case .failed(let message): message
        }
    }

    /// Worth asking again after a while, as a watch does: the agent unreachable (restarting,
    /// say), or answering that it cannot now (no leader during an election, overloaded, a
    /// timeout, an internal error). A refusal of the request itself is not.
    var isTransient: Bool {
        switch self {
        case .unreachable: return true
        case .refused(let error): return Self.transientCodes.contains(error.code)
        case .failed: return false
        }
    }

    private static let transientCodes: Set<String> = [
        APIErrorCode.noLeader, APIErrorCode.overloaded, APIErrorCode.timeout, APIErrorCode.internalError,
    ]

    var exitCode: Int32 {
        switch self {
        case .refused, .failed: 1
        case .unreachable: 3
        }
    }
}

/// Talks to agentd's HTTP API over its unix socket or TCP through the client generated from
/// openapi.json (`AgentAPI.Client`), on AsyncHTTPClient.
struct AgentClient: Sendable {
    static let defaultSocket = "/run/flotilla/api.sock"

    let address: String
    let token: String?
    /// The CA to trust for `https://` (the system's roots without it).
    var caFile: String? = nil

    /// The agent's base URL: `http+unix://` with the socket path percent-encoded as the host
    /// (AsyncHTTPClient's form), or the `http(s)://host:port` given.
    var serverURL: URL? {
        if address.hasPrefix("http://") || address.hasPrefix("https://") { return URL(string: address) }
        let encoded = socketPath.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socketPath
        return URL(string: "http+unix://\(encoded)")
    }

    /// The socket path, for a unix-socket address.
    var socketPath: String {
        address.hasPrefix("unix://") ? String(address.dropFirst("unix://".count)) : address
    }

    var isUnixSocket: Bool { !(address.hasPrefix("http://") || address.hasPrefix("https://")) }

    /// Calls the agent with the generated client, whose requests give up after `timeout`
    /// without an answer (a blocking query or a stream needs longer). Every failure comes out
    /// as a `CommandFailure`: the agent's refusal in its error shape, an agent that cannot be
    /// reached (with what to do), or an answer this deployctl does not understand.
    /// With `sendingManifest`, those bytes are the body of `applyApplication` as they are (the
    /// typed body stands for any JSON object, and re-encoding it would lose the manifest's key
    /// order and layout, which the agent keeps as the revision's text).
    func perform<Answer>(
        timeout: Duration = .seconds(60), sendingManifest manifest: [UInt8]? = nil, _ body: (Client) async throws -> Answer
    ) async throws(CommandFailure) -> Answer {
        guard let url = serverURL else { throw .unreachable("--address \(address): write a socket path or http://host:port") }
        let transport = AsyncHTTPClientTransport(configuration: .init(
            client: try Self.http(trusting: caFile), timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000)))
        let client = Client(serverURL: url, transport: transport, middlewares: [AgentRequestMiddleware(token: token, manifest: manifest)])
        do {
            return try await body(client)
        } catch let failure as CommandFailure {
            throw failure
        } catch let error as ClientError {
            if let failure = error.underlyingError as? CommandFailure { throw failure }
            if error.response == nil { throw unreachable(error.underlyingError) }
            throw .failed("the agent's answer to \(error.operationID) is not what this deployctl understands (\(error.underlyingError)); are their versions the same?")
        } catch {
            throw unreachable(error)
        }
    }

    /// What to tell someone whose agent did not answer.
    func unreachable(_ error: any Error) -> CommandFailure {
        let setting = "(set --address or FLOTILLA_ADDR)"
        guard isUnixSocket else {
            if let tls = error as? NIOSSLError, caFile == nil {
                return .unreachable("cannot verify the agent at \(address) (\(tls)): an agent of a cluster presents a certificate of the cluster's CA; give it with --ca-file or FLOTILLA_CACERT (it is STATE/state/cluster/cluster-ca.pem on any agent)")
            }
            if address.hasPrefix("http://"), let closed = error as? HTTPClientError, closed == .remoteConnectionClosed {
                return .unreachable("the agent at \(address) closed the connection: an agent of a cluster serves its TCP API over TLS; use https:// \(setting)")
            }
            return .unreachable("cannot reach the agent at \(address): \(Self.reason(error)); is agentd running with --api-tcp? \(setting)")
        }
        var info = stat()
        if stat(socketPath, &info) != 0 {
            return .unreachable("no agent socket at \(socketPath): is agentd running? Start it (scripts/demo runs a dev agent) or point to its socket \(setting)")
        }
        if access(socketPath, R_OK | W_OK) != 0 {
            return .unreachable("the agent socket at \(socketPath) is root's alone: run deployctl as root, or use the TCP API with a token")
        }
        return .unreachable("the agent socket at \(socketPath) does not answer (\(Self.reason(error))): agentd is not running there; start it \(setting)")
    }

    /// The cause in a few words, without the layers of the HTTP stack.
    static func reason(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        if let error = error as? HTTPClientError, error == .connectTimeout { return "no answer in time" }
        return "\(error)"
    }

    /// One client per trusted CA for the process: connections fail at once instead of being
    /// retried until the connect timeout, as a CLI talking to one agent should
    /// (AsyncHTTPClient retries for a minute by default). Never shut down: they live as long
    /// as deployctl does.
    private static let clients = Mutex<[String: HTTPClient]>([:])

    static func http(trusting caFile: String?) throws(CommandFailure) -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            } catch {
                throw .failed("--ca-file \(caFile): not a readable PEM certificate (\(error)); give the cluster CA, STATE/state/cluster/cluster-ca.pem on any agent")
            }
        }
        return clients.withLock { clients in
            if let client = clients[caFile ?? ""] { return client }
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
            configuration.connectionPool.retryConnectionEstablishment = false
            configuration.timeout.connect = .seconds(5)
            let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            clients[caFile ?? ""] = client
            return client
        }
    }
}

/// Adds the bearer token, sends a manifest as written, and turns an error answer (in the API's one shape) into a
/// `CommandFailure` before the generated code sees it: every call then only handles its success.
struct AgentRequestMiddleware: ClientMiddleware {
    let token: String?
    /// The manifest to send, as written, in place of the typed body of `applyApplication`.
    let manifest: [UInt8]?

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        if let token { request.headerFields[.authorization] = "Bearer \(token)" }
        var body = body
        if let manifest, operationID == Operations.ApplyApplication.id { body = HTTPBody(manifest) }
        let (response, responseBody) = try await next(request, body, baseURL)
        guard response.status.kind != .successful else { return (response, responseBody) }
        // A missing key's answer carries the index to wait past for it to appear: `kv watch`
        // reads it from the typed answer.
        if response.status == .notFound && operationID == Operations.GetKV.id { return (response, responseBody) }
        var bytes: [UInt8] = []
        if let responseBody { bytes = try await [UInt8](collecting: responseBody, upTo: 1 << 20) }
        if let error = try? JSONDecoder().decode(APIError.self, from: Data(bytes)) { throw CommandFailure.refused(error) }
        throw CommandFailure.failed("the agent answered \(response.status.code): \(String(decoding: bytes, as: UTF8.self))")
    }
}
