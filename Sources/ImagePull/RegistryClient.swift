import AsyncHTTPClient
import Foundation
import Glibc
import Images
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// How often and how patiently transient failures (connection refused or reset, 5xx, 429) are
/// retried: `attempts` in all, waiting `initialDelay`, doubling up to `maximumDelay`, or what a
/// 429's or 503's `Retry-After` asks (capped at `maximumDelay`).
public struct RetryPolicy: Sendable {
    /// Attempts in all, the first included.
    public var attempts: Int
    /// The wait after the first failure.
    public var initialDelay: Duration
    /// The longest wait between two attempts.
    public var maximumDelay: Duration

    /// A policy; the default waits 0.5, 1 and 2 s between its 4 attempts.
    public init(attempts: Int = 4, initialDelay: Duration = .milliseconds(500), maximumDelay: Duration = .seconds(10)) {
        self.attempts = max(1, attempts)
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
    }
}

/// A failure worth another attempt.
struct TransientFailure: Error {
    var reason: String
    var retryAfter: Duration?
}

/// The OCI distribution API (distribution-spec v1.1 "Pull") for one node: requests with the
/// registry's authentication (Basic, or bearer tokens cached per registry and scope until they
/// expire), retries of transient failures, and the registry's errors in words.
final class RegistryClient: Sendable {
    let http: HTTPClient
    let access: RegistryAccess
    let retry: RetryPolicy
    private let state = Mutex(AuthState())

    private struct AuthState {
        var tokens: [String: (token: String, expires: ContinuousClock.Instant)] = [:]
        /// The Authorization header for each registry that answered with a Basic challenge,
        /// sent with every later request. The credentials file is read again only when the
        /// registry refuses it, so a rotated password is picked up without a file read per blob.
        var basic: [String: String] = [:]
        /// Registries that answered TLS in plain HTTP and may be asked so (`RegistryAccess.mayUsePlainHTTP`).
        var plainHTTP: Set<String> = []
    }

    init(http: HTTPClient, access: RegistryAccess, retry: RetryPolicy) {
        self.http = http
        self.access = access
        self.retry = retry
    }

    /// An HTTP/1.1 client trusting the system's CAs and `access.caFile`. Connection failures are
    /// returned at once (our retries decide), not retried inside the pool until the deadline.
    static func makeHTTPClient(access: RegistryAccess) -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = access.caFile {
            tls.additionalTrustRoots = [.file(caFile)]
        }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .follow(max: 5, allowCycles: false),
            timeout: .init(connect: .seconds(10), read: .seconds(60)))
        configuration.httpVersion = .http1Only
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    // MARK: Retries

    /// Runs `body` until it succeeds, throws something other than a `TransientFailure`, or
    /// the attempts are spent (`unreachable`, with the last reason).
    func withRetries<T>(_ reference: ImageReference, _ body: (_ attempt: Int) async throws -> T) async throws -> T {
        var delay = retry.initialDelay
        var attempt = 1
        while true {
            do {
                return try await body(attempt)
            } catch let failure as TransientFailure {
                guard attempt < retry.attempts else {
                    throw ImagePullError.unreachable(
                        reference: reference, registry: reference.registry, reason: failure.reason, attempts: attempt)
                }
                try await Task.sleep(for: min(failure.retryAfter ?? delay, retry.maximumDelay))
                delay = min(delay * 2, retry.maximumDelay)
                attempt += 1
            }
        }
    }

    /// What a failed request's error means: a TLS failure is final, cancellation stays
    /// cancellation, everything else at the transport (refused, reset, closed, timed out) is
    /// transient.
    func classify(_ error: any Error, _ reference: ImageReference) -> any Error {
        if error is ImagePullError || error is CancellationError || error is TransientFailure { return error }
        if let error = error as? HTTPClientError, error == .cancelled { return CancellationError() }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            let reason = Self.isPlainHTTPAnswer(error)
                ? "it answers in plain HTTP, not TLS; this node reaches a plain-HTTP registry only on this machine or when listed "
                    + "(agentd --registry-plain-http \(reference.registry))"
                : "TLS: \(error)"
            return ImagePullError.transport(reference: reference, registry: reference.registry, reason: reason)
        }
        return TransientFailure(reason: Self.describe(error))
    }

    /// Whether a TLS failure is a server answering the handshake in plain HTTP: BoringSSL reads
    /// "HTTP/1.1 400" as a record of an unknown version.
    static func isPlainHTTPAnswer(_ error: any Error) -> Bool {
        "\(error)".contains("WRONG_VERSION_NUMBER")
    }

    /// A registry that answered TLS in plain HTTP and may be asked so: remembered, so that this
    /// request and later ones go over HTTP (Docker's insecure registries, which also try TLS
    /// first) until HTTP fails there (`send`). False when it may not.
    private func fallsBackToPlainHTTP(after error: any Error, _ reference: ImageReference) -> Bool {
        guard Self.isPlainHTTPAnswer(error), access.mayUsePlainHTTP(reference.registry) else { return false }
        _ = state.withLock { $0.plainHTTP.insert(reference.registry) }
        return true
    }

    /// Asks `registry` over TLS again from the next request on.
    private func forgetPlainHTTP(_ registry: String) {
        _ = state.withLock { $0.plainHTTP.remove(registry) }
    }

    /// A transport error in a few words: `connection refused`, `connection reset by peer`.
    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError {
            return String(cString: strerror(error.errnoCode)).lowercasedFirst
        }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return describe(first.error) }
            if let dns = error.dnsAError ?? error.dnsAAAAError { return "cannot resolve \(error.host): \(dns)" }
        }
        if let error = error as? ChannelError {
            switch error {
            case .connectTimeout: return "connect timed out"
            case .ioOnClosedChannel, .eof, .outputClosed, .alreadyClosed: return "connection closed by the registry"
            default: return "\(error)"
            }
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .remoteConnectionClosed: return "connection closed by the registry"
            case .connectTimeout: return "connect timed out"
            case .readTimeout: return "read timed out"
            case .deadlineExceeded: return "request timed out"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }

    // MARK: Requests

    /// Sends a request to the reference's registry, answering an authentication challenge once:
    /// a 401 with `Bearer` gets a token for the challenge's scope (sent with Basic credentials
    /// when the credentials file has this registry), a 401 with `Basic` gets the credentials.
    /// Transport failures come back classified; statuses are the caller's.
    func send(
        _ reference: ImageReference, method: HTTPMethod, path: String, headers: [(String, String)],
        deadline: NIODeadline = .now() + .seconds(60)
    ) async throws -> HTTPClientResponse {
        let scope = "repository:\(reference.repository):pull"
        var authorization = cachedAuthorization(registry: reference.registry, scope: scope)
        var round = 0
        // A registry remembered as plain HTTP is asked over TLS once more when HTTP fails it:
        // it may have gained a certificate since (a Go server answers HTTP on its TLS port with
        // 400), and otherwise it answers TLS in plain HTTP again and is remembered again.
        var tlsProbed = false
        while round < 2 {
            let scheme = state.withLock { $0.plainHTTP.contains(reference.registry) } ? "http" : "https"
            var request = HTTPClientRequest(url: "\(scheme)://\(reference.requestHost)/v2/\(reference.repository)/\(path)")
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let authorization { request.headers.replaceOrAdd(name: "Authorization", value: authorization) }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, deadline: deadline)
            } catch {
                if scheme == "https", fallsBackToPlainHTTP(after: error, reference) { continue }
                if scheme == "http" { forgetPlainHTTP(reference.registry) }
                throw classify(error, reference)
            }
            if scheme == "http", response.status == .badRequest, !tlsProbed {
                tlsProbed = true
                forgetPlainHTTP(reference.registry)
                _ = try? await response.body.collect(upTo: 64 * 1024)
                continue
            }
            round += 1
            guard response.status == .unauthorized else { return response }
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let challenges = response.headers["WWW-Authenticate"].flatMap(AuthChallenge.parse)
            let credentials = try access.credentials(for: reference.registry)
            guard round == 1 else {
                let reason = authorization != nil && credentials != nil
                    ? "the credentials for it in \(access.credentialsFile ?? "") were refused" : missingCredentials
                throw ImagePullError.unauthorized(reference: reference, registry: reference.registry, reason: reason)
            }
            if let bearer = challenges.first(where: { $0.scheme == "bearer" }) {
                authorization = "Bearer " + (try await token(for: reference, challenge: bearer, scope: scope, credentials: credentials))
            } else if challenges.contains(where: { $0.scheme == "basic" }), let credentials {
                let header = Self.basic(credentials)
                state.withLock { $0.basic[reference.registry] = header }
                authorization = header
            } else {
                let reason = challenges.isEmpty ? "401 without a WWW-Authenticate challenge" : missingCredentials
                throw ImagePullError.unauthorized(reference: reference, registry: reference.registry, reason: reason)
            }
        }
        // Both rounds return or throw.
        throw ImagePullError.unauthorized(reference: reference, registry: reference.registry, reason: "authentication did not settle")
    }

    private func cachedAuthorization(registry: String, scope: String) -> String? {
        let now = ContinuousClock.now
        return state.withLock { state in
            if let token = state.tokens[registry + " " + scope], token.expires > now { return "Bearer " + token.token }
            return state.basic[registry]
        }
    }

    /// Why a registry that asks for credentials gets none.
    private var missingCredentials: String {
        "it requires credentials and "
            + (access.credentialsFile.map { "the credentials file \($0) has none for it" } ?? "no credentials file is configured")
    }

    static func basic(_ credentials: (user: String, password: String)) -> String {
        "Basic " + Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString()
    }

    /// A token from the challenge's realm (distribution's "Token Authentication Specification"),
    /// cached per registry and scope until shortly before it expires.
    private func token(
        for reference: ImageReference, challenge: AuthChallenge, scope defaultScope: String,
        credentials: (user: String, password: String)?
    ) async throws -> String {
        guard let realm = challenge.parameters["realm"], var components = URLComponents(string: realm),
              components.scheme == "https" || components.scheme == "http" else {
            throw ImagePullError.unauthorized(
                reference: reference, registry: reference.registry,
                reason: "bearer challenge without a usable realm: \(challenge.parameters)")
        }
        let scope = challenge.parameters["scope"] ?? defaultScope
        var query = components.queryItems ?? []
        if let service = challenge.parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: scope))
        components.queryItems = query
        var request = HTTPClientRequest(url: components.string ?? realm)
        if let credentials { request.headers.add(name: "Authorization", value: Self.basic(credentials)) }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await http.execute(request, deadline: .now() + .seconds(30))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw classify(error, reference)
        }
        if response.status.code >= 500 || response.status == .tooManyRequests {
            throw TransientFailure(reason: "token endpoint \(realm) answered \(response.status.code)", retryAfter: Self.retryAfter(response))
        }
        guard response.status == .ok else {
            let reason = response.status == .unauthorized || response.status == .forbidden
                ? (credentials == nil ? "the token endpoint \(realm) requires credentials and there are none for this registry"
                    : "the token endpoint \(realm) refused the credentials")
                : "the token endpoint \(realm) answered \(response.status.code)"
            throw ImagePullError.unauthorized(reference: reference, registry: reference.registry, reason: reason)
        }
        struct TokenResponse: Decodable { var token: String?; var access_token: String?; var expires_in: Int? }
        guard let decoded = try? JSONDecoder().decode(TokenResponse.self, from: Data(body.readableBytesView)),
              let token = decoded.token ?? decoded.access_token, !token.isEmpty else {
            throw ImagePullError.unauthorized(
                reference: reference, registry: reference.registry, reason: "the token endpoint \(realm) sent no token")
        }
        // 60 s when unsaid (the token spec's default); renewed 10 s early so it never expires in flight.
        let lifetime = Duration.seconds(max(decoded.expires_in ?? 60, 20) - 10)
        state.withLock { $0.tokens[reference.registry + " " + scope] = (token, ContinuousClock.now + lifetime) }
        return token
    }

    /// Throws for a status that is not 2xx: 5xx and 429 as transient (with Retry-After), 401/403
    /// as unauthorized, the rest as the registry's own error message (`unknown` for a 404 that
    /// has none: a HEAD's answer has no body).
    func check(_ response: HTTPClientResponse, _ reference: ImageReference, subject: String?, unknown: String) async throws {
        let code = Int(response.status.code)
        guard !(200..<300).contains(code) else { return }
        let body = (try? await response.body.collect(upTo: 1 << 20)).map { Array($0.readableBytesView) } ?? []
        let message = Self.errorMessage(body) ?? (code == 404 ? unknown : response.status.reasonPhrase.lowercased())
        if code >= 500 || code == 429 {
            throw TransientFailure(reason: "HTTP \(code): \(message)", retryAfter: Self.retryAfter(response))
        }
        if code == 401 || code == 403 {
            throw ImagePullError.unauthorized(reference: reference, registry: reference.registry, reason: message)
        }
        throw ImagePullError.registry(reference: reference, subject: subject, status: code, message: message)
    }

    /// What a 429's or 5xx's `Retry-After` asks for, in either of its forms.
    static func retryAfter(_ response: HTTPClientResponse) -> Duration? {
        response.headers.first(name: "Retry-After").flatMap { RetryAfter.delay($0) }
    }

    /// The messages of a distribution-spec error body: `{"errors": [{"code", "message"}]}`.
    static func errorMessage(_ body: [UInt8]) -> String? {
        struct Errors: Decodable {
            struct Entry: Decodable { var code: String?; var message: String? }
            var errors: [Entry]
        }
        guard let errors = try? JSONDecoder().decode(Errors.self, from: Data(body)), !errors.errors.isEmpty else { return nil }
        return errors.errors.map { $0.message ?? $0.code?.lowercased() ?? "error" }.joined(separator: "; ")
    }
}

extension String {
    var lowercasedFirst: String {
        guard let first else { return self }
        return first.lowercased() + dropFirst()
    }
}
