import Foundation
import Raft

/// What makes this agent a member of its cluster, kept under one directory (mode 0700):
///
/// * `member`: `id=<Raft id>` and `role=server|client`, one per line;
/// * `node.pem`, `node-key.pem` (0600): its certificate (then the CA's) and key; while a
///   renewal is being saved, `node-key.previous.pem` (0600), the key it replaces;
/// * on a server of a cluster formed with `--bootstrap-expect`: `formation` (JSON), the
///   servers that formed it and their ids, which are its first voters;
/// * on a server holding the CA (the bootstrap server makes it; every other server receives
///   it from one that has it, ``adopt(_:token:in:)``): `ca.pem`, `ca-key.pem` (0600), and
///   `join-token` (0600), the token joins must carry now.
///
/// Written so that a crash leaves either the old or the new file (`SecurityFile`); `member` is
/// written last, so a directory without it holds no finished identity.
public struct ClusterIdentity: Sendable {
    public var nodeID: NodeID
    public var role: JoinRequest.Role
    public var credentials: NodeCredentials
    /// The CA, on a server that holds it.
    public var ca: ClusterCA?
    /// The current join token, where `ca` is.
    public var joinToken: JoinToken?
    /// The servers that formed the cluster together (`--bootstrap-expect`), this one among them.
    public var formation: [FormedServer]?

    public init(
        nodeID: NodeID, role: JoinRequest.Role, credentials: NodeCredentials, ca: ClusterCA? = nil, joinToken: JoinToken? = nil,
        formation: [FormedServer]? = nil
    ) {
        self.nodeID = nodeID
        self.role = role
        self.credentials = credentials
        self.ca = ca
        self.joinToken = joinToken
        self.formation = formation
    }

    static let memberFileName = "member"
    public static let tokenFileName = "join-token"
    static let formationFileName = "formation"

    /// The first server of a new cluster: a new CA for `clusterID`, a certificate for node 1,
    /// a join token; saved into `directory`.
    public static func bootstrap(
        directory: String, clusterID: String, nodeName: String, ipAddresses: [String], now: Date = Date(),
        certificateLifetime: Duration = ClusterCA.defaultNodeCertificateLifetime
    ) throws(ClusterSecurityError) -> ClusterIdentity {
        let ca = try ClusterCA.create(clusterID: clusterID, now: now)
        let credentials = try ca.issueNodeCredentials(nodeName: nodeName, ipAddresses: ipAddresses, now: now, lifetime: certificateLifetime)
        let identity = ClusterIdentity(
            nodeID: 1, role: .server, credentials: credentials, ca: ca, joinToken: JoinToken.generate(caPin: ca.pin))
        try identity.save(to: directory)
        return identity
    }

    /// The identity saved in `directory`, or nil when none was finished there.
    public static func load(from directory: String) throws(ClusterSecurityError) -> ClusterIdentity? {
        let memberPath = SecurityFile.path(directory, memberFileName)
        guard SecurityFile.exists(memberPath) else { return nil }
        let (nodeID, role) = try parseMember(SecurityFile.readText(memberPath), path: memberPath)
        let credentials = try NodeCredentials.load(from: directory)
        var ca: ClusterCA?
        var token: JoinToken?
        if ClusterCA.exists(in: directory) {
            (ca, token) = try loadAuthority(from: directory)
        }
        var formation: [FormedServer]?
        let formationPath = SecurityFile.path(directory, formationFileName)
        if SecurityFile.exists(formationPath) {
            do {
                formation = try JSONDecoder().decode([FormedServer].self, from: Data(SecurityFile.readText(formationPath).utf8))
            } catch let error as ClusterSecurityError {
                throw error
            } catch {
                throw .unreadableFile(path: formationPath, reason: "not a list of formed servers: \(error)")
            }
        }
        return ClusterIdentity(nodeID: nodeID, role: role, credentials: credentials, ca: ca, joinToken: token, formation: formation)
    }

    /// The CA and the join token kept in `directory` (`ca.pem`, `ca-key.pem`, `join-token`):
    /// a server's, or the ones an operator made for servers to form a cluster with
    /// (`deployctl cluster ca create`).
    public static func loadAuthority(from directory: String) throws(ClusterSecurityError) -> (ClusterCA, JoinToken) {
        let ca = try ClusterCA.load(from: directory)
        let tokenPath = SecurityFile.path(directory, tokenFileName)
        let token: JoinToken
        do {
            token = try JoinToken(parsing: try SecurityFile.readText(tokenPath))
        } catch let error as JoinTokenError {
            throw .unreadableFile(path: tokenPath, reason: "\(error)")
        } catch let error as ClusterSecurityError {
            throw error
        } catch {
            throw .unreadableFile(path: tokenPath, reason: "\(error)")
        }
        guard token.caPin == ca.pin else {
            throw .unreadableFile(path: tokenPath, reason: "the token pins another CA than \(SecurityFile.path(directory, ClusterCA.certificateFileName))")
        }
        return (ca, token)
    }

    /// A new CA for `clusterID` and a join token pinning it, saved into `directory`: what an
    /// operator gives every server that forms a cluster with `--bootstrap-expect`.
    public static func createAuthority(in directory: String, clusterID: String, now: Date = Date()) throws(ClusterSecurityError) -> JoinToken {
        let ca = try ClusterCA.create(clusterID: clusterID, now: now)
        let token = JoinToken.generate(caPin: ca.pin)
        try SecurityFile.makeDirectory(directory)
        try ca.save(to: directory)
        try SecurityFile.writeAtomically(
            Array((token.encoded + "\n").utf8), to: SecurityFile.path(directory, tokenFileName), mode: SecurityFile.privateKeyMode)
        return token
    }

    /// Saves everything into `directory`, the member file last.
    public func save(to directory: String) throws(ClusterSecurityError) {
        try SecurityFile.makeDirectory(directory)
        if let ca { try ca.save(to: directory) }
        if let joinToken { try saveToken(joinToken, in: directory) }
        try credentials.save(to: directory)
        if let formation {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let bytes: Data
            do {
                bytes = try encoder.encode(formation)
            } catch {
                throw .encoding(reason: "the formation: \(error)")
            }
            try SecurityFile.writeAtomically(
                Array(bytes), to: SecurityFile.path(directory, Self.formationFileName), mode: SecurityFile.certificateMode)
        }
        let member = "id=\(nodeID)\nrole=\(role == .server ? "server" : "client")\n"
        try SecurityFile.writeAtomically(
            Array(member.utf8), to: SecurityFile.path(directory, Self.memberFileName), mode: SecurityFile.certificateMode)
    }

    /// Takes the cluster CA another server shared, with the current join token, and saves
    /// them: the token first, then the CA's key, its certificate last (its presence is what
    /// marks a directory as holding the CA, see ``load(from:)``).
    public mutating func adopt(_ ca: ClusterCA, token: JoinToken, in directory: String) throws(ClusterSecurityError) {
        try saveToken(token, in: directory)
        try ca.save(to: directory)
        self.ca = ca
        joinToken = token
    }

    /// Saves `token` as the current one (a rotation made on another server).
    public mutating func takeToken(_ token: JoinToken, in directory: String) throws(ClusterSecurityError) {
        try saveToken(token, in: directory)
        joinToken = token
    }

    /// Takes renewed credentials and saves them (key first).
    public mutating func replaceCredentials(_ renewed: NodeCredentials, in directory: String) throws(ClusterSecurityError) {
        try renewed.save(to: directory)
        credentials = renewed
    }

    private func saveToken(_ token: JoinToken, in directory: String) throws(ClusterSecurityError) {
        try SecurityFile.writeAtomically(
            Array((token.encoded + "\n").utf8), to: SecurityFile.path(directory, Self.tokenFileName), mode: SecurityFile.privateKeyMode)
    }

    static func parseMember(_ text: String, path: String) throws(ClusterSecurityError) -> (NodeID, JoinRequest.Role) {
        var nodeID: NodeID?
        var role: JoinRequest.Role?
        for line in text.split(separator: "\n") where !line.isEmpty {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            switch (parts.first, parts.count == 2 ? parts[1] : nil) {
            case ("id", let value?):
                guard let id = NodeID(value), id != 0 else { throw .unreadableFile(path: path, reason: "id=\(value) is not a node id (1 or more)") }
                nodeID = id
            case ("role", "server"?): role = .server
            case ("role", "client"?): role = .client
            default:
                throw .unreadableFile(path: path, reason: "unexpected line \"\(line)\" (expected id=<number> and role=server|client)")
            }
        }
        guard let nodeID, let role else { throw .unreadableFile(path: path, reason: "needs both id=<number> and role=server|client") }
        return (nodeID, role)
    }
}

extension ClusterIdentity {
    /// Joins through `host:port` with `token` and saves the identity into `directory`; also
    /// answers the servers the admitting server listed.
    public static func join(
        directory: String, host: String, port: Int, token: JoinToken, nodeName: String, role: JoinRequest.Role,
        advertiseAddress: String, timeout: Duration = .seconds(10)
    ) async throws -> (identity: ClusterIdentity, servers: [ClusterPeer]) {
        let joined = try await ClusterJoin.join(
            host: host, port: port, token: token, nodeName: nodeName, role: role, advertiseAddress: advertiseAddress, timeout: timeout)
        let identity = ClusterIdentity(nodeID: joined.nodeID, role: role, credentials: joined.credentials, ca: nil, joinToken: nil)
        try identity.save(to: directory)
        return (identity, joined.servers)
    }
}
