import Testing
@testable import Raft

@Suite("Log state replay rules")
struct LogStateTests {
    private func entries(_ range: ClosedRange<UInt64>, term: UInt64) -> [Entry] {
        range.map { Entry(term: term, index: $0, data: [UInt8(truncatingIfNeeded: $0), UInt8(term)]) }
    }

    @Test func laterEntryAtAnIndexReplacesTheSuffix() {
        var state = LogState()
        for entry in entries(1...10, term: 1) { #expect(state.append(entry) == .appended) }
        for entry in entries(6...7, term: 2) { #expect(state.append(entry) == .appended) }
        #expect(state.entries == entries(1...5, term: 1) + entries(6...7, term: 2))
        #expect(state.lastIndex == 7)
    }

    @Test func gapIsRefusedOutsideReplayStart() {
        var state = LogState()
        for entry in entries(1...3, term: 1) { _ = state.append(entry) }
        #expect(state.append(Entry(term: 1, index: 5)) == .gap(expected: 4))
        #expect(state.lastIndex == 3)
    }

    @Test func snapshotMatchingTermKeepsTheFollowingEntries() {
        var state = LogState()
        for entry in entries(1...10, term: 1) { _ = state.append(entry) }
        state.apply(snapshot: SnapshotMetadata(index: 4, term: 1))
        #expect(state.start == 5)
        #expect(state.entries == entries(5...10, term: 1))
        #expect(state.term(at: 4) == 1)
    }

    @Test func snapshotWithConflictingTermDiscardsTheLog() {
        var state = LogState()
        for entry in entries(1...10, term: 1) { _ = state.append(entry) }
        state.apply(snapshot: SnapshotMetadata(index: 8, term: 3))
        #expect(state.entries.isEmpty)
        #expect(state.lastIndex == 8)
        #expect(state.start == 9)
    }

    @Test func snapshotPastTheLogDiscardsIt() {
        var state = LogState()
        for entry in entries(1...3, term: 1) { _ = state.append(entry) }
        state.apply(snapshot: SnapshotMetadata(index: 50, term: 2))
        #expect(state.entries.isEmpty)
        #expect(state.lastIndex == 50)
        #expect(state.append(Entry(term: 2, index: 51)) == .appended)
    }

    @Test func olderSnapshotIsIgnored() {
        var state = LogState()
        for entry in entries(1...10, term: 1) { _ = state.append(entry) }
        state.apply(snapshot: SnapshotMetadata(index: 6, term: 1))
        state.apply(snapshot: SnapshotMetadata(index: 3, term: 1))
        #expect(state.snapshot.index == 6)
        #expect(state.append(Entry(term: 1, index: 5)) == .stale)
    }

    /// After release, the oldest kept segment can start with an old marker and then entries well
    /// past it; a later marker closes the hole, and entries after the hole survive markers that
    /// fall inside it.
    @Test func holeAtReplayStartIsClosedByALaterSnapshot() {
        var state = LogState()
        state.apply(snapshot: SnapshotMetadata(index: 50, term: 1))
        #expect(state.append(Entry(term: 1, index: 90), allowingHole: true) == .appended)
        for entry in entries(91...120, term: 1) { _ = state.append(entry) }
        #expect(state.hasHole)
        state.apply(snapshot: SnapshotMetadata(index: 85, term: 1))
        #expect(state.hasHole)
        #expect(state.entries.count == 31)
        state.apply(snapshot: SnapshotMetadata(index: 95, term: 1))
        #expect(!state.hasHole)
        #expect(state.entries == entries(96...120, term: 1))
    }
}
