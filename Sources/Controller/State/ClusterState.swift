import Manifest

/// The replicated state machine: applications with their revisions, nodes and instances,
/// changed only by applying committed ``ControllerCommand``s in log order.
///
/// Applying is deterministic: the same entries from the same state give the same state on
/// every replica (no clock, no randomness, dictionaries walked in sorted order where order
/// matters). A refused command changes nothing: each handler checks everything that can fail
/// before its first mutation — cheaper than applying to a copy, which would copy the whole
/// instance table on every entry.
public struct ClusterState: Sendable, Hashable {
    /// By application name.
    public internal(set) var applications: [String: ApplicationRecord] = [:]
    /// By node name.
    public internal(set) var nodes: [String: NodeRecord] = [:]
    /// Every instance the cluster still tracks: those wanted running, and those told to stop
    /// until their node confirms that they did. Changed only through ``setInstance(_:id:)``,
    /// which keeps ``instanceIDsByNode`` in step.
    public internal(set) var instances: [InstanceID: InstanceRecord] = [:]
    /// The ids in ``instances`` by node: what ``instances(on:)`` reads instead of walking
    /// every instance (each client's watch asks for its node's on every change; at 100,000
    /// instances the walk took 11 ms, times every client). Not in snapshots: rebuilt on restore.
    private(set) var instanceIDsByNode: [String: Set<InstanceID>] = [:]
    /// The log index of the last entry that changed anything: what blocking queries wait on
    /// (Consul's X-Consul-Index). Entries refused or without effect leave it alone.
    public internal(set) var lastChangeIndex: UInt64 = 0
    /// The server members, by Raft id.
    public internal(set) var members: [UInt64: MemberRecord] = [:]
    /// The highest member id ever recorded, removed members' included: ids are not given
    /// twice, so that a removed member's certificate (valid up to a day) never names an id
    /// another member holds by then.
    public internal(set) var highestMemberID: UInt64 = 0
    /// The ids of members removed (and not recorded again since): the transport refuses their
    /// connections, whose certificates stay valid up to a day after the removal.
    public internal(set) var removedMemberIDs: Set<UInt64> = []
    /// The join token servers admit joins with, once the bootstrap server recorded it.
    public internal(set) var joinToken: String?
    /// The key-value store.
    public internal(set) var kv = KVStore()
    /// The services that read each key (their manifests' `kv`): what a key-value write checks
    /// to know whom it rolls, without walking every application. Not in snapshots: rebuilt on
    /// restore, and per application when it is applied or deleted.
    private(set) var keyReaders: [KVKey: Set<ServiceKey>] = [:]
    /// Makes instance ids unique for the life of the cluster.
    var nextInstanceSerial: UInt64 = 1

    /// An empty cluster.
    public init() {}

    /// Applies one committed command. `index` is the entry's log index and `time` the time
    /// its proposer stamped on it (never the local clock).
    public mutating func apply(_ command: ControllerCommand, at index: UInt64, time: Timestamp) -> CommandResult {
        do throws(ControllerError) {
            switch command {
            case .applyApplication(let manifestJSON, let expectedRevision):
                return try applyApplication(manifestJSON, expectedRevision: expectedRevision, at: index, time: time)
            case .deleteApplication(let name, let expectedRevision):
                return try deleteApplication(name, expectedRevision: expectedRevision, at: index)
            case .scaleService(let key, let replicas, let expectedRevision):
                return try scaleService(key, replicas: replicas, expectedRevision: expectedRevision, at: index)
            case .restartService(let key):
                return try restartService(key, at: index, time: time)
            case .registerNode(let registration):
                return try registerNode(registration, at: index, time: time)
            case .nodeHeartbeat(let name):
                return try heartbeat(name, at: index, time: time)
            case .markNodeDown(let name, let lastHeartbeatSeen):
                return try markNodeDown(name, lastHeartbeatSeen: lastHeartbeatSeen, at: index, time: time)
            case .setNodeDraining(let name, let draining, let deadline):
                return try setDraining(name, draining, deadline: deadline, at: index)
            case .setNodeEligibility(let name, let eligible):
                return try setEligibility(name, eligible, at: index)
            case .commitPlan(let plan):
                return commitPlan(plan, at: index, time: time)
            case .reportInstanceStatus(let node, let reports):
                return try recordStatus(from: node, reports, at: index, time: time)
            case .addMember(let id, let name, let address, let role, let expecting):
                return try addMember(id: id, name: name, address: address, role: role, expecting: expecting, at: index)
            case .removeMember(let id):
                return try removeMember(id: id, at: index)
            case .setJoinToken(let token):
                return setJoinToken(token, at: index)
            case .kvTransaction(let transaction):
                return try applyKVTransaction(transaction, at: index, time: time)
            case .controlRollout(let name, let action):
                return try controlRollout(name, action, at: index, time: time)
            }
        } catch {
            return .rejected(error)
        }
    }

    /// Applies a committed Raft entry's data (see ``ControllerEntry``).
    public mutating func apply(entry data: [UInt8], at index: UInt64) -> CommandResult {
        do throws(ControllerError) {
            let entry = try ControllerEntry.decode(data)
            return apply(entry.command, at: index, time: entry.time)
        } catch {
            return .rejected(error)
        }
    }

    // MARK: Queries

    /// The instances of one service, by slot and then by age.
    public func instances(of service: ServiceKey) -> [InstanceRecord] {
        instances.values.filter { $0.service == service }.sorted(by: Self.bySlotThenAge)
    }

    /// The instances placed on a node, by id.
    public func instances(on node: String) -> [InstanceRecord] {
        (instanceIDsByNode[node] ?? []).sorted().compactMap { instances[$0] }
    }

    /// The manifest of the service an instance belongs to, at the instance's revision: what
    /// its node runs. Nil once the revision has been pruned (never while the instance exists).
    public func manifest(of instance: InstanceRecord) -> Service? {
        guard let record = applications[instance.service.application] else { return nil }
        if instance.revision == record.currentRevision { return record.service(named: instance.service.service) }
        guard let revision = record.revision(instance.revision),
            let application = try? ManifestDecoder.decode(Array(revision.manifestJSON.utf8))
        else { return nil }
        return application.service(named: instance.service.service)
    }

    /// Whether the node an instance is on is gone or down, or the instance was lost with it:
    /// nothing will report on it, so it needs replacing.
    public func isLost(_ instance: InstanceRecord) -> Bool {
        guard let node = nodes[instance.node] else { return true }
        return node.isDown || instance.status == .lost
    }

    /// Since when a lost instance is lost: when it was marked lost, else when its node went
    /// down (a report that came in before the node was marked up again clears the mark, not
    /// the doubt); nil when its node is gone: then there is no grace to wait out.
    public func lostSince(_ instance: InstanceRecord) -> Timestamp? {
        guard let node = nodes[instance.node] else { return nil }
        if instance.status == .lost, let marked = instance.events.last(where: { $0.status == .lost })?.time { return marked }
        return node.isDown ? node.downSince : nil
    }

    /// Whether an instance is what its service wants now: the current revision, created after
    /// the last restart, on a node that is ready (not draining).
    public func isCurrent(_ instance: InstanceRecord) -> Bool {
        guard let application = applications[instance.service.application],
            let service = application.services[instance.service.service], isOnKeepingNode(instance)
        else { return false }
        return instance.revision == application.currentRevision && instance.createdIndex >= service.replaceBefore
    }

    /// Whether the instance's node keeps what runs there: ready, or ineligible for new
    /// instances; not draining, down or gone.
    public func isOnKeepingNode(_ instance: InstanceRecord) -> Bool {
        guard let status = nodes[instance.node]?.status else { return false }
        return status == .ready || status == .ineligible
    }

    static func bySlotThenAge(_ a: InstanceRecord, _ b: InstanceRecord) -> Bool {
        (a.index, a.createdIndex, a.id) < (b.index, b.createdIndex, b.id)
    }

    // MARK: Shared mutations

    /// Sets or (with nil) removes one instance, and its entry in the by-node index.
    mutating func setInstance(_ instance: InstanceRecord?, id: InstanceID) {
        if let old = instances[id], old.node != instance?.node {
            instanceIDsByNode[old.node]?.remove(id)
            if instanceIDsByNode[old.node]?.isEmpty == true { instanceIDsByNode[old.node] = nil }
        }
        if let instance { instanceIDsByNode[instance.node, default: []].insert(id) }
        instances[id] = instance
    }

    /// Records which keys the services of application `name` read now (none once it is gone).
    mutating func indexKeyReaders(of name: String) {
        for (key, readers) in keyReaders where readers.contains(where: { $0.application == name }) {
            let others = readers.filter { $0.application != name }
            keyReaders[key] = others.isEmpty ? nil : others
        }
        guard let record = applications[name] else { return }
        for service in record.application.services {
            for binding in service.kv {
                guard let key = try? KVKey(validating: binding.key) else { continue }
                keyReaders[key, default: []].insert(ServiceKey(name, service.name))
            }
        }
    }

    /// Rebuilds the by-node index from ``instances`` (after a restore).
    mutating func indexInstances() {
        instanceIDsByNode = [:]
        for (id, instance) in instances { instanceIDsByNode[instance.node, default: []].insert(id) }
    }

    /// Asks an instance to stop; forgets it at once when nothing will ever report on it.
    /// Returns whether it was running before.
    @discardableResult
    mutating func stop(_ id: InstanceID, reason: String, at index: UInt64) -> Bool {
        guard var instance = instances[id], instance.desiredState == .run else { return false }
        // Only an instance that could be passing needs its manifest, which for an older
        // revision (every instance a rollout replaces) is decoded from the log's JSON.
        if Catalog.mayPass(instance, in: self), let service = manifest(of: instance),
            Catalog.health(of: instance, service: service, in: self) == .passing, service.discovery.drainDelay > .zero
        {
            instance.drainDelay = service.discovery.drainDelay
        }
        instance.desiredState = .stop
        instance.stopReason = reason
        instance.modifiedIndex = index
        setInstance(instance, id: id)
        forgetIfSettled(id)
        return true
    }

    /// Drops an instance told to stop once it is known gone: it exited, or its node is down
    /// (its worker will kill it on return, as it runs only what the state lists), or it was
    /// never started on a node that is down.
    mutating func forgetIfSettled(_ id: InstanceID) {
        guard let instance = instances[id], instance.desiredState == .stop else { return }
        if instance.status.isTerminal || nodes[instance.node].map(\.isDown) ?? true {
            setInstance(nil, id: id)
        }
    }
}
