// raft-wal-crasher: the victim of the WAL crash-safety test (Tests/RaftStorageTests).
//
//     raft-wal-crasher DIRECTORY SEGMENT_BYTES PROPOSERS
//
// Opens the WAL in DIRECTORY (recovering whatever a previous, killed run left), prints
// "ready LAST_INDEX", then appends entries from PROPOSERS concurrent tasks forever, printing
// "ack INDEX" once each entry is durable. Entry contents are a pure function of the index
// (`CrashWorkload.data(forIndex:)`), so the test can check every byte after a SIGKILL.
// Every 700th entry also records a snapshot marker 300 entries back, so that rollover and segment
// release run under the knife too.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Raft

/// Prints one line with a single write(2): lines up to PIPE_BUF bytes reach a pipe whole, so a
/// SIGKILL never leaves the test half an acknowledgement.
func emit(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    bytes.withUnsafeMutableBytes { buffer in
        guard let base = buffer.baseAddress else { return }
        _ = write(1, base, buffer.count)
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 4, let segmentBytes = Int(arguments[2]), let proposers = Int(arguments[3]) else {
    emit("usage: raft-wal-crasher DIRECTORY SEGMENT_BYTES PROPOSERS")
    exit(2)
}
do {
    let (log, recovered) = try WriteAheadLog.open(
        directory: arguments[1], options: WriteAheadLog.Options(segmentBytes: segmentBytes))
    let lastIndex = recovered.entries.last?.index ?? recovered.snapshot.index
    emit("ready \(lastIndex)")
    let sequencer = Sequencer(log: log, nextIndex: lastIndex + 1)
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<proposers {
            group.addTask {
                while true {
                    let (index, ticket) = try await sequencer.submitNext()
                    try await log.waitUntilDurable(ticket)
                    emit("ack \(index)")
                }
            }
        }
        try await group.waitForAll()
    }
} catch {
    emit("error \(error)")
    exit(1)
}
