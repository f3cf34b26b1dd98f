import NIOCore
import Raft

/// A server of a cluster being formed, as the others learn of it: its node name (which its
/// certificate carries) and where its cluster port is reached.
public struct FormingServer: Sendable, Hashable, Codable {
    public var name: String
    public var address: String

    public init(name: String, address: String) {
        self.name = name
        self.address = address
    }
}

/// A server of a formed cluster: a `FormingServer` with the Raft id the formation gave it.
public struct FormedServer: Sendable, Hashable, Codable {
    public var id: NodeID
    public var name: String
    public var address: String

    public init(id: NodeID, name: String, address: String) {
        self.id = id
        self.name = name
        self.address = address
    }
}

/// What a server forming a cluster tells another: how many servers it waits for, and every
/// server it knows of, itself first (the name the certificate it presented carries).
public struct FormationRequest: Sendable, Hashable {
    static let version: UInt8 = 1

    public var expect: Int
    public var known: [FormingServer]

    public init(expect: Int, known: [FormingServer]) {
        self.expect = expect
        self.known = known
    }

    public var frame: Frame {
        var payload = ByteBuffer()
        payload.writeInteger(Self.version)
        payload.writeInteger(UInt16(clamping: expect))
        payload.writeFormingServers(known)
        return Frame(kind: .formationRequest, payload: payload)
    }

    public init(frame: Frame) throws(FrameError) {
        var payload = frame.payload
        guard payload.readInteger(as: UInt8.self) == Self.version else {
            throw .malformed(kind: .formationRequest, reason: "unsupported formation request version")
        }
        guard let expect = payload.readInteger(as: UInt16.self), expect > 0 else {
            throw .malformed(kind: .formationRequest, reason: "no expected server count")
        }
        self.expect = Int(expect)
        known = try payload.readFormingServers(kind: .formationRequest)
        guard !known.isEmpty else { throw .malformed(kind: .formationRequest, reason: "the asking server is not listed") }
        try payload.expectEnd(kind: .formationRequest)
    }
}

/// The answer to a `FormationRequest`.
public enum FormationResponse: Sendable, Hashable {
    static let version: UInt8 = 1

    /// Still forming: every server the answering one knows of now (the asker's list merged in),
    /// itself first.
    case forming(known: [FormingServer])
    /// Formed: the servers and their ids. An asker in the list takes it as its own; one not in
    /// it was left out, and must join instead.
    case formed(servers: [FormedServer])
    /// The two cannot form one cluster (a different expected count, a name taken twice).
    case refused(reason: String)

    public var frame: Frame {
        var payload = ByteBuffer()
        payload.writeInteger(Self.version)
        switch self {
        case .forming(let known):
            payload.writeInteger(UInt8(0))
            payload.writeFormingServers(known)
        case .formed(let servers):
            payload.writeInteger(UInt8(1))
            payload.writeInteger(UInt16(clamping: servers.count))
            for server in servers.prefix(Int(UInt16.max)) {
                payload.writeInteger(server.id)
                payload.writeShortString(server.name)
                payload.writeShortString(server.address)
            }
        case .refused(let reason):
            payload.writeInteger(UInt8(2))
            payload.writeShortString(String(reason.utf8.prefix(4096)) ?? "refused")
        }
        return Frame(kind: .formationResponse, payload: payload)
    }

    public init(frame: Frame) throws(FrameError) {
        var payload = frame.payload
        guard payload.readInteger(as: UInt8.self) == Self.version else {
            throw .malformed(kind: .formationResponse, reason: "unsupported formation response version")
        }
        switch payload.readInteger(as: UInt8.self) {
        case 0:
            self = .forming(known: try payload.readFormingServers(kind: .formationResponse))
        case 1:
            guard let count = payload.readInteger(as: UInt16.self) else {
                throw .malformed(kind: .formationResponse, reason: "no server count")
            }
            var servers: [FormedServer] = []
            for _ in 0..<count {
                guard let id = payload.readInteger(as: UInt64.self), id != 0 else {
                    throw .malformed(kind: .formationResponse, reason: "a server without an id")
                }
                let name = try payload.readShortString(kind: .formationResponse, field: "a server's name")
                let address = try payload.readShortString(kind: .formationResponse, field: "a server's address")
                servers.append(FormedServer(id: id, name: name, address: address))
            }
            self = .formed(servers: servers)
        case 2:
            self = .refused(reason: try payload.readShortString(kind: .formationResponse, field: "the reason"))
        default:
            throw .malformed(kind: .formationResponse, reason: "the outcome is neither forming, formed nor refused")
        }
        try payload.expectEnd(kind: .formationResponse)
    }
}

extension ByteBuffer {
    fileprivate mutating func writeFormingServers(_ servers: [FormingServer]) {
        writeInteger(UInt16(clamping: servers.count))
        for server in servers.prefix(Int(UInt16.max)) {
            writeShortString(server.name)
            writeShortString(server.address)
        }
    }

    fileprivate mutating func readFormingServers(kind: Frame.Kind) throws(FrameError) -> [FormingServer] {
        guard let count = readInteger(as: UInt16.self) else { throw .malformed(kind: kind, reason: "no server count") }
        var servers: [FormingServer] = []
        for _ in 0..<count {
            let name = try readShortString(kind: kind, field: "a server's name")
            let address = try readShortString(kind: kind, field: "a server's address")
            servers.append(FormingServer(name: name, address: address))
        }
        return servers
    }
}
