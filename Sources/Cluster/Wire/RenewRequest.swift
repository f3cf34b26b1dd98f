import NIOCore
import Raft

/// What a member sends to renew its certificate, on a connection where it presented the
/// current one: its id, where it is reached, and a certificate signing request for a new key
/// (a renewal also replaces the key). The answer is a `JoinResponse`.
public struct RenewRequest: Sendable, Hashable {
    static let version: UInt8 = 1

    public var nodeID: NodeID
    /// `host:port` of its cluster port, for the certificate's address.
    public var advertiseAddress: String
    public var certificateRequestDER: [UInt8]

    public init(nodeID: NodeID, advertiseAddress: String, certificateRequestDER: [UInt8]) {
        self.nodeID = nodeID
        self.advertiseAddress = advertiseAddress
        self.certificateRequestDER = certificateRequestDER
    }

    public var frame: Frame {
        var payload = ByteBuffer()
        payload.writeInteger(Self.version)
        payload.writeInteger(nodeID)
        payload.writeShortString(advertiseAddress)
        payload.writeLongBytes(certificateRequestDER)
        return Frame(kind: .renewRequest, payload: payload)
    }

    public init(frame: Frame) throws(FrameError) {
        var payload = frame.payload
        guard payload.readInteger(as: UInt8.self) == Self.version else {
            throw .malformed(kind: .renewRequest, reason: "unsupported renew request version")
        }
        guard let nodeID = payload.readInteger(as: UInt64.self), nodeID != 0 else {
            throw .malformed(kind: .renewRequest, reason: "no node id")
        }
        self.nodeID = nodeID
        advertiseAddress = try payload.readShortString(kind: .renewRequest, field: "the advertised address")
        certificateRequestDER = try payload.readLongBytes(kind: .renewRequest, field: "the certificate request")
        try payload.expectEnd(kind: .renewRequest)
    }
}
