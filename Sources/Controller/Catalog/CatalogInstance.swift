import Manifest

/// Whether discovery sends traffic to an instance (Consul's check status, reduced to what a
/// node reports).
public enum CatalogHealth: String, Sendable, Hashable, Codable, CaseIterable {
    /// Ready: healthy, or running when the service has no health check. Answered by DNS and
    /// balanced to.
    case passing
    /// Running but failing its health check, or not passing its first one yet: listed only
    /// when a lookup asks for every instance.
    case critical
}

/// One instance as service discovery sees it: where it is reached, under which name and tags,
/// and whether it takes traffic.
public struct CatalogInstance: Sendable, Hashable {
    public var id: InstanceID
    /// The name it is registered under (`discovery.name`, else the service's name).
    public var name: String
    public var service: ServiceKey
    public var node: String
    /// The host of its node's address, where its ports are reached (published on the node in
    /// private network mode).
    public var address: String
    /// The advertised port (`discovery.port`, else the first), nil for a service without ports.
    public var port: AssignedPort?
    /// Every port, for SRV lookups by port name.
    public var ports: [AssignedPort]
    public var tags: [String]
    public var revision: UInt64
    public var weight: Int
    public var health: CatalogHealth
    /// The log index of the instance's last change.
    public var modifiedIndex: UInt64

    public init(
        id: InstanceID, name: String, service: ServiceKey, node: String, address: String, port: AssignedPort?, ports: [AssignedPort],
        tags: [String], revision: UInt64, weight: Int, health: CatalogHealth, modifiedIndex: UInt64
    ) {
        self.id = id
        self.name = name
        self.service = service
        self.node = node
        self.address = address
        self.port = port
        self.ports = ports
        self.tags = tags
        self.revision = revision
        self.weight = weight
        self.health = health
        self.modifiedIndex = modifiedIndex
    }
}
