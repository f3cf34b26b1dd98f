import Manifest

extension ClusterState {
    /// Applies a key-value transaction: validated again here (no replica trusts the proposer),
    /// then compared and applied by the store. A change of a key moves the store's
    /// `lastChangeIndex`, not the state's: nothing that plans or watches the cluster's
    /// applications and nodes has anything to do for it.
    mutating func applyKVTransaction(_ transaction: KVTransaction, at index: UInt64, time: Timestamp) throws(ControllerError) -> CommandResult {
        try transaction.validate()
        // Only keys some service reads and this transaction may write are compared (none, most
        // of the time).
        let watched = keyReaders.keys.filter(transaction.mayChange)
        let before = watched.map { kv.get($0)?.value }
        let result = kv.apply(transaction, at: index)
        // Services that read a key whose value changed roll, as after a restart; the state
        // changed, so the leader plans again and node workers look.
        var changedServices: Set<ServiceKey> = []
        for (key, old) in zip(watched, before) where kv.get(key)?.value != old {
            changedServices.formUnion(keyReaders[key] ?? [])
        }
        for service in changedServices {
            applications[service.application]?.services[service.service]?.keyChangeIndex = index
            applications[service.application]?.modifiedIndex = index
        }
        let byApplication = Dictionary(grouping: changedServices, by: \.application)
        for name in byApplication.keys.sorted() {
            let services = (byApplication[name] ?? []).map(\.service)
            startRollout(of: name, services: services, reason: "a key read by \(services.sorted().joined(separator: ", ")) changed", at: index, time: time)
        }
        if !changedServices.isEmpty { lastChangeIndex = index }
        return .kvTransactionApplied(result)
    }

    /// The values of the keys `services` bind, by key; keys that do not exist are left out.
    public func boundValues<Services: Sequence<Service>>(of services: Services) -> [String: [UInt8]] {
        var values: [String: [UInt8]] = [:]
        for service in services {
            for binding in service.kv {
                guard let key = try? KVKey(validating: binding.key), let entry = kv.get(key) else { continue }
                values[binding.key] = entry.value
            }
        }
        return values
    }
}
