import AgentAPI
import Foundation
import Raft

/// Streams between agents over calls, pulled by the reader: an `open` call starts the stream
/// on the answering agent and answers a session id and a head; `pull` calls each answer what
/// was written since (waiting up to 10 s for something), until the end; `close` ends it early.
/// Relayed API streams (`events --follow`, `logs --follow` through a client) and another
/// node's instance output travel this way; a pulled stream needs no second channel and keeps
/// its own flow control (nothing is sent that was not asked for).
///
/// Payloads: open `[22][purpose][body]`, answered `[u64 session][head]`; pull `[23][u64]`,
/// answered `[0 more | 1 ended | 2 failed][data]` (a failure's data is its reason); close
/// `[24][u64]`, answered `[]`. Integers little-endian.
enum StreamCall {
    static let openKind: UInt8 = 22
    static let pullKind: UInt8 = 23
    static let closeKind: UInt8 = 24

    /// What a stream carries.
    enum Purpose: UInt8 {
        /// An API request relayed by a client (body: `ForwardedHTTPRequest` JSON; head: the
        /// `ForwardedHTTPResponse` JSON without its body; data: the response body).
        case api = 1
        /// Following an instance's output (body: `InstanceLogCall` JSON; data: JSON lines).
        case instanceLog = 2
    }

    /// How long a pull waits on the serving side for something to send.
    static let pullWait = Duration.seconds(10)

    static func isStreamKind(_ payload: [UInt8]) -> Bool {
        guard let kind = payload.first else { return false }
        return (openKind...closeKind).contains(kind)
    }

    /// The serving side: answers an open, pull or close from `caller`; `opener` starts what an
    /// open asks for and answers its head.
    static func answer(
        _ payload: [UInt8], from caller: NodeID, sessions: StreamSessions,
        opener: @Sendable (Purpose, [UInt8]) async throws -> (head: [UInt8], produce: @Sendable (@escaping @Sendable ([UInt8]) async -> Void) async throws -> Void)
    ) async throws -> [UInt8] {
        switch payload.first {
        case openKind:
            guard payload.count >= 2, let purpose = Purpose(rawValue: payload[1]) else { throw StreamCallError("a stream of an unknown purpose") }
            let (head, produce) = try await opener(purpose, Array(payload.dropFirst(2)))
            let id = try await sessions.open(owner: caller, produce)
            return LeaderRequest.bytes(id) + head
        case pullKind:
            let part = try await sessions.pull(try sessionID(payload), by: caller, within: pullWait)
            switch part.outcome {
            case nil: return [0] + part.data
            case .finished: return [1] + part.data
            case .failed(let reason): return [2] + Array(reason.utf8)
            }
        case closeKind:
            await sessions.close(try sessionID(payload), by: caller)
            return []
        default:
            throw StreamCallError("not a stream call")
        }
    }

    /// The reading side: opens a stream through `call` (bound to one agent: every pull must go
    /// where the stream is) and answers its head and its data as it comes. A reader that stops
    /// reading closes the stream there.
    static func open(
        _ purpose: Purpose, body: [UInt8], through call: @escaping @Sendable ([UInt8], Duration) async throws -> [UInt8]
    ) async throws -> (head: [UInt8], data: AsyncThrowingStream<[UInt8], any Error>) {
        let opened = try await call([openKind, purpose.rawValue] + body, .seconds(30))
        guard opened.count >= 8 else { throw StreamCallError("the answer to a stream's opening is \(opened.count) bytes, not a session") }
        let id = LeaderRequest.number(opened.prefix(8))
        let data = AsyncThrowingStream<[UInt8], any Error> { continuation in
            let reader = Task {
                do {
                    while !Task.isCancelled {
                        let part = try await call([pullKind] + LeaderRequest.bytes(id), pullWait + .seconds(20))
                        guard let state = part.first else { throw StreamCallError("an empty answer to a pull") }
                        let bytes = Array(part.dropFirst())
                        switch state {
                        case 0:
                            if !bytes.isEmpty { continuation.yield(bytes) }
                        case 1:
                            if !bytes.isEmpty { continuation.yield(bytes) }
                            return continuation.finish()
                        default:
                            throw StreamCallError("the stream failed where it was served: \(String(decoding: bytes, as: UTF8.self))")
                        }
                    }
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { termination in
                reader.cancel()
                if case .cancelled = termination {
                    Task { _ = try? await call([closeKind] + LeaderRequest.bytes(id), .seconds(5)) }
                }
            }
        }
        return (Array(opened.dropFirst(8)), data)
    }

    private static func sessionID(_ payload: [UInt8]) throws -> UInt64 {
        guard payload.count == 9 else { throw StreamCallError("a stream call without a session id") }
        return LeaderRequest.number(payload.dropFirst())
    }

}
