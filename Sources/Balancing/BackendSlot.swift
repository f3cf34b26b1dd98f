/// What a balancer keeps about one backend of its current set.
struct BackendSlot: Sendable {
    var backend: Backend
    /// Unique per arrival of an id in the set: a lease taken before its backend was removed
    /// and added again must not finish a request of the new arrival.
    let incarnation: UInt64
    /// Requests picked and not yet finished.
    var outstanding = 0
    var outlier = OutlierState()
    /// Whether picks may choose it now (not ejected, or panic mode).
    var isEligible = false
    /// `weighted`: the virtual time of this backend's next turn; nil until first scheduled.
    var weightedPass: UInt64?
    /// `least-outstanding`: when it was last picked, to rotate among equally loaded backends.
    var lastPickSequence: UInt64 = 0

    init(backend: Backend, incarnation: UInt64) {
        self.backend = backend
        self.incarnation = incarnation
    }
}

/// Which slot a lease holds: its index then, checked against the incarnation, and the id to
/// find it again after an update moved it.
struct SlotReference: Hashable, Sendable {
    let index: Int
    let incarnation: UInt64
    let id: String
}
