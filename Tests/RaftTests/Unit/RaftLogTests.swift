import Testing
@testable import Raft

@Suite struct RaftLogTests {
    /// A log of the given terms after a snapshot at `snapshotIndex` (term 1), all persisted.
    static func makeLog(terms: [UInt64], snapshotIndex: UInt64 = 0, committed: UInt64 = 0) -> RaftLog {
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: snapshotIndex, term: snapshotIndex == 0 ? 0 : 1))
        let entries = terms.enumerated().map { Entry(term: $1, index: snapshotIndex + UInt64($0) + 1, data: [UInt8($0)]) }
        let storage = MemoryStorage(snapshot: snapshot, hardState: HardState(term: terms.last ?? 0, commit: committed),
                                    entries: entries)
        return RaftLog(storage: storage, committed: committed, applied: 0)
    }

    @Test func termsAndBounds() throws {
        let log = Self.makeLog(terms: [1, 2, 2], snapshotIndex: 10, committed: 10)
        #expect(log.firstIndex == 11 && log.lastIndex == 13 && log.lastTerm == 2)
        #expect(try log.term(at: 10) == 1)
        #expect(try log.term(at: 12) == 2)
        #expect(throws: LogStorageError.compacted) { try log.term(at: 9) }
        #expect(throws: LogStorageError.unavailable) { try log.term(at: 14) }
    }

    @Test func upToDateComparesLastTermThenLength() {
        let log = Self.makeLog(terms: [1, 2, 2])
        #expect(log.isUpToDate(lastIndex: 3, lastTerm: 2))
        #expect(log.isUpToDate(lastIndex: 1, lastTerm: 3))
        #expect(!log.isUpToDate(lastIndex: 2, lastTerm: 2))
        #expect(!log.isUpToDate(lastIndex: 9, lastTerm: 1))
    }

    @Test func appendReplacesAConflictingSuffix() throws {
        var log = Self.makeLog(terms: [1, 1, 1, 1], committed: 1)
        // Entries 2 and 3 match, 4 conflicts, 5 is new.
        let incoming = [Entry(term: 1, index: 3, data: [2]), Entry(term: 3, index: 4), Entry(term: 3, index: 5)]
        let result = log.maybeAppend(prevIndex: 2, prevTerm: 1, leaderCommit: 5, entries: incoming)
        #expect(result?.lastNewIndex == 5)
        #expect(result?.replacedFrom == 4)
        #expect(log.lastIndex == 5)
        #expect(try log.term(at: 4) == 3)
        #expect(log.committed == 5)
        #expect(log.unstable.offset == 4, "the replaced part is unstable again")
        // A mismatched previous entry is refused.
        #expect(log.maybeAppend(prevIndex: 5, prevTerm: 2, leaderCommit: 5, entries: []) == nil)
    }

    @Test func appendOfKnownEntriesReplacesNothing() {
        var log = Self.makeLog(terms: [1, 2, 3])
        let result = log.maybeAppend(prevIndex: 1, prevTerm: 1, leaderCommit: 0, entries: [Entry(term: 2, index: 2, data: [1])])
        #expect(result?.replacedFrom == 0)
        #expect(log.lastIndex == 3, "an old, shorter append never truncates")
    }

    @Test func findConflictByTermSkipsWholeTerms() {
        // Figure 7 (f): terms 1 1 1 2 2 2 3 3 3 3 3.
        let log = Self.makeLog(terms: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3])
        #expect(log.findConflictByTerm(index: 11, term: 6) == (11, 3))
        #expect(log.findConflictByTerm(index: 10, term: 2) == (6, 2))
        #expect(log.findConflictByTerm(index: 10, term: 1) == (3, 1))
        #expect(log.findConflictByTerm(index: 10, term: 0) == (0, 0))
        let compacted = Self.makeLog(terms: [3, 3], snapshotIndex: 10)
        #expect(compacted.findConflictByTerm(index: 12, term: 2) == (10, 1))
    }

    @Test func entriesRespectTheByteLimitAcrossPersistedAndUnstable() throws {
        var log = Self.makeLog(terms: [1, 1, 1])
        log.append([Entry(term: 2, index: 4, data: [0, 0]), Entry(term: 2, index: 5)])
        let all = try log.entries(from: 2, upTo: 6, maxBytes: .max)
        #expect(all.map(\.index) == [2, 3, 4, 5])
        // Each entry counts its data plus 16: at least one entry always comes back.
        #expect(try log.entries(from: 2, upTo: 6, maxBytes: 1).map(\.index) == [2])
        #expect(try log.entries(from: 2, upTo: 6, maxBytes: 51).map(\.index) == [2, 3])
        #expect(try log.entries(from: 2, upTo: 6, maxBytes: 52).map(\.index) == [2, 3, 4])
        #expect(try log.entries(from: 4, upTo: 6, maxBytes: 18).map(\.index) == [4])
    }

    @Test func stableToIgnoresReplacedEntries() {
        var log = Self.makeLog(terms: [1])
        log.append([Entry(term: 2, index: 2), Entry(term: 2, index: 3)])
        // A Ready with entries 2 and 3 is being persisted when a new leader replaces 3.
        _ = log.maybeAppend(prevIndex: 2, prevTerm: 2, leaderCommit: 0, entries: [Entry(term: 3, index: 3)])
        log.stable(to: 3, term: 2)
        #expect(log.unstable.entries.map(\.term) == [2, 3], "nothing was stable that still stands")
        log.stable(to: 2, term: 2)
        #expect(log.unstable.offset == 3)
    }

    @Test func restoreReplacesTheLog() throws {
        var log = Self.makeLog(terms: [1, 1], committed: 1)
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 20, term: 4))
        log.restore(snapshot)
        #expect(log.firstIndex == 21 && log.lastIndex == 20 && log.committed == 20)
        #expect(try log.term(at: 20) == 4)
        #expect(!log.hasCommittedEntriesToApply, "the snapshot is applied first")
        #expect(log.persistedLastIndex == 0)
    }
}

@Suite struct MemoryStorageTests {
    @Test func appendCompactAndApplySnapshot() throws {
        let storage = MemoryStorage(bootstrap: ConfState(voters: [1, 2]))
        #expect(storage.lastIndex == 2 && storage.hardState.commit == 2)
        storage.append([Entry(term: 2, index: 3), Entry(term: 2, index: 4), Entry(term: 2, index: 5)])
        storage.append([Entry(term: 3, index: 4)])
        #expect(storage.lastIndex == 4)
        #expect(try storage.term(at: 4) == 3)
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 3, term: 2, confState: ConfState(voters: [1, 2])), data: [7])
        try storage.compact(to: snapshot)
        #expect(storage.firstIndex == 4 && storage.lastIndex == 4)
        #expect(throws: LogStorageError.compacted) { try storage.entries(from: 3, upTo: 5, maxBytes: .max) }
        #expect(throws: LogStorageError.snapshotOutOfDate) { try storage.compact(to: snapshot) }
        // Entries before the snapshot are skipped on append.
        storage.append([Entry(term: 2, index: 3), Entry(term: 3, index: 4), Entry(term: 3, index: 5)])
        #expect(storage.lastIndex == 5)
        try storage.applySnapshot(Snapshot(metadata: SnapshotMetadata(index: 9, term: 4)))
        #expect(storage.firstIndex == 10 && storage.lastIndex == 9)
        #expect(try storage.term(at: 9) == 4)
    }
}

@Suite struct MembershipLogTests {
    static func change(_ index: UInt64, _ change: ConfChange) -> Entry {
        Entry(term: 1, index: index, kind: .configChange, data: change.encoded())
    }

    @Test func followsTheLogAndRevertsOnTruncation() {
        var membership = MembershipLog(snapshot: SnapshotMetadata(index: 10, term: 1, confState: ConfState(voters: [1, 2, 3])))
        membership.record(Self.change(12, ConfChange(.addLearner, 4)))
        membership.record(Self.change(15, ConfChange(.addVoter, 4)))
        #expect(membership.current == ConfState(voters: [1, 2, 3, 4]))
        #expect(membership.conf(at: 13) == ConfState(voters: [1, 2, 3], learners: [4]))
        #expect(membership.conf(at: 11) == ConfState(voters: [1, 2, 3]))
        membership.truncate(from: 14)
        #expect(membership.current == ConfState(voters: [1, 2, 3], learners: [4]))
        #expect(membership.currentIndex == 12)
        membership.compact(to: 13)
        #expect(membership.changes.isEmpty && membership.current.learners == [4])
        membership.record(Self.change(16, ConfChange(.removeNode, 1)))
        #expect(membership.current == ConfState(voters: [2, 3], learners: [4]))
    }

    @Test func bootstrapLogHoldsTheMembership() {
        let log = BootstrapLog(members: ConfState(voters: [3, 1], learners: [7]))
        var membership = MembershipLog(snapshot: SnapshotMetadata())
        for entry in log.entries { membership.record(entry) }
        #expect(membership.current == ConfState(voters: [1, 3], learners: [7]))
        #expect(log.hardState == HardState(term: 1, vote: 0, commit: 3))
        #expect(BootstrapLog(members: ConfState()).entries.isEmpty)
    }
}
