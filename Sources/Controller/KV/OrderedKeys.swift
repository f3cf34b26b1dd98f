/// Keys kept in byte order, so that every key under a prefix is one contiguous run found by
/// binary search: what the store and its tombstones list and remove by prefix with.
struct OrderedKeys: Sendable, Hashable {
    private(set) var keys: [KVKey] = []

    init() {}

    init<Keys: Sequence<KVKey>>(unsorted: Keys) { keys = unsorted.sorted() }

    var count: Int { keys.count }

    /// The position of the first key not ordered before `bytes`.
    func firstPosition(notBefore bytes: [UInt8]) -> Int {
        var low = 0, high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if keys[middle].bytes.lexicographicallyPrecedes(bytes) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The keys that start with `prefix`, in order (all of them for an empty prefix).
    func run(withPrefix prefix: [UInt8]) -> ArraySlice<KVKey> {
        let start = firstPosition(notBefore: prefix)
        var end = start
        while end < keys.count, keys[end].hasPrefix(prefix) { end += 1 }
        return keys[start..<end]
    }

    /// Inserts `key`, which must not be here yet.
    mutating func insert(_ key: KVKey) {
        keys.insert(key, at: firstPosition(notBefore: key.bytes))
    }

    /// Removes `key` if it is here; whether it was.
    @discardableResult
    mutating func remove(_ key: KVKey) -> Bool {
        let position = firstPosition(notBefore: key.bytes)
        guard position < keys.count, keys[position] == key else { return false }
        keys.remove(at: position)
        return true
    }

    /// Removes the keys that start with `prefix` and returns them, in order.
    mutating func removeRun(withPrefix prefix: [UInt8]) -> [KVKey] {
        let run = run(withPrefix: prefix)
        let removed = Array(run)
        keys.removeSubrange(run.indices)
        return removed
    }
}
