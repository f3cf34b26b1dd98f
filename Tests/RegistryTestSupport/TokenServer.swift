import Crypto
import Foundation
import Hummingbird
import Synchronization
import TestSupport

/// A token endpoint of distribution's "Token Authentication Specification", as Docker Hub,
/// GHCR and Harbor run one beside their registries: `GET /token?service=…&scope=…` with Basic
/// credentials answers a JWT (ES256, its certificate in `x5c`) granting the scopes asked for,
/// which the registry checks against `certificate` (its `auth.token.rootcertbundle`).
public final class TokenServer: Sendable {
    public let port: Int
    /// The PEM certificate whose key signs the tokens.
    public let certificate: String
    public let service = "flotilla-test-registry"
    public let issuer = "flotilla-test-token-issuer"
    public let user: String
    public let password: String
    private let key: P256.Signing.PrivateKey
    private let certificateDER: Data
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)
    private let issued = Mutex<[String]>([])
    private let refusals = Mutex<[(status: Int, retryAfter: String)]>([])
    private let requestTimes = Mutex<[ContinuousClock.Instant]>([])

    /// `http://127.0.0.1:<port>/token`, the registry's `realm`.
    public var realm: String { "http://127.0.0.1:\(port)/token" }

    /// The scopes of every token asked for over HTTP, in order (one entry per request).
    public var issuedScopes: [String] { issued.withLock { $0 } }

    /// When each token request came, refused or not, in order.
    public var tokenRequestTimes: [ContinuousClock.Instant] { requestTimes.withLock { $0 } }

    /// The next token request is answered `status` with `Retry-After: retryAfter`, as a rate
    /// limit or an outage would (queued: each call refuses one more).
    public func refuseNext(status: Int, retryAfter: String) {
        refusals.withLock { $0.append((status, retryAfter)) }
    }

    /// Makes a P-256 key and its self-signed certificate in `directory` and starts serving.
    public init(directory: String, user: String, password: String) async throws {
        self.user = user
        self.password = password
        certificate = directory + "/token.pem"
        try runTool("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", directory + "/token.key",
            "-out", certificate, "-days", "1", "-subj", "/CN=flotilla test token issuer",
        ])
        key = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: directory + "/token.key", encoding: .utf8))
        let pem = try String(contentsOfFile: certificate, encoding: .utf8)
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard let der = Data(base64Encoded: body) else { throw RegistryTestFailure("cannot read \(certificate)") }
        certificateDER = der
        port = try freeLoopbackPort()

        let router = Router()
        router.get("token") { [self] request, _ -> Response in
            self.requestTimes.withLock { $0.append(.now) }
            if let refusal = self.refusals.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                return Response(status: .init(code: refusal.status), headers: [.retryAfter: refusal.retryAfter],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#)))
            }
            let expected = "Basic " + Data("\(self.user):\(self.password)".utf8).base64EncodedString()
            guard request.headers[.authorization] == expected else {
                return Response(status: .unauthorized, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#)))
            }
            let scopes = request.uri.queryParameters.getAll("scope")
            self.issued.withLock { $0.append(scopes.joined(separator: " ")) }
            let token = try self.token(scopes: scopes, subject: self.user)
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: #"{"token":"\#(token)","expires_in":300}"#)))
        }
        let running = try await serveOnLoopback(router, port: port, name: "token server")
        task.withLock { $0 = running }
    }

    public func stop() {
        task.withLock { $0?.cancel() }
    }

    /// A token granting each `repository:NAME:ACTIONS` scope asked for.
    public func token(scopes: [String], subject: String) throws -> String {
        let access: [[String: Any]] = scopes.compactMap { scope in
            let parts = scope.split(separator: ":").map(String.init)
            guard parts.count == 3 else { return nil }
            return ["type": parts[0], "name": parts[1], "actions": parts[2].split(separator: ",").map(String.init)]
        }
        let now = Int(Date().timeIntervalSince1970)
        let header: [String: Any] = ["typ": "JWT", "alg": "ES256", "x5c": [certificateDER.base64EncodedString()]]
        let claims: [String: Any] = [
            "iss": issuer, "sub": subject, "aud": service, "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": UUID().uuidString, "access": access,
        ]
        let signingInput = try Self.base64URL(JSONSerialization.data(withJSONObject: header)) + "."
            + Self.base64URL(JSONSerialization.data(withJSONObject: claims))
        let signature = try key.signature(for: Data(signingInput.utf8))
        // JWS ES256 is r and s, 32 bytes each: the raw form, not DER.
        return signingInput + "." + Self.base64URL(signature.rawRepresentation)
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
