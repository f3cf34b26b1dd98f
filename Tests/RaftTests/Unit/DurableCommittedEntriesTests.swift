import Testing
@testable import Raft

/// `RaftCore.committedEntriesDurableNow`: entries applied while a `Ready` is being handled.
@Suite struct DurableCommittedEntriesTests {
    /// A follower of leader 1 in term 2 that has persisted and applied its bootstrap log.
    static func follower() throws -> (RaftCore, MemoryStorage) {
        var core = RaftCoreTests.makeCore(id: 2)
        let storage = try #require(core.log.storage as? MemoryStorage)
        while core.hasReady { persistNext(&core, storage) }
        return (core, storage)
    }

    /// Hands out the next Ready, persists it and advances.
    static func persistNext(_ core: inout RaftCore, _ storage: MemoryStorage) {
        let ready = core.ready()
        storage.persist(ready)
        core.advance(ready)
    }

    static func append(_ indexes: ClosedRange<UInt64>, commit: UInt64, to core: inout RaftCore) throws {
        let entries = indexes.map { Entry(term: 2, index: $0, data: [UInt8($0)]) }
        let previous = indexes.lowerBound - 1
        try core.step(Message(from: 1, to: 2, term: 2, payload: .append(AppendRequest(
            prevLogIndex: previous, prevLogTerm: previous <= 3 ? 1 : 2, entries: entries, commit: commit))))
    }

    @Test func onlyEntriesPersistedBeforeTheReadyInProgressAreHandedOutAndOnlyOnce() throws {
        var (core, storage) = try Self.follower()
        try Self.append(4...7, commit: 3, to: &core)
        Self.persistNext(&core, storage)
        // No Ready in progress: the next one carries what committed.
        try Self.append(8...9, commit: 3, to: &core)
        #expect(core.committedEntriesDurableNow(maxBytes: .max).isEmpty)

        let inProgress = core.ready()
        #expect(inProgress.entries.map(\.index) == [8, 9])
        // Handed to the storage, which holds them at once (as the agent's does, before its
        // sync), while the leader says 4...9 committed.
        storage.persist(inProgress)
        try core.step(Message(from: 1, to: 2, term: 2, payload: .heartbeat(Heartbeat(commit: 9))))
        #expect(core.committedEntriesDurableNow(maxBytes: .max).map(\.index) == [4, 5, 6, 7])
        #expect(core.committedEntriesDurableNow(maxBytes: .max).isEmpty)
        core.advance(inProgress)
        let next = core.ready()
        #expect(next.committedEntries.map(\.index) == [8, 9])
    }

    @Test func aByteLimitHandsThemOutAPieceAtATime() throws {
        var (core, storage) = try Self.follower()
        try Self.append(4...7, commit: 3, to: &core)
        Self.persistNext(&core, storage)
        try Self.append(8...8, commit: 3, to: &core)
        let inProgress = core.ready()
        try core.step(Message(from: 1, to: 2, term: 2, payload: .heartbeat(Heartbeat(commit: 8))))
        // Each entry here is one byte; a limit below one entry still hands out one.
        #expect(core.committedEntriesDurableNow(maxBytes: 1).map(\.index) == [4])
        #expect(core.committedEntriesDurableNow(maxBytes: 1).map(\.index) == [5])
        #expect(core.committedEntriesDurableNow(maxBytes: .max).map(\.index) == [6, 7])
        storage.persist(inProgress)
        core.advance(inProgress)
        #expect(core.ready().committedEntries.map(\.index) == [8])
    }

    @Test func nothingPassesTheReadysOwnCommittedEntries() throws {
        var (core, storage) = try Self.follower()
        try Self.append(4...5, commit: 3, to: &core)
        Self.persistNext(&core, storage)
        // 4 and 5 durable, 6 and 7 committed with them and in the Ready: 6 and 7 must be
        // applied first, after their sync, so neither may anything after them.
        try Self.append(6...7, commit: 7, to: &core)
        let inProgress = core.ready()
        #expect(inProgress.committedEntries.map(\.index) == [4, 5, 6, 7])
        #expect(core.committedEntriesDurableNow(maxBytes: .max).isEmpty)
        storage.persist(inProgress)
        core.advance(inProgress)
        #expect(!core.hasReady)
    }
}
