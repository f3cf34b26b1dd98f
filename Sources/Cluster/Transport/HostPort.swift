/// `host:port` as agents write addresses (`10.0.0.1:4647`, `[fd00::1]:4647`, `node-a:4647`):
/// the one parser for flags, the member list and certificates' addresses.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Nil unless `text` is a non-empty host, a colon and a port in 0...65535; brackets around
    /// an IPv6 host are taken off.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The host when it is an IP address: what a node certificate names (a DNS name that
    /// resolves only somewhere would not help a peer).
    public var ipAddress: String? { (try? IPAddressBytes.parse(host)) != nil ? host : nil }
}
