import Manifest

/// One passing instance of the catalog, as the local proxy needs it: the agent hands the node's
/// `UpstreamDirectory` all of them at every catalog change.
public struct UpstreamEndpoint: Sendable, Hashable {
    /// The instance's id.
    public var id: String
    /// Its discovery name.
    public var service: String
    public var tags: [String]
    /// Its node's address.
    public var address: String
    /// Its port numbers by port name.
    public var ports: [String: Int]
    /// The name of the port it advertises, if any.
    public var advertisedPort: String?
    /// Its `discovery.weight`.
    public var weight: Int

    public init(id: String, service: String, tags: [String], address: String, ports: [String: Int], advertisedPort: String?, weight: Int) {
        self.id = id
        self.service = service
        self.tags = tags
        self.address = address
        self.ports = ports
        self.advertisedPort = advertisedPort
        self.weight = weight
    }

    /// Whether a connection for `upstream` may go here, and to which port.
    func port(for upstream: Upstream) -> Int? {
        guard service == upstream.service else { return nil }
        if let tag = upstream.tag, !tags.contains(tag) { return nil }
        guard let name = upstream.port ?? advertisedPort else { return nil }
        return ports[name]
    }
}
