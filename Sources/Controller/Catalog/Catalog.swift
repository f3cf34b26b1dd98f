import Manifest

/// What service discovery answers, derived from one committed state: every agent builds it
/// from its own replica, so lookups need no network hop and agree once replicas agree.
///
/// An instance is in the catalog while it is wanted running, its service has discovery
/// enabled, its node is up, and it runs (`running`, `healthy` or `unhealthy`); it is
/// `passing` once ready. So it is deregistered in the same entry that tells it to stop (before
/// its node acts on that entry), that marks its node down, or that reports it unhealthy.
public struct Catalog: Sendable, Hashable {
    /// Sorted by name, then instance id.
    public private(set) var instances: [CatalogInstance]
    /// The nodes that are up, by name: what `NODE.node.<domain>` answers and SRV targets name.
    public private(set) var nodes: [String: String]
    /// The state's `lastChangeIndex` it was built from.
    public private(set) var index: UInt64

    public init(instances: [CatalogInstance] = [], nodes: [String: String] = [:], index: UInt64 = 0) {
        self.instances = instances.sorted { ($0.name, $0.id) < ($1.name, $1.id) }
        self.nodes = nodes
        self.index = index
    }

    /// The catalog of `state`.
    public init(_ state: ClusterState) {
        var nodes: [String: String] = [:]
        for (name, node) in state.nodes where !node.isDown {
            nodes[name] = NodeAddress.host(of: node.registration.address)
        }
        // Instances mid-rollout may run an older revision, whose manifest is decoded once here.
        var olderRevisions: [ServiceKey: [UInt64: Service?]] = [:]
        var instances: [CatalogInstance] = []
        for instance in state.instances.values where instance.desiredState == .run {
            guard let address = nodes[instance.node], Self.runs(instance) else { continue }
            let service: Service?
            if let record = state.applications[instance.service.application], record.currentRevision == instance.revision {
                service = record.service(named: instance.service.service)
            } else if let known = olderRevisions[instance.service]?[instance.revision] {
                service = known
            } else {
                service = state.manifest(of: instance)
                olderRevisions[instance.service, default: [:]][instance.revision] = .some(service)
            }
            guard let service, let health = Self.health(of: instance, service: service, in: state) else { continue }
            let advertised = service.discoveryPort.flatMap { port in instance.ports.first { $0.name == port.name } }
            instances.append(
                CatalogInstance(
                    id: instance.id, name: service.discoveryName, service: instance.service, node: instance.node, address: address,
                    port: advertised, ports: instance.ports, tags: service.discovery.tags, revision: instance.revision,
                    weight: service.discovery.weight,
                    health: health,
                    modifiedIndex: instance.modifiedIndex))
        }
        self.init(instances: instances, nodes: nodes, index: state.lastChangeIndex)
    }

    /// How an instance wanted running shows in the catalog; nil when it is not in it.
    static func health(of instance: InstanceRecord, service: Service, in state: ClusterState) -> CatalogHealth? {
        guard service.discovery.enabled, runs(instance), let node = state.nodes[instance.node], !node.isDown else { return nil }
        guard !instance.awaitsMinHealthyTime else { return .critical }
        return instance.status == .healthy || (instance.status == .running && service.health == nil) ? .passing : .critical
    }

    /// What can be told without the manifest: it runs ready or healthy (not `unhealthy`) on a
    /// node that is up.
    static func mayPass(_ instance: InstanceRecord, in state: ClusterState) -> Bool {
        (instance.status == .running || instance.status == .healthy) && !instance.awaitsMinHealthyTime
            && state.nodes[instance.node].map { !$0.isDown } == true
    }

    /// Whether its process runs, as its node last said (not lost with its node).
    private static func runs(_ instance: InstanceRecord) -> Bool {
        switch instance.status {
        case .running, .healthy, .unhealthy: true
        case .pending, .starting, .completed, .failed, .stopped, .lost: false
        }
    }

    /// The instances registered under `name`, optionally only those with `tag` or on `node`;
    /// only passing ones unless `passingOnly` is false.
    public func instances(named name: String, tag: String? = nil, node: String? = nil, passingOnly: Bool = true) -> [CatalogInstance] {
        instances.filter { instance in
            instance.name == name && (!passingOnly || instance.health == .passing) && (tag.map(instance.tags.contains) ?? true)
                && (node.map { instance.node == $0 } ?? true)
        }
    }

    /// Every registered name with the union of its tags and its instance counts.
    public var services: [CatalogService] {
        var byName: [String: CatalogService] = [:]
        for instance in instances {
            var entry = byName[instance.name] ?? CatalogService(name: instance.name, tags: [], instances: 0, passing: 0)
            for tag in instance.tags where !entry.tags.contains(tag) { entry.tags.append(tag) }
            entry.instances += 1
            if instance.health == .passing { entry.passing += 1 }
            byName[instance.name] = entry
        }
        return byName.values.sorted { $0.name < $1.name }.map { entry in
            var sorted = entry
            sorted.tags.sort()
            return sorted
        }
    }
}

/// A registered name in the catalog's summary.
public struct CatalogService: Sendable, Hashable {
    public var name: String
    /// Every tag any of its instances has, sorted.
    public var tags: [String]
    public var instances: Int
    public var passing: Int
}

/// The host part of a node's `host:port` address.
enum NodeAddress {
    /// `10.0.0.1:4647` → `10.0.0.1`, `[fd00::1]:4647` → `fd00::1`; an address without a port
    /// stays as it is.
    static func host(of address: String) -> String {
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            return String(address[address.index(after: address.startIndex)..<close])
        }
        guard let colon = address.lastIndex(of: ":"), address.firstIndex(of: ":") == colon else { return address }
        return String(address[..<colon])
    }
}
