/// The replicated key-value store: entries by key, with the keys also kept in byte order so
/// that a prefix is one contiguous run found by binary search (listing a folder of a large
/// store does not walk every key).
public struct KVStore: Sendable, Hashable {
    public private(set) var entries: [KVKey: KVEntry] = [:]
    /// The keys of `entries`, in byte order. Not in snapshots: rebuilt on restore.
    private var ordered = OrderedKeys()
    /// Deleted keys, for the indexes of answers about them.
    private(set) var tombstones = KVTombstones()
    /// The log index of the last transaction that changed a key (a set, or a delete that
    /// removed one): what a blocking query on the store waits past.
    public private(set) var lastChangeIndex: UInt64 = 0

    public init() {}

    /// A store holding `entries` and `tombstones`, changed last at `lastChangeIndex`.
    init(entries: [KVEntry], tombstones: KVTombstones, lastChangeIndex: UInt64) {
        for entry in entries { self.entries[entry.key] = entry }
        ordered = OrderedKeys(unsorted: self.entries.keys)
        self.tombstones = tombstones
        self.lastChangeIndex = lastChangeIndex
    }

    public var count: Int { entries.count }

    public func get(_ key: KVKey) -> KVEntry? { entries[key] }

    /// Every entry whose key starts with `prefix`, in key order (all of them for an empty one).
    public func list(prefix: [UInt8]) -> [KVEntry] {
        ordered.run(withPrefix: prefix).compactMap { entries[$0] }
    }

    /// The index of the newest change to `key` (Consul's X-Consul-Index for a key): its
    /// modify index while it exists, else the index of its delete (or one at least as new). A
    /// blocking query on the key waits for this to pass the index it was given.
    public func changeIndex(of key: KVKey) -> UInt64 {
        entries[key]?.modifyIndex ?? tombstones.index(of: key)
    }

    /// The index of the newest change under `prefix`: a set or a delete of any key there.
    public func changeIndex(underPrefix prefix: [UInt8]) -> UInt64 {
        ordered.run(withPrefix: prefix).reduce(tombstones.newestIndex(underPrefix: prefix)) { max($0, entries[$1]?.modifyIndex ?? 0) }
    }

    /// Applies a transaction committed at `index`: every comparison against the store as it
    /// is, then, if all held, every operation in order. The transaction must have been
    /// validated; nothing here can fail halfway.
    mutating func apply(_ transaction: KVTransaction, at index: UInt64) -> KVTransactionResult {
        for (position, compare) in transaction.compares.enumerated() where !holds(compare) {
            return KVTransactionResult(
                index: index, failedCompare: KVFailedCompare(position: position, compare: compare, current: entries[compare.key]),
                results: [])
        }
        var results: [KVOperationResult] = []
        results.reserveCapacity(transaction.operations.count)
        var changed = false
        for operation in transaction.operations {
            switch operation {
            case .get(let key):
                results.append(.read(entries[key]))
            case .set(let key, let value):
                let entry = KVEntry(key: key, value: value, createIndex: entries[key]?.createIndex ?? index, modifyIndex: index)
                if entries.updateValue(entry, forKey: key) == nil {
                    ordered.insert(key)
                    tombstones.forget(key)
                }
                results.append(.written(entry))
                changed = true
            case .delete(let key):
                let removed = entries.removeValue(forKey: key) != nil
                if removed {
                    ordered.remove(key)
                    tombstones.record(key, at: index)
                }
                results.append(.deleted(count: removed ? 1 : 0))
                changed = changed || removed
            case .deleteTree(let prefix):
                let removed = ordered.removeRun(withPrefix: prefix.bytes)
                for key in removed {
                    entries.removeValue(forKey: key)
                    tombstones.record(key, at: index)
                }
                results.append(.deleted(count: removed.count))
                changed = changed || !removed.isEmpty
            }
        }
        if changed { lastChangeIndex = index }
        return KVTransactionResult(index: index, failedCompare: nil, results: results)
    }

    func holds(_ compare: KVCompare) -> Bool {
        switch compare {
        case .modifyIndex(let key, let expected): (entries[key]?.modifyIndex ?? 0) == expected
        case .value(let key, let expected): entries[key]?.value == expected
        }
    }
}
