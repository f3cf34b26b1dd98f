import Synchronization
import Testing

@testable import Agent

/// Streams one agent serves another over calls: pulled by their owner only, ended once drained,
/// and a producer held back while its reader does not pull (a fixed amount of memory per
/// stream).
@Suite(.timeLimit(.minutes(2))) struct StreamSessionTests {
    @Test func theOwnerPullsEverythingThenTheEnd() async throws {
        let sessions = StreamSessions()
        let id = try await sessions.open(owner: 7) { write in
            for part in ["a", "b", "c"] { await write(Array(part.utf8)) }
        }
        await #expect(throws: StreamCallError.self) { _ = try await sessions.pull(id, by: 8, within: .milliseconds(10)) }
        var data: [UInt8] = []
        var outcome: PulledStream.Outcome?
        while outcome == nil {
            let part = try await sessions.pull(id, by: 7, within: .seconds(1))
            data += part.data
            outcome = part.outcome
        }
        #expect(String(decoding: data, as: UTF8.self) == "abc" && outcome == .finished)
        #expect(sessions.count == 0)
    }

    @Test func aProducerWaitsForItsReader() async throws {
        let sessions = StreamSessions()
        let written = Atomic<Int>(0)
        let chunk = [UInt8](repeating: 1, count: 64 << 10)
        let id = try await sessions.open(owner: 1) { write in
            while true {
                await write(chunk)
                written.add(chunk.count, ordering: .relaxed)
                if Task.isCancelled { return }
            }
        }
        // First the producer fills the buffer (which can take most of a minute in the full
        // suite, whose simulations fill Swift's pool: a fixed sleep here let it write on between
        // `held` and the pull), then it has time to write past it if nothing held it back.
        while written.load(ordering: .relaxed) < PulledStream.bufferLimit {
            try await Task.sleep(for: .milliseconds(10))
        }
        try await Task.sleep(for: .milliseconds(300))
        let held = written.load(ordering: .relaxed)
        #expect(held == PulledStream.bufferLimit, "the producer wrote \(held) bytes nobody pulled")
        let part = try await sessions.pull(id, by: 1, within: .seconds(1))
        #expect(part.data.count == held && part.outcome == nil)
        await sessions.close(id, by: 1)
        #expect(sessions.count == 0)
    }

    @Test func aFailureReachesTheReader() async throws {
        struct Broken: Error {}
        let sessions = StreamSessions()
        let id = try await sessions.open(owner: 1) { _ in throw Broken() }
        let part = try await sessions.pull(id, by: 1, within: .seconds(1))
        guard case .failed = part.outcome else { Issue.record("\(part)"); return }
    }
}
