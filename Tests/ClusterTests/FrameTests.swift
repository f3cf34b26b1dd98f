import Foundation
import NIOCore
import Testing
import TestSupport
@testable import Cluster
@testable import Raft

/// The wire format: frames split at their lengths whatever the chunking, Raft batches round
/// trip, and bytes that are not frames are refused with a reason, never a crash.
@Suite struct FrameTests {
    static func message(_ index: UInt64) -> Message {
        Message(from: 1, to: 2, term: 3, payload: .append(AppendRequest(
            prevLogIndex: index, prevLogTerm: 3, entries: [Entry(term: 3, index: index + 1, data: Array("entry \(index)".utf8))],
            commit: index)))
    }

    @Test func framesSplitAtTheirLengthsHoweverTheBytesArrive() throws {
        let messages = (1...20).map { Self.message(UInt64($0)) }
        var stream = ByteBuffer()
        FrameEncoder.append(Hello(nodeID: 7, nodeName: "node-7").frame, to: &stream)
        FrameEncoder.append(RaftBatch.frame(messages), to: &stream)
        FrameEncoder.append(RaftBatch.frame([]), to: &stream)
        let bytes = Array(stream.readableBytesView)
        for chunk in [1, 3, 7, 64, bytes.count] {
            var buffer = ByteBuffer()
            var frames: [Frame] = []
            for start in stride(from: 0, to: bytes.count, by: chunk) {
                buffer.writeBytes(bytes[start..<min(start + chunk, bytes.count)])
                while let frame = try FrameDecoder.nextFrame(from: &buffer, maximumPayloadBytes: 1 << 20) { frames.append(frame) }
            }
            #expect(frames.map(\.kind) == [.hello, .raft, .raft], "chunk \(chunk)")
            #expect(try Hello(frame: frames[0]) == Hello(nodeID: 7, nodeName: "node-7"))
            #expect(try RaftBatch.messages(from: frames[1]) == messages)
            #expect(try RaftBatch.messages(from: frames[2]).isEmpty)
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func joinAndRenewalFramesRoundTrip() throws {
        let request = JoinRequest(
            tokenID: "abc123", tokenSecret: "0123456789abcdefghijklmnopqrstuv", nodeName: "node-7", role: .client,
            advertiseAddress: "[fd00::7]:7946", certificateRequestDER: Array(0...255))
        #expect(try JoinRequest(frame: request.frame) == request)
        for response in [JoinResponse.admitted(nodeID: 9, certificateDER: [1, 2, 3]), .refused(reason: "the join token is wrong"), .unavailable(reason: "no leader yet")] {
            #expect(try JoinResponse(frame: response.frame) == response)
        }
        let renewal = RenewRequest(nodeID: 3, advertiseAddress: "10.0.0.3:7946", certificateRequestDER: [0x30, 0])
        #expect(try RenewRequest(frame: renewal.frame) == renewal)
        let call = Call(id: .max, payload: Array(0...255))
        #expect(try Call(frame: call.frame) == call)
        for reply in [Reply(id: 1, outcome: .answered([])), Reply(id: 2, outcome: .failed("no leader"))] {
            #expect(try Reply(frame: reply.frame) == reply)
        }
        // A field that runs past the frame is malformed, whatever it claims.
        var truncated = request.frame
        truncated.payload = truncated.payload.getSlice(at: 0, length: truncated.payload.readableBytes - 1)!
        #expect(throws: FrameError.self) { try JoinRequest(frame: truncated) }
    }

    @Test func anOversizedLengthIsRefusedBeforeItsBytesArrive() {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(1 << 30))
        buffer.writeInteger(Frame.Kind.raft.rawValue)
        #expect(throws: FrameError.oversized(length: 1 << 30, limit: 1 << 20)) {
            _ = try FrameDecoder.nextFrame(from: &buffer, maximumPayloadBytes: 1 << 20)
        }
    }

    @Test func anUnknownKindIsRefused() {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(0))
        buffer.writeInteger(UInt8(99))
        #expect(throws: FrameError.unknownKind(99)) { _ = try FrameDecoder.nextFrame(from: &buffer, maximumPayloadBytes: 1 << 20) }
    }

    @Test(arguments: [
        [UInt8](),  // no count
        [0, 0, 0, 9],  // 9 messages announced in no bytes
        [0, 0, 0, 1, 0, 0, 0, 50, 1, 2],  // a message longer than the frame
        [0, 0, 0, 1, 0, 0, 0, 2, 1, 99],  // a message that does not decode
        [0, 0, 0, 0, 7],  // bytes after the last message
    ])
    func malformedRaftBatchesAreRefused(payload: [UInt8]) {
        let frame = Frame(kind: .raft, payload: ByteBuffer(bytes: payload))
        #expect(throws: FrameError.self) { _ = try RaftBatch.messages(from: frame) }
    }

    @Test func malformedHellosAreRefused() {
        for payload: [UInt8] in [[], [2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 65], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 65], [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5, 65]] {
            #expect(throws: FrameError.self) { _ = try Hello(frame: Frame(kind: .hello, payload: ByteBuffer(bytes: payload))) }
        }
    }

    /// Random bytes, and valid frames with random bytes flipped, through every decoder: each
    /// either decodes or throws a `FrameError`; nothing traps. `CLUSTER_FUZZ_ITERATIONS` runs more.
    @Test(.cpuBound) func randomBytesNeverCrashTheDecoders() throws {
        let iterations = Int(ProcessInfo.processInfo.environment["CLUSTER_FUZZ_ITERATIONS"] ?? "") ?? 20_000
        var random = SplitMix64(seed: 0xF4A3)
        // Valid frames of every kind, to flip bytes in: the flips reach past each decoder's
        // first checks into its fields.
        let templates = [
            RaftBatch.frame((1...5).map { Self.message(UInt64($0)) }),
            Hello(nodeID: 7, nodeName: "node-7").frame,
            JoinRequest(
                tokenID: "abc123", tokenSecret: "0123456789abcdefghijklmnopqrstuv", nodeName: "node-7", role: .server,
                advertiseAddress: "10.0.0.7:7946", certificateRequestDER: Array(repeating: 0x30, count: 40)
            ).frame,
            JoinResponse.admitted(nodeID: 7, certificateDER: Array(repeating: 0x30, count: 40)).frame,
            JoinResponse.refused(reason: "no").frame,
            RenewRequest(nodeID: 7, advertiseAddress: "10.0.0.7:7946", certificateRequestDER: [0x30, 0x03, 1, 2, 3]).frame,
            Call(id: 9, payload: [1, 2, 3]).frame,
            Reply(id: 9, outcome: .answered([4, 5])).frame,
            Reply(id: 9, outcome: .failed("not the leader")).frame,
            FormationRequest(expect: 3, known: [FormingServer(name: "alpha", address: "10.0.0.1:4647")]).frame,
            FormationResponse.forming(known: [FormingServer(name: "beta", address: "10.0.0.2:4647")]).frame,
            FormationResponse.formed(servers: [FormedServer(id: 1, name: "alpha", address: "10.0.0.1:4647")]).frame,
        ].map { frame in
            var buffer = ByteBuffer()
            FrameEncoder.append(frame, to: &buffer)
            return Array(buffer.readableBytesView)
        }
        var decoded = 0
        for iteration in 0..<iterations {
            var bytes: [UInt8]
            if iteration % 2 == 0 {
                bytes = (0..<Int(random.next() % 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                bytes = templates[iteration / 2 % templates.count]
                for _ in 0..<(1 + Int(random.next() % 4)) {
                    bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
                }
            }
            var buffer = ByteBuffer(bytes: bytes)
            do {
                while let frame = try FrameDecoder.nextFrame(from: &buffer, maximumPayloadBytes: 4096) {
                    switch frame.kind {
                    case .hello: _ = try Hello(frame: frame)
                    case .raft: _ = try RaftBatch.messages(from: frame)
                    case .joinRequest: _ = try JoinRequest(frame: frame)
                    case .joinResponse: _ = try JoinResponse(frame: frame)
                    case .renewRequest: _ = try RenewRequest(frame: frame)
                    case .call: _ = try Call(frame: frame)
                    case .reply: _ = try Reply(frame: frame)
                    case .formationRequest: _ = try FormationRequest(frame: frame)
                    case .formationResponse: _ = try FormationResponse(frame: frame)
                    }
                    decoded += 1
                }
            } catch {
                // Refused, as it should be: the connection would close.
            }
        }
        #expect(decoded > 0, "no input decoded at all: the fuzz exercises only the refusals")
    }
}
