import AgentAPI
import Controller

/// The answer of one catalog lookup, again each time it changes: what a `watch=true` request
/// streams. Each state change wakes it (the change feed), but only a changed answer is sent,
/// so instances reporting on services the watcher does not look at cost it a lookup, not an event.
struct CatalogWatch: Sendable {
    typealias Answer = [Components.Schemas.CatalogInstanceInfo]

    let gateway: ClusterGateway
    /// The state read when the request came in.
    let first: ClusterState
    /// A reconnecting client's last index: the first answer waits until the state passes it.
    let after: UInt64
    let lookup: @Sendable (Catalog) -> Answer

    /// How long a quiet watch waits before it sends a keepalive (nil).
    static let keepaliveInterval = Duration.seconds(15)

    /// `(index, answer)` at once (or once the state passes `after`), then at each change of the
    /// answer; nil after each quiet `keepaliveInterval`.
    func events() -> AsyncThrowingStream<(UInt64, Answer)?, any Error> {
        AsyncThrowingStream { continuation in
            let watcher = Task {
                var state = first
                var sent: Answer?
                do {
                    while !Task.isCancelled {
                        if state.lastChangeIndex > after || (after == 0 && sent == nil) {
                            let answer = lookup(Catalog(state))
                            if answer != sent {
                                continuation.yield((state.lastChangeIndex, answer))
                                sent = answer
                            }
                        }
                        let seen = state.lastChangeIndex
                        _ = await gateway.feed.wait(after: seen, timeout: Self.keepaliveInterval)
                        // A finished feed (the agent stopping) ends the stream, as blocking
                        // queries answer: its waits would return at once from now on.
                        if Task.isCancelled || gateway.feed.isFinished { break }
                        state = try await gateway.read { $0 }
                        if state.lastChangeIndex == seen { continuation.yield(nil) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in watcher.cancel() }
        }
    }
}
