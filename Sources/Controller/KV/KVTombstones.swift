/// Where deleted keys went, for blocking queries: a watch on a key or a prefix must wake when a
/// key under it is deleted, and the answer's index (the newest change it reflects) must move
/// forward then, though no entry is left to carry it (Consul keeps tombstones for the same
/// reason).
///
/// Bounded: past `maxCount` the oldest tombstones are dropped, and `floor` rises to the newest
/// index dropped, so that an answer that may have lost a tombstone still reports an index at
/// least as new as that delete. Dropping is part of applying, so every replica drops the same
/// ones.
struct KVTombstones: Sendable, Hashable {
    /// How many deleted keys are remembered.
    static let maxCount = 10_000

    /// The index each deleted key was deleted at.
    private(set) var indexes: [KVKey: UInt64] = [:]
    private var ordered = OrderedKeys()
    /// No longer remembered deletes happened at this index or before.
    private(set) var floor: UInt64 = 0

    init() {}

    /// Tombstones as a snapshot recorded them.
    init(indexes: [KVKey: UInt64], floor: UInt64) {
        self.indexes = indexes
        ordered = OrderedKeys(unsorted: indexes.keys)
        self.floor = floor
    }

    var count: Int { indexes.count }

    /// Records that `key` was deleted at `index`.
    mutating func record(_ key: KVKey, at index: UInt64) {
        if indexes.updateValue(index, forKey: key) == nil { ordered.insert(key) }
        if indexes.count > Self.maxCount { dropOldest() }
    }

    /// Forgets `key`'s tombstone: it exists again, and its entry's index says more.
    mutating func forget(_ key: KVKey) {
        if indexes.removeValue(forKey: key) != nil { ordered.remove(key) }
    }

    /// The newest delete of `key` still remembered, or else the floor.
    func index(of key: KVKey) -> UInt64 { max(indexes[key] ?? 0, floor) }

    /// The newest delete under `prefix` still remembered, or else the floor.
    func newestIndex(underPrefix prefix: [UInt8]) -> UInt64 {
        ordered.run(withPrefix: prefix).reduce(floor) { max($0, indexes[$1] ?? 0) }
    }

    /// Drops the oldest tenth at once, so that each delete past the bound does not sort them all.
    private mutating func dropOldest() {
        let dropping = indexes.sorted { ($0.value, $0.key) < ($1.value, $1.key) }.prefix(Self.maxCount / 10)
        for (key, index) in dropping {
            indexes.removeValue(forKey: key)
            ordered.remove(key)
            floor = max(floor, index)
        }
    }
}
