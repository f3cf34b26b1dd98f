extension ClusterState {
    /// Applies a key-value transaction: validated again here (no replica trusts the proposer),
    /// then compared and applied by the store. A change of a key is a change of the state
    /// (blocking queries on the state wake up); a comparison that fails changes nothing.
    mutating func applyKVTransaction(_ transaction: KVTransaction, at index: UInt64) throws(ControllerError) -> CommandResult {
        try transaction.validate()
        let before = kv.lastChangeIndex
        let result = kv.apply(transaction, at: index)
        if kv.lastChangeIndex != before { lastChangeIndex = index }
        return .kvTransactionApplied(result)
    }
}
