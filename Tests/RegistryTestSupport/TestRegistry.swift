import AsyncHTTPClient
import Foundation
import Glibc
import Images
import NIOCore
import NIOHTTP1
import NIOSSL
import TestSupport

/// Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 with TLS from a test CA, storage
/// and its access log in a temp dir, optionally behind htpasswd; and a client of its push API
/// (distribution-spec "Push": monolithic blob uploads, manifests by tag or digest) to put the
/// tests' images there. For the pull tests and later agent-level tests.
public final class TestRegistry: @unchecked Sendable {
    // @unchecked: `process` and `plainHTTP` are replaced only by `kill`, `start` and `serve`, called
    // from one test task.
    /// The temp dir: `ca.pem`, `server.pem`, `config.yml`, `storage/`, `registry.log`.
    public let directory: String
    public let port: Int
    /// htpasswd user and password when the registry requires them.
    public let credentials: (user: String, password: String)?
    private var process: Process?
    private let http: HTTPClient
    /// With token authentication: the token endpoint the registry sends clients to.
    public private(set) var tokenServer: TokenServer?

    /// `127.0.0.1:<port>`.
    public var host: String { "127.0.0.1:\(port)" }
    /// Whether it serves plain HTTP (a developer's local registry) rather than TLS.
    public private(set) var plainHTTP: Bool
    private let htpasswd: Bool
    /// `https`, or `http` for a plain registry.
    public var scheme: String { plainHTTP ? "http" : "https" }
    /// The test CA, for `RegistryAccess.caFile`.
    public var caFile: String { directory + "/ca.pem" }
    public var logFile: String { directory + "/registry.log" }
    public var storage: String { directory + "/storage" }

    /// A bcrypt hash (cost 4, made with Python's crypt) of "s3cret": docker-registry's htpasswd
    /// takes only bcrypt, and Debian has no htpasswd tool without apache2-utils.
    public static let passwordHash = "$2b$04$rk1/10ROwYJCCZS8sJw6RevWHbAm5gwzbpSoOoEdc5zDmeSVRg5TW"

    /// Makes the CA and the server certificate, writes the config and starts the registry.
    /// With `htpasswd` the registry asks for Basic credentials; with `tokenAuth` it sends
    /// clients to a `TokenServer` for bearer tokens, which want the same credentials. With
    /// `plainHTTP` it serves plain HTTP, as `registry:2` does unless given a certificate.
    public init(htpasswd: Bool = false, tokenAuth: Bool = false, plainHTTP: Bool = false) async throws {
        self.plainHTTP = plainHTTP
        self.htpasswd = htpasswd
        directory = "/tmp/flotilla-pull-test-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        try FileManager.default.createDirectory(atPath: directory + "/storage", withIntermediateDirectories: true)
        port = try freeLoopbackPort()
        credentials = htpasswd || tokenAuth ? ("tester", "s3cret") : nil
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.additionalTrustRoots = [.file(directory + "/ca.pem")]
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        do {
            try makeCertificates()
            if htpasswd {
                try "tester:\(Self.passwordHash)\n".write(toFile: directory + "/htpasswd", atomically: true, encoding: .utf8)
            }
            if tokenAuth {
                tokenServer = try await TokenServer(directory: directory, user: "tester", password: "s3cret")
            }
            try writeConfig()
            try await start()
        } catch {
            await stop()
            throw error
        }
    }

    /// config.yml for the registry as it is now configured.
    private func writeConfig() throws {
        var config = """
            version: 0.1
            log:
              level: info
              accesslog:
                disabled: false
            storage:
              filesystem:
                rootdirectory: \(directory)/storage
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)

            """
        if !plainHTTP {
            config += """
                  tls:
                    certificate: \(directory)/server.pem
                    key: \(directory)/server.key

                """
        }
        if htpasswd {
            config += """
                auth:
                  htpasswd:
                    realm: flotilla-test
                    path: \(directory)/htpasswd

                """
        }
        if let tokens = tokenServer {
            config += """
                auth:
                  token:
                    realm: \(tokens.realm)
                    service: \(tokens.service)
                    issuer: \(tokens.issuer)
                    rootcertbundle: \(tokens.certificate)

                """
        }
        try config.write(toFile: directory + "/config.yml", atomically: true, encoding: .utf8)
    }

    /// Serves the same storage on the same port again, over TLS or in plain HTTP: a developer's
    /// registry that gains a certificate, or loses it.
    public func serve(plainHTTP: Bool) async throws {
        kill()
        self.plainHTTP = plainHTTP
        try writeConfig()
        try await start()
    }

    /// Kills the registry and removes its directory; safe to call twice.
    public func stop() async {
        kill()
        tokenServer?.stop()
        try? await http.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// SIGKILLs the registry (a registry dying mid-pull) and reaps it.
    public func kill() {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Starts the registry (again, on the same port and storage) and waits until it accepts connections.
    public func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        process.arguments = ["serve", directory + "/config.yml"]
        if !FileManager.default.fileExists(atPath: logFile) { _ = FileManager.default.createFile(atPath: logFile, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try? log.close()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            if loopbackAccepts(port: port) { return }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RegistryTestFailure("docker-registry did not listen on \(host): \(log: (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "")")
    }

    /// How many requests the access log shows with `method path` (e.g. `GET /v2/web/blobs/sha256:…`).
    /// A request killed mid-response is not logged (the line is written when it completes).
    public func requestCount(_ method: String, _ path: String) -> Int {
        requests(method, path).count
    }

    /// The access log's lines (combined format: `… "GET /v2/… HTTP/1.1" 206 …`) for `method path`.
    public func requests(_ method: String, _ path: String) -> [String] {
        let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
        return log.split(separator: "\n").filter { $0.contains("\"\(method) \(path) HTTP/") }.map(String.init)
    }

    /// Where the registry's filesystem driver keeps a blob's bytes.
    public func blobDataPath(_ digest: Digest) -> String {
        "\(storage)/docker/registry/v2/blobs/sha256/\(digest.hex.prefix(2))/\(digest.hex)/data"
    }

    // MARK: Pushing

    /// Uploads a blob in one request (POST an upload, PUT its content with `?digest=`).
    public func pushBlob(_ repository: String, _ bytes: [UInt8]) async throws -> Digest {
        let digest = Digest.of(bytes)
        var start = HTTPClientRequest(url: "\(scheme)://\(host)/v2/\(repository)/blobs/uploads/")
        start.method = .POST
        let started = try await execute(start)
        guard started.status == .accepted, let location = started.headers.first(name: "Location") else {
            throw RegistryTestFailure("POST blob upload to \(repository): \(started.status)")
        }
        let url = location.hasPrefix("/") ? "\(scheme)://\(host)\(location)" : location
        var put = HTTPClientRequest(url: url + (url.contains("?") ? "&" : "?") + "digest=\(digest)")
        put.method = .PUT
        put.headers.add(name: "Content-Type", value: "application/octet-stream")
        put.body = .bytes(ByteBuffer(bytes: bytes))
        let finished = try await execute(put)
        guard finished.status == .created else { throw RegistryTestFailure("PUT blob \(digest) to \(repository): \(finished.status)") }
        return digest
    }

    /// Puts a manifest or index under `reference` (a tag or its digest); returns its digest.
    @discardableResult
    public func pushManifest(_ repository: String, _ reference: String, _ bytes: [UInt8], mediaType: String) async throws -> Digest {
        var put = HTTPClientRequest(url: "\(scheme)://\(host)/v2/\(repository)/manifests/\(reference)")
        put.method = .PUT
        put.headers.add(name: "Content-Type", value: mediaType)
        put.body = .bytes(ByteBuffer(bytes: bytes))
        let response = try await execute(put)
        guard response.status == .created else {
            let body = try await response.body.collect(upTo: 1 << 20)
            throw RegistryTestFailure("PUT manifest \(repository):\(reference): \(response.status) \(String(buffer: body))")
        }
        return Digest.of(bytes)
    }

    /// Pushes an image's layers, config and manifest, the manifest under `tag` (or only by digest).
    @discardableResult
    public func push(_ image: TestImage, to repository: String, tag: String?) async throws -> Digest {
        for layer in image.layers { _ = try await pushBlob(repository, layer) }
        _ = try await pushBlob(repository, image.config)
        return try await pushManifest(repository, tag ?? image.manifestDigest.description, image.manifest, mediaType: image.manifestMediaType)
    }

    private func execute(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        var request = request
        if let tokenServer {
            // The test pushes with a token it makes itself, for the repository in the URL.
            let path = request.url.components(separatedBy: "/v2/").last ?? ""
            let repository = path.components(separatedBy: "/blobs/").first?.components(separatedBy: "/manifests/").first ?? path
            request.headers.add(name: "Authorization", value: "Bearer " + (try tokenServer.token(scopes: ["repository:\(repository):pull,push"], subject: "tester")))
        } else if let credentials {
            request.headers.add(
                name: "Authorization", value: "Basic " + Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString())
        }
        let response = try await http.execute(request, timeout: .seconds(60))
        return response
    }

    /// A configuration for a second registry process serving this one's storage on
    /// `address:port`, with a certificate for that address from the same CA: a registry on
    /// another host (a network namespace) with the images pushed here. Returns its path.
    public func configuration(serving address: String, port: Int) throws -> String {
        let name = "serve-\(address)-\(port)"
        let d = directory
        try issueServerCertificate(for: address, name: name)
        let config = """
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: \(d)/storage
            http:
              addr: \(address):\(port)
              tls:
                certificate: \(d)/\(name).pem
                key: \(d)/\(name).key

            """
        try config.write(toFile: "\(d)/\(name).yml", atomically: true, encoding: .utf8)
        return "\(d)/\(name).yml"
    }

    // MARK: Set-up

    /// A CA and a server certificate for 127.0.0.1 signed by it (P-256, one day).
    private func makeCertificates() throws {
        let d = directory
        try runTool("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(d)/ca.key",
            "-out", "\(d)/ca.pem", "-days", "1", "-subj", "/CN=flotilla pull test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        try issueServerCertificate(for: "127.0.0.1", name: "server")
    }

    /// `<name>.key` and `<name>.pem`: a server certificate for the IP `address`, from the CA.
    private func issueServerCertificate(for address: String, name: String) throws {
        let d = directory
        try "subjectAltName=IP:\(address)\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(toFile: "\(d)/\(name).ext", atomically: true, encoding: .utf8)
        try runTool("/usr/bin/openssl", [
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(d)/\(name).key",
            "-out", "\(d)/\(name).csr", "-subj", "/CN=\(address)",
        ])
        try runTool("/usr/bin/openssl", [
            "x509", "-req", "-in", "\(d)/\(name).csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key", "-CAcreateserial",
            "-out", "\(d)/\(name).pem", "-days", "1", "-extfile", "\(d)/\(name).ext",
        ])
    }
}

/// Runs a registry for the body, stopped however the body ends.
public func withRegistry(
    htpasswd: Bool = false, tokenAuth: Bool = false, plainHTTP: Bool = false, _ body: (TestRegistry) async throws -> Void
) async throws {
    let registry = try await TestRegistry(htpasswd: htpasswd, tokenAuth: tokenAuth, plainHTTP: plainHTTP)
    do {
        try await body(registry)
    } catch {
        await registry.stop()
        throw error
    }
    await registry.stop()
}

/// Runs a program to completion; throws with its stderr if it fails; returns its stdout.
@discardableResult
public func runTool(_ program: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // stderr is small (a tool's message); stdout is read whole first.
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw RegistryTestFailure("\(program) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(message)")
    }
    return String(decoding: out, as: UTF8.self)
}

public struct RegistryTestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension DefaultStringInterpolation {
    /// The last lines of a log, for a failure message.
    public mutating func appendInterpolation(log: String) {
        appendInterpolation(log.split(separator: "\n").suffix(10).joined(separator: "\n"))
    }
}
