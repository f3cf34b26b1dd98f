import Glibc
import Synchronization
import Testing
import TestSupport

@testable import Supervisor

/// The watcher's pause and resume, with epoll refusing to take a descriptor back.
@Suite(.dedicatedThread, .timeLimit(.minutes(10))) struct DescriptorWatcherTests {
    final class Calls: Sendable {
        let count = Mutex(0)
    }

    @Test func aPausedDescriptorThatEpollDoesNotTakeBackIsTriedAgain() async throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        let (reader, writer) = (ends[0], ends[1])
        defer {
            close(reader)
            close(writer)
        }
        let watcher = try DescriptorWatcher(name: "resume-test")
        defer { watcher.stop() }
        let calls = Calls()
        let token = try watcher.add(reader) { _ in
            var byte: UInt8 = 0
            while read(reader, &byte, 1) == 1 {}
            calls.count.withLock { $0 += 1 }
        }
        #expect(fcntl(reader, F_SETFL, O_NONBLOCK) == 0)
        var one: UInt8 = 1
        #expect(write(writer, &one, 1) == 1)
        #expect(await eventually(within: .seconds(3)) { calls.count.withLock { $0 } >= 1 }, "the handler was never called")

        // Paused, and while paused the descriptor's number is made a regular file's, which
        // epoll refuses (EPERM) when the pause ends: it must be tried again, not forgotten.
        let pipeReader = dup(reader)
        defer { close(pipeReader) }
        let path = "/tmp/descriptor-watcher-test-\(getpid())"
        let file = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)
        try #require(file >= 0)
        defer {
            close(file)
            unlink(path)
        }
        watcher.pause(reader, token: token, for: .milliseconds(50))
        try #require(dup2(file, reader) == reader)
        usleep(400_000)  // several refused tries
        try #require(dup2(pipeReader, reader) == reader)
        let before = calls.count.withLock { $0 }
        #expect(write(writer, &one, 1) == 1)
        #expect(await eventually(within: .seconds(3)) { calls.count.withLock { $0 } > before }, "the descriptor was not watched again after epoll refused it once")
        watcher.remove(reader, token: token)
    }
}
