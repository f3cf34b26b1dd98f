import Raft

/// Hands out indexes and submits in the same critical section, so the WAL sees entries in index
/// order however the proposer tasks interleave.
actor Sequencer {
    private let log: WriteAheadLog
    private var nextIndex: UInt64

    init(log: WriteAheadLog, nextIndex: UInt64) {
        self.log = log
        self.nextIndex = nextIndex
    }

    func submitNext() throws -> (index: UInt64, ticket: WriteAheadLog.Ticket) {
        let index = nextIndex
        nextIndex += 1
        var records: [WALRecord] = [.entry(CrashWorkload.entry(forIndex: index))]
        records.append(.hardState(HardState(term: 1, vote: 1, commit: index - 1)))
        if index % 700 == 0 {
            records.append(.snapshot(SnapshotMetadata(index: index - 300, term: 1)))
        }
        return (index, try log.submit(records))
    }
}
