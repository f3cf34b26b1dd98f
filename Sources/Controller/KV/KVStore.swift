/// The replicated key-value store: entries by key, with the keys also kept in byte order so
/// that a prefix is one contiguous run found by binary search (listing a folder of a large
/// store does not walk every key).
public struct KVStore: Sendable, Hashable {
    public private(set) var entries: [KVKey: KVEntry] = [:]
    /// The keys of `entries`, in byte order. Not in snapshots: rebuilt on restore.
    private var orderedKeys: [KVKey] = []
    /// The log index of the last transaction that changed a key (a set, or a delete that
    /// removed one): what a blocking query on the store waits past.
    public private(set) var lastChangeIndex: UInt64 = 0

    public init() {}

    /// A store holding `entries`, changed last at `lastChangeIndex`.
    init(entries: [KVEntry], lastChangeIndex: UInt64) {
        for entry in entries { self.entries[entry.key] = entry }
        orderedKeys = self.entries.keys.sorted()
        self.lastChangeIndex = lastChangeIndex
    }

    public var count: Int { entries.count }

    public func get(_ key: KVKey) -> KVEntry? { entries[key] }

    /// Every entry whose key starts with `prefix`, in key order (all of them for an empty one).
    public func list(prefix: [UInt8]) -> [KVEntry] {
        var result: [KVEntry] = []
        var position = firstPosition(notBefore: prefix)
        while position < orderedKeys.count, orderedKeys[position].hasPrefix(prefix) {
            if let entry = entries[orderedKeys[position]] { result.append(entry) }
            position += 1
        }
        return result
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
                if entries.updateValue(entry, forKey: key) == nil { insertOrdered(key) }
                results.append(.written(entry))
                changed = true
            case .delete(let key):
                let removed = removeRun(of: key.bytes, wholeTree: false)
                results.append(.deleted(count: removed))
                changed = changed || removed > 0
            case .deleteTree(let prefix):
                let removed = removeRun(of: prefix.bytes, wholeTree: true)
                results.append(.deleted(count: removed))
                changed = changed || removed > 0
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

    /// The position of the first key not ordered before `bytes`.
    private func firstPosition(notBefore bytes: [UInt8]) -> Int {
        var low = 0, high = orderedKeys.count
        while low < high {
            let middle = (low + high) / 2
            if orderedKeys[middle].bytes.lexicographicallyPrecedes(bytes) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private mutating func insertOrdered(_ key: KVKey) {
        orderedKeys.insert(key, at: firstPosition(notBefore: key.bytes))
    }

    /// Removes the key `bytes`, or with `wholeTree` every key starting with them (one
    /// contiguous run of the ordered keys); returns how many went.
    private mutating func removeRun(of bytes: [UInt8], wholeTree: Bool) -> Int {
        let start = firstPosition(notBefore: bytes)
        var end = start
        while end < orderedKeys.count, wholeTree ? orderedKeys[end].hasPrefix(bytes) : orderedKeys[end].bytes == bytes {
            entries.removeValue(forKey: orderedKeys[end])
            end += 1
        }
        orderedKeys.removeSubrange(start..<end)
        return end - start
    }
}
