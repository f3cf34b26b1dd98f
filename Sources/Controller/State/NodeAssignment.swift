#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Manifest

/// What one node needs from the replicated state to run its share of the work: its
/// instances, the manifests they run, and where the servers are. A client agent follows the
/// servers through a stream of these (Nomad's `Node.GetClientAllocs`), keeps the last one on
/// disk, and runs from it while no server answers.
public struct NodeAssignment: Sendable, Hashable, Codable {
    /// One application manifest at one revision, as the state keeps it (compact JSON).
    public struct Manifest: Sendable, Hashable, Codable {
        public var application: String
        public var revision: UInt64
        public var json: String
    }

    public var node: String
    /// The state's change index it was taken at.
    public var index: UInt64
    /// Whether the node is registered (a client that is not re-registers).
    public var nodeRegistered: Bool
    /// The node's instances, by id.
    public var instances: [InstanceRecord]
    /// The manifests the instances that should run belong to, by application then revision.
    public var manifests: [Manifest]
    /// The Raft members, by id: where a client reaches the cluster next time.
    public var servers: [MemberRecord]
    /// The values of the keys the instances' services bind (their manifests' `kv`), base64,
    /// by key; absent keys are left out. Nil in assignments from before key bindings.
    public var keyValues: [String: String]?

    public init(
        node: String, index: UInt64, nodeRegistered: Bool, instances: [InstanceRecord], manifests: [Manifest], servers: [MemberRecord],
        keyValues: [String: String]? = nil
    ) {
        self.node = node
        self.index = index
        self.nodeRegistered = nodeRegistered
        self.instances = instances
        self.manifests = manifests
        self.servers = servers
        self.keyValues = keyValues
    }

    /// ``keyValues`` as bytes.
    public var boundValues: [String: [UInt8]] {
        (keyValues ?? [:]).compactMapValues { Data(base64Encoded: $0).map(Array.init) }
    }

    /// The service each instance that should run runs, decoded from its manifest. An instance
    /// whose manifest is missing or does not decode is left out (the node cannot run it).
    public func services() -> [InstanceID: Service] {
        var applications: [String: Application] = [:]
        for manifest in manifests {
            applications["\(manifest.application)@\(manifest.revision)"] = try? ManifestDecoder.decode(Array(manifest.json.utf8))
        }
        var services: [InstanceID: Service] = [:]
        for instance in instances where instance.desiredState == .run {
            let key = "\(instance.service.application)@\(instance.revision)"
            services[instance.id] = applications[key]?.service(named: instance.service.service)
        }
        return services
    }
}

extension ClusterState {
    /// The assignment of node `name` now.
    public func assignment(for name: String) -> NodeAssignment {
        let mine = instances(on: name)
        var manifests: [NodeAssignment.Manifest] = []
        let needed = Set(mine.filter { $0.desiredState == .run }.map { ServiceRevision(application: $0.service.application, revision: $0.revision) })
        for key in needed.sorted(by: { ($0.application, $0.revision) < ($1.application, $1.revision) }) {
            guard let json = applications[key.application]?.revision(key.revision)?.manifestJSON else { continue }
            manifests.append(NodeAssignment.Manifest(application: key.application, revision: key.revision, json: json))
        }
        let values = boundValues(of: mine.filter { $0.desiredState == .run }.compactMap(manifest(of:)))
        return NodeAssignment(
            node: name, index: lastChangeIndex, nodeRegistered: nodes[name] != nil, instances: mine, manifests: manifests, servers: servers,
            keyValues: values.isEmpty ? nil : values.mapValues { Data($0).base64EncodedString() })
    }
}

private struct ServiceRevision: Hashable {
    var application: String
    var revision: UInt64
}
