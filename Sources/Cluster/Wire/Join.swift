import NIOCore
import Raft

/// What an agent joining the cluster sends, on a join connection whose server it has checked
/// against its token's CA pin (so the secret goes to the cluster only): the token's id and
/// secret, who it is, and a certificate signing request for its own key.
public struct JoinRequest: Sendable, Hashable {
    static let version: UInt8 = 1

    /// A server takes part in Raft (as a learner first); a client runs services only.
    public enum Role: UInt8, Sendable, Hashable {
        case server = 1
        case client = 2
    }

    public var tokenID: String
    public var tokenSecret: String
    public var nodeName: String
    public var role: Role
    /// Where the other agents reach it: `host:port` of its cluster port.
    public var advertiseAddress: String
    /// A PKCS #10 request (DER) for the node's key, subject `CN=<nodeName>`.
    public var certificateRequestDER: [UInt8]

    public init(
        tokenID: String, tokenSecret: String, nodeName: String, role: Role, advertiseAddress: String, certificateRequestDER: [UInt8]
    ) {
        self.tokenID = tokenID
        self.tokenSecret = tokenSecret
        self.nodeName = nodeName
        self.role = role
        self.advertiseAddress = advertiseAddress
        self.certificateRequestDER = certificateRequestDER
    }

    public var frame: Frame {
        var payload = ByteBuffer()
        payload.writeInteger(Self.version)
        payload.writeShortString(tokenID)
        payload.writeShortString(tokenSecret)
        payload.writeShortString(nodeName)
        payload.writeInteger(role.rawValue)
        payload.writeShortString(advertiseAddress)
        payload.writeLongBytes(certificateRequestDER)
        return Frame(kind: .joinRequest, payload: payload)
    }

    public init(frame: Frame) throws(FrameError) {
        var payload = frame.payload
        guard payload.readInteger(as: UInt8.self) == Self.version else {
            throw .malformed(kind: .joinRequest, reason: "unsupported join request version")
        }
        tokenID = try payload.readShortString(kind: .joinRequest, field: "the token id")
        tokenSecret = try payload.readShortString(kind: .joinRequest, field: "the token secret")
        nodeName = try payload.readShortString(kind: .joinRequest, field: "the node name")
        guard let roleByte = payload.readInteger(as: UInt8.self), let role = Role(rawValue: roleByte) else {
            throw .malformed(kind: .joinRequest, reason: "the role is neither server nor client")
        }
        self.role = role
        advertiseAddress = try payload.readShortString(kind: .joinRequest, field: "the advertised address")
        certificateRequestDER = try payload.readLongBytes(kind: .joinRequest, field: "the certificate request")
        try payload.expectEnd(kind: .joinRequest)
    }
}

/// The server's answer to a `JoinRequest`: the node's id and certificate, or why not.
public enum JoinResponse: Sendable, Hashable {
    static let version: UInt8 = 1

    /// Admitted: the Raft id the cluster gave the node and its certificate (DER). The CA is
    /// not sent: the joining agent trusts only the one its token pins.
    /// A join's answer also lists the servers, so that a client knows whom to follow (the
    /// names their certificates must carry); a renewal's lists none.
    case admitted(nodeID: NodeID, certificateDER: [UInt8], servers: [ClusterPeer] = [])
    /// Refused, with a reason for the joining agent's operator.
    case refused(reason: String)
    /// Not decided: the server cannot answer now (no leader during an election, still
    /// starting, no CA yet). Unlike a refusal, asking again later may succeed.
    case unavailable(reason: String)

    public var frame: Frame {
        var payload = ByteBuffer()
        payload.writeInteger(Self.version)
        switch self {
        case .admitted(let nodeID, let certificateDER, let servers):
            payload.writeInteger(UInt8(0))
            payload.writeInteger(nodeID)
            payload.writeLongBytes(certificateDER)
            payload.writeInteger(UInt16(min(servers.count, Int(UInt16.max))))
            for server in servers.prefix(Int(UInt16.max)) {
                payload.writeInteger(server.id)
                payload.writeShortString(server.name)
                payload.writeShortString(server.host)
                payload.writeInteger(UInt16(clamping: server.port))
            }
        case .refused(let reason):
            payload.writeInteger(UInt8(1))
            payload.writeShortString(String(reason.utf8.prefix(4096)) ?? "refused")
        case .unavailable(let reason):
            payload.writeInteger(UInt8(2))
            payload.writeShortString(String(reason.utf8.prefix(4096)) ?? "unavailable")
        }
        return Frame(kind: .joinResponse, payload: payload)
    }

    public init(frame: Frame) throws(FrameError) {
        var payload = frame.payload
        guard payload.readInteger(as: UInt8.self) == Self.version else {
            throw .malformed(kind: .joinResponse, reason: "unsupported join response version")
        }
        switch payload.readInteger(as: UInt8.self) {
        case 0:
            guard let nodeID = payload.readInteger(as: UInt64.self), nodeID != 0 else {
                throw .malformed(kind: .joinResponse, reason: "no node id")
            }
            let certificate = try payload.readLongBytes(kind: .joinResponse, field: "the certificate")
            guard let count = payload.readInteger(as: UInt16.self) else {
                throw .malformed(kind: .joinResponse, reason: "no server count")
            }
            var servers: [ClusterPeer] = []
            for _ in 0..<count {
                guard let id = payload.readInteger(as: UInt64.self) else { throw .malformed(kind: .joinResponse, reason: "a server without an id") }
                let name = try payload.readShortString(kind: .joinResponse, field: "a server's name")
                let host = try payload.readShortString(kind: .joinResponse, field: "a server's host")
                guard let port = payload.readInteger(as: UInt16.self) else { throw .malformed(kind: .joinResponse, reason: "a server without a port") }
                servers.append(ClusterPeer(id: id, name: name, host: host, port: Int(port)))
            }
            self = .admitted(nodeID: nodeID, certificateDER: certificate, servers: servers)
        case 1:
            self = .refused(reason: try payload.readShortString(kind: .joinResponse, field: "the reason"))
        case 2:
            self = .unavailable(reason: try payload.readShortString(kind: .joinResponse, field: "the reason"))
        default:
            throw .malformed(kind: .joinResponse, reason: "the outcome is neither admitted, refused nor unavailable")
        }
        try payload.expectEnd(kind: .joinResponse)
    }
}
