import Foundation
import Glibc

/// How this node reaches registries: node-local settings, never in the manifest (a credential
/// in a manifest would be in the Raft log and on every node).
public struct RegistryAccess: Sendable {
    /// An extra PEM CA file trusted beside the system's CAs.
    public var caFile: String?
    /// A JSON file shaped like Docker's `config.json`: `{"auths": {"reg:5000": {"auth":
    /// base64("user:pass")}}}`, or `{"username": …, "password": …}` in place of `auth`.
    public var credentialsFile: String?
    /// This node's architecture in OCI terms (`amd64`, `arm64`, …).
    public var architecture: String
    /// This node's OS in OCI terms.
    public var os: String = "linux"
    /// Registries (`host:port` as images name them) that may be reached over plain HTTP when
    /// they do not speak TLS, as Docker's `insecure-registries`: a developer's `registry:2`.
    public var plainHTTPRegistries: [String] = []
    /// Whether a registry on this machine (`localhost`, 127.0.0.0/8, `::1`) may be reached over
    /// plain HTTP without being listed, as Docker allows: its traffic never leaves the host.
    public var plainHTTPOnLoopback = true

    /// Settings for this machine's architecture.
    public init(caFile: String? = nil, credentialsFile: String? = nil, architecture: String = RegistryAccess.hostArchitecture, os: String = "linux") {
        self.caFile = caFile
        self.credentialsFile = credentialsFile
        self.architecture = architecture
        self.os = os
    }

    /// Whether `registry` may be asked over plain HTTP once it turns out not to speak TLS
    /// (TLS is always tried first).
    func mayUsePlainHTTP(_ registry: String) -> Bool {
        plainHTTPRegistries.contains(registry) || (plainHTTPOnLoopback && Self.isLoopback(registry))
    }

    /// `localhost`, an address in 127.0.0.0/8 or `[::1]`, with or without a port.
    static func isLoopback(_ registry: String) -> Bool {
        var host = Substring(registry)
        if host.hasPrefix("[") {
            host = host.dropFirst().prefix(while: { $0 != "]" })
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        if host == "localhost" || host == "::1" { return true }
        var address = in_addr()
        return inet_pton(AF_INET, String(host), &address) == 1 && UInt32(bigEndian: address.s_addr) >> 24 == 127
    }

    /// `uname -m` in the names the OCI image spec takes from Go's GOARCH.
    public static var hostArchitecture: String {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        switch machine {
        case "x86_64": return "amd64"
        case "aarch64", "arm64": return "arm64"
        case "i386", "i686": return "386"
        case "armv7l", "armv6l": return "arm"
        case "ppc64le": return "ppc64le"
        case "s390x": return "s390x"
        case "riscv64": return "riscv64"
        default: return machine
        }
    }

    /// `user:password` for `registry` from the credentials file; nil when there is no file or no
    /// entry. Docker Hub's entry may be under its old URL.
    func credentials(for registry: String) throws(ImagePullError) -> (user: String, password: String)? {
        guard let file = credentialsFile else { return nil }
        struct Entry: Decodable { var auth: String?; var username: String?; var password: String? }
        struct File: Decodable { var auths: [String: Entry]? }
        let parsed: File
        do {
            parsed = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        } catch let error as DecodingError {
            throw .credentials(file: file, reason: "not JSON with an \"auths\" object (\(error))")
        } catch {
            throw .credentials(file: file, reason: "\(error.localizedDescription)")
        }
        var keys = [registry, "https://" + registry, "http://" + registry]
        if registry == "docker.io" { keys += ["https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"] }
        guard let entry = keys.lazy.compactMap({ parsed.auths?[$0] }).first else { return nil }
        if let user = entry.username, let password = entry.password { return (user, password) }
        guard let auth = entry.auth, let decoded = Data(base64Encoded: auth),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else {
            throw .credentials(file: file, reason: "entry \"\(registry)\" has neither \"auth\" as base64(user:password) nor \"username\" and \"password\"")
        }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}
