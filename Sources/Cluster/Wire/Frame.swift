import NIOCore
import Raft

/// One unit on the wire between agents: `[length: UInt32 big-endian][kind: UInt8][payload]`,
/// where `length` counts the payload only. Everything agents say to each other travels in
/// frames on one mutual-TLS connection per pair (DESIGN.md §10).
public struct Frame: Sendable, Hashable {
    /// What a frame carries. An unknown kind closes the connection: both ends run the same
    /// build, and a kind this build does not know is a peer it cannot talk to.
    public enum Kind: UInt8, Sendable, Hashable, CaseIterable {
        /// The first frame on a connection, from the side that dialed: who it is.
        case hello = 1
        /// A batch of Raft messages (`RaftBatch`).
        case raft = 2
        /// A joining agent's request for a node certificate (`JoinRequest`), on a join connection.
        case joinRequest = 3
        /// The answer to it or to a renewal (`JoinResponse`), after which the server closes
        /// the connection.
        case joinResponse = 4
        /// A member's request for a new certificate (`RenewRequest`), on a renewal connection.
        case renewRequest = 5
        /// A request from one member to another (`Call`), on their peer connection.
        case call = 6
        /// Its answer (`Reply`).
        case reply = 7
        /// A server forming a new cluster telling another what it knows (`FormationRequest`).
        case formationRequest = 8
        /// The answer (`FormationResponse`), after which the server closes the connection.
        case formationResponse = 9
    }

    /// Bytes of the header: the length and the kind.
    public static let headerBytes = 5

    public var kind: Kind
    public var payload: ByteBuffer

    public init(kind: Kind, payload: ByteBuffer) {
        self.kind = kind
        self.payload = payload
    }
}

/// Why bytes from a peer are not frames; each closes the connection with this as its reason.
public enum FrameError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The length is over the limit: a peer that sends it is broken or hostile, and reading on
    /// would buffer without bound.
    case oversized(length: Int, limit: Int)
    /// The kind byte is not one of `Frame.Kind`.
    case unknownKind(UInt8)
    /// The payload of a known kind does not decode.
    case malformed(kind: Frame.Kind, reason: String)
    /// A frame arrived that the connection's state does not allow (a second hello, a Raft
    /// batch before the hello).
    case unexpected(kind: Frame.Kind, reason: String)

    public var description: String {
        switch self {
        case .oversized(let length, let limit): "frame of \(length) bytes is over the limit of \(limit)"
        case .unknownKind(let kind): "unknown frame kind \(kind)"
        case .malformed(let kind, let reason): "malformed \(kind) frame: \(reason)"
        case .unexpected(let kind, let reason): "unexpected \(kind) frame: \(reason)"
        }
    }
}
