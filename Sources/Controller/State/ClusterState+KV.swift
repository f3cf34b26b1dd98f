extension ClusterState {
    /// Applies a key-value transaction: validated again here (no replica trusts the proposer),
    /// then compared and applied by the store. A change of a key moves the store's
    /// `lastChangeIndex`, not the state's: nothing that plans or watches the cluster's
    /// applications and nodes has anything to do for it.
    mutating func applyKVTransaction(_ transaction: KVTransaction, at index: UInt64) throws(ControllerError) -> CommandResult {
        try transaction.validate()
        return .kvTransactionApplied(kv.apply(transaction, at: index))
    }
}
