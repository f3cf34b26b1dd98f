import Raft

/// How far a server started with `--bootstrap-expect N` is in forming a new cluster with the
/// others: whom it knows of, and what each of them last said it knows.
///
/// The servers tell each other every server they know of (the lists merge both ways), so
/// each learns of all from any one address. A server decides once it knows exactly N servers
/// and every other one of them has said it knows exactly those N: then each server's list
/// only grows, so any two servers that decide, decide the same N (a server that could decide
/// on other names would have had to say a list without some name it had already said). The
/// ids are the names in order, 1…N, so every server derives the same ones without another
/// round. A server that hears of a formation already made takes it if it is in it.
public struct FormationProgress: Sendable {
    public let local: FormingServer
    public let expect: Int
    /// Every server known of, by name (lowercased: host names compare without case).
    private var known: [String: FormingServer]
    /// What each other server last said it knows, by name.
    private var reports: [String: Set<String>] = [:]
    /// Set once decided, or taken from a server that had.
    public private(set) var formed: [FormedServer]?
    /// Set when what was heard rules a formation out; nothing is decided after it.
    public private(set) var failure: FormationError?

    public init(local: FormingServer, expect: Int) {
        self.local = local
        self.expect = expect
        known = [Self.key(local.name): local]
    }

    /// Every server known of, this one first, then by name.
    public var knownServers: [FormingServer] {
        [local] + known.values.filter { Self.key($0.name) != Self.key(local.name) }.sorted { $0.name < $1.name }
    }

    /// Takes the request of another forming server: what it knows, which is also what it says
    /// it knows. Answers what this one knows now, or that they cannot form one cluster.
    public mutating func answer(_ request: FormationRequest, askerName: String) -> FormationResponse {
        if let formed { return .formed(servers: formed) }
        if let failure { return .refused(reason: "\(local.name) cannot form the cluster: \(failure)") }
        guard request.expect == expect else {
            return .refused(reason: "\(local.name) waits for \(expect) servers (--bootstrap-expect \(expect)), \(askerName) for \(request.expect): give every server the same count")
        }
        guard let asker = request.known.first, Self.key(asker.name) == Self.key(askerName) else {
            return .refused(reason: "the request must list the asking server (\(askerName)) first")
        }
        heard(from: askerName, knows: request.known)
        if let failure { return .refused(reason: "\(local.name) cannot form the cluster: \(failure)") }
        return .forming(known: knownServers)
    }

    /// Takes what server `name` said it knows. What rules a formation out is kept in
    /// ``failure`` (a server with it answers every other with it).
    public mutating func heard(from name: String, knows servers: [FormingServer]) {
        guard formed == nil, failure == nil else { return }
        if let problem = learn(servers) {
            failure = problem
            return
        }
        reports[Self.key(name)] = Set(servers.map { Self.key($0.name) })
        decide()
    }

    /// Takes a formation another server made, if this server is in it; if not, that is its
    /// ``failure``.
    public mutating func adopt(_ servers: [FormedServer]) {
        guard formed == nil, failure == nil else { return }
        guard servers.contains(where: { Self.key($0.name) == Self.key(local.name) }) else {
            failure = .leftOut(servers.map(\.name))
            return
        }
        formed = servers
    }

    /// Takes another server's refusal to form with this one.
    public mutating func refused(_ reason: String) {
        if formed == nil, failure == nil { failure = .refused(reason) }
    }

    /// Servers known of that have not yet said they know all the others: whom to ask again.
    public var waitingFor: [FormingServer] {
        let all = Set(known.keys)
        return knownServers.dropFirst().filter { reports[Self.key($0.name)] != all }
    }

    /// Adds `servers` to those known of, or answers why they cannot all be.
    private mutating func learn(_ servers: [FormingServer]) -> FormationError? {
        var merged = known
        for server in servers {
            let key = Self.key(server.name)
            if let held = merged[key], held.address != server.address {
                return .nameTakenTwice(name: held.name, addresses: [held.address, server.address])
            }
            merged[key] = server
        }
        guard merged.count <= expect else {
            return .tooMany(expect: expect, found: merged.values.map(\.name).sorted())
        }
        known = merged
        return nil
    }

    private mutating func decide() {
        guard formed == nil, known.count == expect else { return }
        let all = Set(known.keys)
        for key in all where key != Self.key(local.name) {
            guard reports[key] == all else { return }
        }
        formed = known.values.sorted { Self.key($0.name) < Self.key($1.name) }.enumerated().map { position, server in
            FormedServer(id: NodeID(position + 1), name: server.name, address: server.address)
        }
    }

    static func key(_ name: String) -> String { name.lowercased() }
}

/// Why servers cannot form a cluster; each is a configuration to fix, not a wait.
public enum FormationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// More servers than expected answered.
    case tooMany(expect: Int, found: [String])
    /// Two servers say they have one name.
    case nameTakenTwice(name: String, addresses: [String])
    /// The others formed the cluster without this server.
    case leftOut([String])
    /// Another server cannot form with this one (its reason).
    case refused(String)

    public var description: String {
        switch self {
        case .tooMany(let expect, let found):
            "found \(found.count) servers (\(found.joined(separator: ", "))) where --bootstrap-expect is \(expect): give every server the number of servers that form the cluster, and --join only addresses of those"
        case .nameTakenTwice(let name, let addresses):
            "two servers are named \(name) (at \(addresses.joined(separator: " and "))): give each server its own --node-name"
        case .leftOut(let servers):
            "the cluster was formed by \(servers.joined(separator: ", ")) without this server: join it with --server --join HOST:PORT --token T (the token is in the CA directory)"
        case .refused(let reason):
            reason
        }
    }
}
