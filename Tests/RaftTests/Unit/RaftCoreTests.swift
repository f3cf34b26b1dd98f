import Testing
@testable import Raft

/// Requests and messages the core must refuse, with the typed error a caller acts on.
@Suite struct RaftCoreTests {
    static func makeCore(id: NodeID = 1, voters: Set<NodeID> = [1, 2, 3]) -> RaftCore {
        RaftCore(config: RaftConfig(id: id), storage: MemoryStorage(bootstrap: ConfState(voters: voters)),
                 random: SplitMix64(seed: id))
    }

    @Test func followerRefusesProposalsNamingTheLeader() throws {
        var core = Self.makeCore(id: 2)
        #expect(throws: RaftError.notLeader(leaderHint: 0)) { try core.propose([1]) }
        try core.step(Message(from: 1, to: 2, term: 2, payload: .heartbeat(Heartbeat(commit: 0))))
        #expect(core.leader == 1)
        #expect(throws: RaftError.notLeader(leaderHint: 1)) { try core.propose([1]) }
        #expect(throws: RaftError.notLeader(leaderHint: 1)) { try core.proposeConfChange(ConfChange(.addLearner, 4)) }
        #expect(throws: RaftError.notLeader(leaderHint: 1)) { try core.transferLeadership(to: 3) }
    }

    @Test func readIndexWithoutLeaderFailsFast() {
        var core = Self.makeCore(id: 2)
        #expect(throws: RaftError.notLeader(leaderHint: 0)) { try core.readIndex(context: [1]) }
    }

    @Test func refusesMisaddressedAndMalformedMessages() {
        var core = Self.makeCore(id: 2)
        #expect(throws: RaftError.misaddressed(to: 3)) {
            try core.step(Message(from: 1, to: 3, term: 1, payload: .timeoutNow))
        }
        #expect(throws: RaftError.self) {
            try core.step(Message(from: 2, to: 2, term: 1, payload: .timeoutNow))
        }
        // Entries out of sequence, or from a term after the message's.
        let gap = AppendRequest(prevLogIndex: 3, prevLogTerm: 1, entries: [Entry(term: 1, index: 5)], commit: 0)
        #expect(throws: RaftError.self) { try core.step(Message(from: 1, to: 2, term: 1, payload: .append(gap))) }
        let future = AppendRequest(prevLogIndex: 3, prevLogTerm: 1, entries: [Entry(term: 9, index: 4)], commit: 0)
        #expect(throws: RaftError.self) { try core.step(Message(from: 1, to: 2, term: 1, payload: .append(future))) }
        let chunk = SnapshotChunk(metadata: SnapshotMetadata(index: 5, term: 1), offset: 8, totalBytes: 4, data: [])
        #expect(throws: RaftError.self) { try core.step(Message(from: 1, to: 2, term: 1, payload: .snapshotChunk(chunk))) }
    }

    @Test func singleVoterLeadsAndCommitsAlone() throws {
        var core = Self.makeCore(id: 1, voters: [1])
        let storage = core.log.storage as? MemoryStorage
        core.campaign()
        #expect(core.isLeader)
        let position = try core.propose(Array("x".utf8))
        var applied: [Entry] = []
        while core.hasReady {
            let ready = core.ready()
            storage?.persist(ready)
            applied += ready.committedEntries
            core.advance(ready)
        }
        #expect(core.commitIndex == position.index)
        #expect(applied.last?.data == Array("x".utf8))
    }

    /// Proposals past `maxUncommittedBytes` are refused while earlier ones wait for their commit,
    /// and accepted again once they are committed; one that exceeds the limit alone is accepted
    /// when nothing is uncommitted.
    @Test func aLeaderRefusesProposalsPastItsUncommittedLimitUntilCommitsCatchUp() throws {
        var config = RaftConfig(id: 1)
        config.maxUncommittedBytes = 100
        let storage = MemoryStorage(bootstrap: ConfState(voters: [1]))
        var core = RaftCore(config: config, storage: storage, random: SplitMix64(seed: 1))
        core.campaign()
        #expect(core.isLeader)
        func commitEverything() {
            while core.hasReady {
                let ready = core.ready()
                storage.persist(ready)
                core.advance(ready)
            }
        }
        commitEverything()
        let chunk = [UInt8](repeating: 7, count: 60)
        _ = try core.propose(chunk)
        #expect(throws: RaftError.tooManyUncommitted(bytes: 60, limit: 100)) { try core.propose(chunk) }
        #expect(throws: RaftError.tooManyUncommitted(bytes: 60, limit: 100)) { try core.propose(contentsOf: [[1], chunk]) }
        _ = try core.propose(contentsOf: [[1, 2], [3, 4]])
        commitEverything()
        #expect(core.leaderState.uncommittedBytes == 0)
        _ = try core.propose(chunk)
        commitEverything()
        let large = try core.propose([UInt8](repeating: 1, count: 500))
        #expect(throws: RaftError.tooManyUncommitted(bytes: 500, limit: 100)) { try core.propose([1]) }
        commitEverything()
        #expect(core.commitIndex == large.index)
        _ = try core.propose([1])
    }

    /// A leader's Readies advanced before its disk confirmed them (`advance(_:durable: false)`):
    /// it counts itself toward a majority only up to what `persisted(through:)` reported, and
    /// a reported position no longer in its log confirms nothing.
    @Test func aLeaderCountsItselfOnlyForWhatItsDiskConfirmed() throws {
        var core = Self.makeCore(id: 1, voters: [1])
        let storage = try #require(core.log.storage as? MemoryStorage)
        core.campaign()
        while core.hasReady {
            let ready = core.ready()
            storage.persist(ready)
            core.advance(ready)
        }
        let first = try core.propose([1])
        let second = try core.propose([2])
        let ready = core.ready()
        #expect(ready.messagesMayPrecedePersist)
        #expect(ready.entries.map(\.index) == [first.index, second.index])
        storage.persist(ready)
        core.advance(ready, durable: false)
        #expect(core.commitIndex < first.index)
        core.persisted(through: LogPosition(index: first.index, term: first.term + 1))
        #expect(core.commitIndex < first.index)
        core.persisted(through: first)
        #expect(core.commitIndex == first.index)
        core.persisted(through: second)
        #expect(core.commitIndex == second.index)
    }

    /// `commitAwaitsOwnSync` holds exactly while the leader's unconfirmed entries, as its
    /// vote, would commit more than its followers do: the driver watches its syncs then.
    @Test func aLeaderSaysWhenItsCommitWaitsForItsOwnSync() throws {
        var cores: [NodeID: RaftCore] = [1: Self.makeCore(id: 1), 2: Self.makeCore(id: 2), 3: Self.makeCore(id: 3)]
        /// Handles every Ready (durable), delivering messages to `reachable` only, until quiet.
        func settle(reachable: Set<NodeID> = [1, 2, 3]) throws {
            var moved = true
            while moved {
                moved = false
                for id in cores.keys.sorted() where cores[id]!.hasReady {
                    moved = true
                    let ready = cores[id]!.ready()
                    (cores[id]!.log.storage as! MemoryStorage).persist(ready)
                    cores[id]!.advance(ready)
                    for message in ready.messages where reachable.contains(message.to) && reachable.contains(message.from) {
                        try cores[message.to]!.step(message)
                    }
                }
            }
        }
        cores[1]!.campaign()
        try settle()
        #expect(cores[1]!.isLeader)
        #expect(!cores[1]!.commitAwaitsOwnSync)

        // Both followers answer before the leader's sync: they commit without it.
        let first = try cores[1]!.propose([1])
        var ready = cores[1]!.ready()
        (cores[1]!.log.storage as! MemoryStorage).persist(ready)
        cores[1]!.advance(ready, durable: false)
        #expect(!cores[1]!.commitAwaitsOwnSync, "no follower has the entry: the leader's sync alone commits nothing")
        for message in ready.messages where message.to != 1 { try cores[message.to]!.step(message) }
        try settle()
        #expect(cores[1]!.commitIndex == first.index)
        #expect(!cores[1]!.commitAwaitsOwnSync)

        // One follower answers before the leader's sync: its vote and the leader's would commit.
        let second = try cores[1]!.propose([2])
        ready = cores[1]!.ready()
        (cores[1]!.log.storage as! MemoryStorage).persist(ready)
        cores[1]!.advance(ready, durable: false)
        for message in ready.messages where message.to == 2 { try cores[2]!.step(message) }
        try settle(reachable: [1, 2])
        #expect(cores[1]!.commitIndex < second.index)
        #expect(cores[1]!.commitAwaitsOwnSync)
        cores[1]!.persisted(through: second)
        #expect(cores[1]!.commitIndex == second.index)
        #expect(!cores[1]!.commitAwaitsOwnSync)
    }

    @Test func snapshotOnlyAtAnAppliedIndex() throws {
        var core = Self.makeCore(id: 1, voters: [1])
        // The bootstrap entry (index 1) is committed but not applied yet.
        #expect(throws: RaftError.invalidSnapshotIndex(index: 1, firstIndex: 1, applied: 0)) {
            try core.snapshot(at: 1, data: [])
        }
        let storage = core.log.storage as? MemoryStorage
        while core.hasReady {
            let ready = core.ready()
            storage?.persist(ready)
            core.advance(ready)
        }
        let snapshot = try core.snapshot(at: 1, data: [42])
        #expect(snapshot.metadata == SnapshotMetadata(index: 1, term: 1, confState: ConfState(voters: [1])))
        #expect(throws: RaftError.self) { try core.snapshot(at: 2, data: []) }
    }

    /// A Ready's entries are being persisted when a new leader replaces their tail: the part
    /// that still stands becomes stable, the replacement stays unstable for the next Ready.
    @Test func advanceKeepsTheStandingPrefixStable() throws {
        var core = Self.makeCore(id: 2)
        let storage = try #require(core.log.storage as? MemoryStorage)
        while core.hasReady {
            let ready = core.ready()
            storage.persist(ready)
            core.advance(ready)
        }
        let old = (4...7).map { Entry(term: 2, index: UInt64($0), data: [UInt8($0)]) }
        try core.step(Message(from: 1, to: 2, term: 2, payload: .append(AppendRequest(
            prevLogIndex: 3, prevLogTerm: 1, entries: old, commit: 3))))
        let inFlight = core.ready()
        #expect(inFlight.entries.map(\.index) == [4, 5, 6, 7])
        // Leader 3 of term 3 replaces 6 and 7 while the write is in flight.
        let new = [Entry(term: 3, index: 6, data: [60])]
        try core.step(Message(from: 3, to: 2, term: 3, payload: .append(AppendRequest(
            prevLogIndex: 5, prevLogTerm: 2, entries: new, commit: 5))))
        storage.persist(inFlight)
        core.advance(inFlight)
        #expect(core.log.unstable.offset == 6)
        #expect(core.log.unstable.entries == new)
        let next = core.ready()
        #expect(next.entries == new)
        storage.persist(next)
        core.advance(next)
        #expect(storage.lastIndex == 6)
        #expect(try storage.term(at: 6) == 3)
    }
}
