@testable import Raft

/// What the simulation reads of a core after every event, in one call. The methods are
/// `mutating` only so that a core stored in a class is accessed in place: in a debug build a
/// non-mutating access to a stored struct copies it, every field retained and released.
extension RaftCore {
    struct SimulationView {
        var role: RaftRole
        var term: UInt64
        var commit: UInt64
        var commitTerm: UInt64
        var firstIndex: UInt64
        var hasReady: Bool
    }

    mutating func simulationView() -> SimulationView {
        SimulationView(role: role, term: term, commit: log.committed, commitTerm: log.termOrZero(at: log.committed),
                       firstIndex: log.firstIndex, hasReady: hasReady)
    }

    mutating func simulationTerm(at index: UInt64) -> UInt64? {
        try? log.term(at: index)
    }
}
