/// A comparison a transaction makes before it changes anything.
public enum KVCompare: Sendable, Hashable {
    /// The key's modify index is this; 0 means the key does not exist (create only).
    case modifyIndex(KVKey, equals: UInt64)
    /// The key exists and holds exactly these bytes.
    case value(KVKey, equals: [UInt8])

    public var key: KVKey {
        switch self {
        case .modifyIndex(let key, _), .value(let key, _): key
        }
    }
}

/// One step of a transaction, run in order after every comparison held.
public enum KVOperation: Sendable, Hashable {
    /// Reads the key (as the transaction has left it so far).
    case get(KVKey)
    /// Sets the key to these bytes.
    case set(KVKey, [UInt8])
    /// Deletes the key; nothing if it does not exist.
    case delete(KVKey)
    /// Deletes every key that starts with the prefix, the prefix itself included.
    case deleteTree(prefix: KVKey)
}

/// Comparisons, then operations, applied atomically or not at all (etcd's Txn without an else
/// branch; Consul's check-index and check-not-exists verbs are `modifyIndex` comparisons). A
/// single put, check-and-set or delete is a transaction of one or two parts.
public struct KVTransaction: Sendable, Hashable {
    /// At most this many comparisons and operations together.
    public static let maxParts = 64

    public var compares: [KVCompare]
    public var operations: [KVOperation]

    public init(compares: [KVCompare] = [], operations: [KVOperation]) {
        self.compares = compares
        self.operations = operations
    }

    /// Whether an operation of this transaction may write `key`: a set or delete of it, or a
    /// deleteTree of a prefix of it.
    func mayChange(_ key: KVKey) -> Bool {
        operations.contains { operation in
            switch operation {
            case .get: false
            case .set(let written, _), .delete(let written): written == key
            case .deleteTree(let prefix): key.hasPrefix(prefix.bytes)
            }
        }
    }

    /// Refuses what no replica may apply: no operation, more than 64 parts, a value over
    /// 512 KiB, to set or to compare with. Keys are valid by construction (`KVKey(validating:)`).
    public func validate() throws(ControllerError) {
        guard !operations.isEmpty else {
            throw .invalidTransaction("a transaction needs at least one operation (get, set, delete or deleteTree)")
        }
        let parts = compares.count + operations.count
        guard parts <= Self.maxParts else {
            throw .invalidTransaction(
                "the transaction has \(parts) comparisons and operations; at most \(Self.maxParts) are allowed: split it")
        }
        for operation in operations {
            if case .set(let key, let value) = operation, value.count > KVEntry.maxValueBytes {
                throw .valueTooLarge(key: key.description, bytes: value.count, limit: KVEntry.maxValueBytes)
            }
        }
        // No stored value is longer, so such a comparison could never hold; it would only
        // carry up to the request's limit into the log.
        for compare in compares {
            if case .value(let key, let value) = compare, value.count > KVEntry.maxValueBytes {
                throw .valueTooLarge(key: key.description, bytes: value.count, limit: KVEntry.maxValueBytes)
            }
        }
    }
}

/// What an operation of a transaction that held gave back.
public enum KVOperationResult: Sendable, Hashable {
    /// A `get`: the entry, or nil when the key does not exist.
    case read(KVEntry?)
    /// A `set`: the entry as it now is.
    case written(KVEntry)
    /// A `delete` or `deleteTree`: how many keys went.
    case deleted(count: Int)
}

/// The first comparison of a transaction that did not hold, and what the key held instead.
public struct KVFailedCompare: Sendable, Hashable {
    /// Its position among the transaction's comparisons, from 0.
    public var position: Int
    public var compare: KVCompare
    /// The key's entry when the transaction was applied; nil when it did not exist.
    public var current: KVEntry?
}

/// What applying a transaction did.
public struct KVTransactionResult: Sendable, Hashable {
    /// The log index the transaction was applied at: every key it set has this modify index.
    public var index: UInt64
    /// Set when a comparison did not hold: then nothing was changed and `results` is empty.
    public var failedCompare: KVFailedCompare?
    /// One per operation, in order.
    public var results: [KVOperationResult]

    public var succeeded: Bool { failedCompare == nil }
}
