import NIOCore
import Raft

/// The dialing side's first frame: its Raft id and node name, which the acceptor checks against
/// the certificate the TLS handshake verified (a member cannot pose as another).
public struct Hello: Sendable, Hashable {
    /// The format version, so that a later one can be told apart.
    static let version: UInt8 = 1

    public var nodeID: NodeID
    public var nodeName: String

    public init(nodeID: NodeID, nodeName: String) {
        self.nodeID = nodeID
        self.nodeName = nodeName
    }

    public var frame: Frame {
        var payload = ByteBuffer()
        payload.writeInteger(Self.version)
        payload.writeInteger(nodeID)
        payload.writeShortString(nodeName)
        return Frame(kind: .hello, payload: payload)
    }

    public init(frame: Frame) throws(FrameError) {
        var payload = frame.payload
        guard let version = payload.readInteger(as: UInt8.self), version == Self.version else {
            throw .malformed(kind: .hello, reason: "unsupported hello version")
        }
        guard let nodeID = payload.readInteger(as: UInt64.self), nodeID != 0 else {
            throw .malformed(kind: .hello, reason: "expected a node id and a node name")
        }
        let name = try payload.readShortString(kind: .hello, field: "the node name")
        guard !name.isEmpty else { throw .malformed(kind: .hello, reason: "expected a node id and a node name") }
        try payload.expectEnd(kind: .hello)
        self.init(nodeID: nodeID, nodeName: name)
    }
}
