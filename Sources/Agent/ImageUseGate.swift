import Controller
import Synchronization

/// Keeps the making of instance roots and the collection of unused images apart. A collection
/// removes the blobs and layers no record names; a root being made reuses those already present
/// without touching them, and names them only once its record is written. So a collection does
/// not start while a root is being made (it is skipped: the next one comes within a minute),
/// and a root started during a collection waits for its end (else the collector, working from
/// the records it read at its start, removed layers the new root had just mounted).
final class ImageUseGate: Sendable {
    private struct State {
        var preparing: Set<InstanceID> = []
        var collecting = false
        /// Roots waiting for the collection to end, each let in when it does.
        var waiting: [(id: InstanceID, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    /// Returns once `id`'s root may be made: at once unless a collection runs.
    func enterPrepare(_ id: InstanceID) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                guard state.collecting else {
                    state.preparing.insert(id)
                    return true
                }
                state.waiting.append((id, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// `id`'s root is made (or failed).
    func leavePrepare(_ id: InstanceID) {
        _ = state.withLock { $0.preparing.remove(id) }
    }

    /// Whether a collection may start now (no root being made, no other collection); if so, it
    /// runs until `endCollection`.
    func beginCollection() -> Bool {
        state.withLock { state in
            guard state.preparing.isEmpty, !state.collecting else { return false }
            state.collecting = true
            return true
        }
    }

    /// The collection is over: the roots that waited go on.
    func endCollection() {
        let waiting = state.withLock { state in
            state.collecting = false
            defer { state.waiting = [] }
            for waiter in state.waiting { state.preparing.insert(waiter.id) }
            return state.waiting
        }
        for waiter in waiting { waiter.continuation.resume() }
    }

    /// Roots being made now.
    var preparingCount: Int { state.withLock { $0.preparing.count } }
}
