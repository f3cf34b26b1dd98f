import Testing
import TestSupport
@testable import Raft

@Suite struct MessageCodecTests {
    static let metadata = SnapshotMetadata(index: 1_000, term: 7, confState: ConfState(voters: [1, 2, 3], learners: [9]))

    /// One message of every kind, with values that need multi-byte varints.
    static let samples: [Message] = [
        Message(from: 1, to: 2, term: 5, payload: .preVote(VoteRequest(lastLogIndex: 300, lastLogTerm: 4))),
        Message(from: 2, to: 1, term: 5, payload: .preVoteResponse(VoteResponse(granted: true))),
        Message(from: 1, to: 3, term: 5, payload: .vote(VoteRequest(lastLogIndex: .max, lastLogTerm: 4, leadershipTransfer: true))),
        Message(from: 3, to: 1, term: 5, payload: .voteResponse(VoteResponse(granted: false))),
        Message(from: 1, to: 2, term: 5, payload: .append(AppendRequest(
            prevLogIndex: 99, prevLogTerm: 4,
            entries: [Entry(term: 4, index: 100, data: Array("hello".utf8)),
                      Entry(term: 5, index: 101, kind: .configChange, data: ConfChange(.addLearner, 9).encoded()),
                      Entry(term: 5, index: 102)],
            commit: 98))),
        Message(from: 2, to: 1, term: 5, payload: .appendResponse(AppendResponse(index: 102))),
        Message(from: 2, to: 1, term: 5, payload: .appendResponse(AppendResponse(index: 99, rejected: true, hintIndex: 50, hintTerm: 3))),
        Message(from: 1, to: 2, term: 5, payload: .heartbeat(Heartbeat(commit: 101, readRound: 17))),
        Message(from: 2, to: 1, term: 5, payload: .heartbeatResponse(HeartbeatResponse(readRound: 17))),
        Message(from: 1, to: 2, term: 7, payload: .snapshotChunk(SnapshotChunk(
            metadata: metadata, offset: 4_096, totalBytes: 10_000, data: Array(repeating: 0xAB, count: 200)))),
        Message(from: 2, to: 1, term: 7, payload: .snapshotChunkResponse(SnapshotChunkResponse(snapshotIndex: 1_000, receivedBytes: 4_296))),
        Message(from: 1, to: 2, term: 7, payload: .timeoutNow),
        Message(from: 2, to: 1, term: 7, payload: .readIndex(ReadIndexRequest(context: [0, 1, 2, 255]))),
        Message(from: 1, to: 2, term: 7, payload: .readIndexResponse(ReadIndexResponse(index: 101, context: []))),
    ]

    @Test(arguments: samples)
    func roundTrips(_ message: Message) throws {
        let bytes = message.encoded()
        #expect(try Message(decoding: bytes) == message)
    }

    @Test(arguments: samples)
    func everyTruncationThrows(_ message: Message) {
        let bytes = message.encoded()
        for length in 0..<bytes.count {
            #expect(throws: MessageDecodingError.self) { try Message(decoding: Array(bytes.prefix(length))) }
        }
    }

    @Test(arguments: samples)
    func trailingBytesThrow(_ message: Message) {
        #expect(throws: MessageDecodingError.trailingBytes(count: 1)) { try Message(decoding: message.encoded() + [0]) }
    }

    @Test func rejectsUnknownVersionKindAndValues() {
        #expect(throws: MessageDecodingError.unsupportedVersion(9)) { try Message(decoding: [9, 1, 1, 2, 3]) }
        #expect(throws: MessageDecodingError.unknownKind(tag: 99, offset: 1)) { try Message(decoding: [1, 99, 1, 2, 3]) }
        // A vote response whose bool is 2.
        #expect(throws: MessageDecodingError.invalidValue(field: "bool", value: 2, offset: 5)) {
            try Message(decoding: [1, 4, 1, 2, 3, 2])
        }
        // A varint of eleven bytes.
        #expect(throws: MessageDecodingError.malformedVarint(offset: 2)) {
            try Message(decoding: [1, 12] + Array(repeating: 0xFF, count: 10) + [1])
        }
        // An append claiming a billion entries in a few bytes must not allocate them.
        var writer = ByteWriter()
        for byte: UInt8 in [1, 5] { writer.writeByte(byte) }
        for value: UInt64 in [1, 2, 3, 10, 2, 9, 1_000_000_000] { writer.writeVarint(value) }
        #expect(throws: MessageDecodingError.self) { try Message(decoding: writer.bytes) }
    }

    /// Random bytes, and valid messages with random bytes flipped: decoding either throws or
    /// yields a message; it never traps.
    @Test(.cpuBound) func garbageNeverCrashes() {
        var random = SplitMix64(seed: 7)
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int(random.next() % 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                bytes = Self.samples[Int(random.next() % UInt64(Self.samples.count))].encoded()
                for _ in 0..<3 {
                    let position = Int(random.next() % UInt64(bytes.count))
                    bytes[position] = UInt8(truncatingIfNeeded: random.next())
                }
            }
            if let message = try? Message(decoding: bytes) {
                // Whatever decodes must encode back to something that decodes the same.
                let again = try? Message(decoding: message.encoded())
                #expect(again == message)
            }
        }
    }

    @Test func confChangeRoundTripsAndRejectsGarbage() throws {
        for change in [ConfChange(.addVoter, 4), ConfChange(.addLearner, 300), ConfChange(.removeNode, .max)] {
            #expect(try ConfChange(decoding: change.encoded()) == change)
        }
        #expect(throws: MessageDecodingError.self) { try ConfChange(decoding: []) }
        #expect(throws: MessageDecodingError.self) { try ConfChange(decoding: [7, 1]) }
        #expect(throws: MessageDecodingError.self) { try ConfChange(decoding: [1, 0]) }
        #expect(throws: MessageDecodingError.self) { try ConfChange(decoding: [1, 1, 1]) }
    }
}
