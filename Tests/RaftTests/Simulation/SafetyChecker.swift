import Raft

/// Checks the properties of Raft's Figure 3 as a run goes, incrementally so it can run after
/// every step: election safety, log matching, leader completeness and state machine safety.
/// Fed by the simulation (and, in tests, by hand with broken inputs to show it can fail).
struct SafetyChecker {
    struct Violation: Error, CustomStringConvertible {
        var description: String
    }

    /// The leader of each term seen so far.
    private(set) var leaders: [UInt64: NodeID] = [:]
    /// Every (index, term) ever written to a log, with what identifies the entry and the term
    /// before it. Log matching holds if no two logs ever disagree on these: an entry is then
    /// determined by (index, term), and by induction so is the whole log before it.
    private var entries: [EntryKey: EntryFacts] = [:]
    /// The chain hash of the state machine after each applied index.
    private var appliedChains: [UInt64: UInt64] = [:]
    /// For each term in which some node saw a commit index, the highest it saw and that
    /// entry's term. A leader of term T must hold every entry committed in terms before T.
    private var commitsByTerm: [UInt64: Position] = [:]

    struct Position {
        var index: UInt64
        var term: UInt64
    }

    private struct EntryKey: Hashable {
        var index: UInt64
        var term: UInt64
    }

    private struct EntryFacts: Equatable {
        var previousTerm: UInt64
        var kind: EntryKind
        var dataHash: UInt64
    }

    /// Election safety (paper §5.2): at most one leader per term.
    mutating func observeLeader(_ id: NodeID, term: UInt64) throws(Violation) {
        if let existing = leaders[term], existing != id {
            throw Violation(description: "election safety: \(existing) and \(id) both lead term \(term)")
        }
        leaders[term] = id
    }

    /// Log matching (paper §5.3): entries a node writes, with the term of the entry before
    /// the first of them.
    mutating func observeWrite(node: NodeID, entries written: [Entry], previousTerm: UInt64) throws(Violation) {
        var before = previousTerm
        for entry in written {
            let facts = EntryFacts(previousTerm: before, kind: entry.kind, dataHash: KVStore.hash(0, entry))
            let key = EntryKey(index: entry.index, term: entry.term)
            if let known = entries[key], known != facts {
                throw Violation(description: "log matching: node \(node) wrote \(entry) after term \(before), "
                    + "but another log has a different entry \(entry.term)/\(entry.index) (after term \(known.previousTerm))")
            }
            entries[key] = facts
            before = entry.term
        }
    }

    /// Leader completeness, recording side: node saw `commitIndex` (whose entry has
    /// `entryTerm`) while in `nodeTerm`.
    mutating func observeCommit(commitIndex: UInt64, entryTerm: UInt64, nodeTerm: UInt64) {
        if let known = commitsByTerm[nodeTerm], known.index >= commitIndex { return }
        commitsByTerm[nodeTerm] = Position(index: commitIndex, term: entryTerm)
    }

    /// Leader completeness (paper §5.4): the entry the leader of `term` must hold, the last
    /// one committed in an earlier term; nil if there is none after its snapshot (which holds
    /// only committed entries).
    func entryRequired(ofLeaderOf term: UInt64, snapshotIndex: UInt64) -> Position? {
        var highest = Position(index: 0, term: 0)
        for (commitTerm, commit) in commitsByTerm where commitTerm < term && commit.index > highest.index {
            highest = commit
        }
        return highest.index > snapshotIndex ? highest : nil
    }

    /// Leader completeness, checking side: `held` is the leader's term at the required index
    /// (nil if its log does not reach it).
    func checkLeaderCompleteness(leader: NodeID, term: UInt64, snapshotIndex: UInt64,
                                 termAt: (UInt64) -> UInt64?) throws(Violation) {
        guard let required = entryRequired(ofLeaderOf: term, snapshotIndex: snapshotIndex) else { return }
        let held = termAt(required.index)
        if held != required.term {
            throw Violation(description: "leader completeness: leader \(leader) of term \(term) has "
                + "\(held.map { "term \($0)" } ?? "no entry") at \(required.index), committed with term \(required.term)")
        }
    }

    /// State machine safety (paper §5.4.3): every node applies the same entry at each index,
    /// which the chain hash after each index captures (snapshots included).
    mutating func observeApplied(node: NodeID, index: UInt64, chain: UInt64) throws(Violation) {
        if let known = appliedChains[index], known != chain {
            throw Violation(description: "state machine safety: node \(node) applied a different history up to \(index)")
        }
        appliedChains[index] = chain
    }
}
