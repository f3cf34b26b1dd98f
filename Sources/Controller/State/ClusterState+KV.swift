import Manifest

extension ClusterState {
    /// Applies a key-value transaction: validated again here (no replica trusts the proposer),
    /// then compared and applied by the store. A change of a key moves the store's
    /// `lastChangeIndex`, not the state's: nothing that plans or watches the cluster's
    /// applications and nodes has anything to do for it.
    mutating func applyKVTransaction(_ transaction: KVTransaction, at index: UInt64) throws(ControllerError) -> CommandResult {
        try transaction.validate()
        // Only keys some service reads are compared (none, most of the time).
        let before = keyReaders.isEmpty ? [:] : Dictionary(uniqueKeysWithValues: keyReaders.keys.map { ($0, kv.get($0)?.value) })
        let result = kv.apply(transaction, at: index)
        // Services that read a key whose value changed roll, as after a restart; the state
        // changed, so the leader plans again and node workers look.
        var changedServices: Set<ServiceKey> = []
        for (key, services) in keyReaders where kv.get(key)?.value != before[key] ?? nil { changedServices.formUnion(services) }
        for service in changedServices {
            applications[service.application]?.services[service.service]?.keyChangeIndex = index
            applications[service.application]?.modifiedIndex = index
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
