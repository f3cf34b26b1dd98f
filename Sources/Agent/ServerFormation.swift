import Cluster
import Foundation
import Logging
import Raft
import Synchronization

/// Forming a new cluster with `--bootstrap-expect N`, as Consul's and Nomad's
/// `bootstrap_expect` do, over mutual TLS from the first byte: every server is given the same
/// CA and join token, made once by the operator (`deployctl cluster ca create`), and issues
/// itself a node certificate of that CA. Each listens on its cluster port and asks the
/// servers it was given (`--join`) and those they name what they know
/// (`FormationProgress`); once all N agree, every one of them starts Raft with the same N
/// voters (ids by name), and the first leader records them as members.
enum ServerFormation {
    /// Waits until the cluster is formed (or found formed) and answers the servers of it.
    /// Listens on the cluster port meanwhile, and stops listening before it returns.
    static func form(
        expect: Int, peers: [HostPort], credentials: NodeCredentials, settings: ClusterSettings, nodeName: String, logger: Logger
    ) async throws -> [FormedServer] {
        let coordinator = FormationCoordinator(progress: FormationProgress(local: FormingServer(name: nodeName, address: settings.advertiseAddress), expect: expect))
        // Listening before it is formed, under no Raft id yet (0): servers that formed already
        // dial it as a peer, and what they send is dropped until the node runs.
        let listener = try ClusterTransport(
            configuration: TransportConfiguration(
                localID: 0, localName: nodeName, listenHost: settings.listenHost, listenPort: settings.listenPort,
                tls: try credentials.tlsMaterial(), verifier: credentials.peerVerifier),
            receiver: DroppingReceiver(), joinAuthority: StillForming(), formationResponder: coordinator, logger: logger)
        try await listener.start()
        do {
            let formed = try await ask(peers: peers, coordinator: coordinator, credentials: credentials, logger: logger)
            await listener.shutdown()
            return formed
        } catch {
            await listener.shutdown()
            throw error
        }
    }

    /// Asks every server known of (the `--join` addresses first) until formed.
    private static func ask(
        peers: [HostPort], coordinator: FormationCoordinator, credentials: NodeCredentials, logger: Logger
    ) async throws -> [FormedServer] {
        let local = coordinator.local
        var lastReport = ContinuousClock.now
        while true {
            if let formed = try coordinator.outcome() { return formed }
            var addresses = peers.map(\.description)
            for server in coordinator.waiting where !addresses.contains(server.address) { addresses.append(server.address) }
            for address in addresses where address != local.address {
                guard let target = HostPort(address) else { continue }
                let response: FormationResponse
                do {
                    response = try await ClusterFormation.ask(
                        host: target.host, port: target.port, credentials: credentials, request: coordinator.request)
                } catch {
                    logger.debug("a server to form the cluster with does not answer yet", metadata: ["at": "\(address)", "error": "\(error)"])
                    continue
                }
                coordinator.take(response, from: address)
                if let formed = try coordinator.outcome() { return formed }
            }
            if ContinuousClock.now - lastReport > .seconds(5) {
                lastReport = ContinuousClock.now
                let known = coordinator.request.known.map(\.name)
                logger.notice(
                    "waiting for the servers to form the cluster with",
                    metadata: ["known": "\(known.joined(separator: ", "))", "expect": "\(coordinator.expect)"])
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}

/// The formation as this server sees it, shared by the loop that asks and the transport that
/// answers.
final class FormationCoordinator: FormationResponder {
    private let progress: Mutex<FormationProgress>
    let local: FormingServer
    let expect: Int

    init(progress: FormationProgress) {
        local = progress.local
        expect = progress.expect
        self.progress = Mutex(progress)
    }

    func answer(_ request: FormationRequest, from asker: String) async -> FormationResponse {
        progress.withLock { $0.answer(request, askerName: asker) }
    }

    /// What to send: the count and every server known of.
    var request: FormationRequest {
        progress.withLock { FormationRequest(expect: $0.expect, known: $0.knownServers) }
    }

    /// Servers that have not said yet that they know all the others.
    var waiting: [FormingServer] { progress.withLock { $0.waitingFor } }

    func take(_ response: FormationResponse, from address: String) {
        progress.withLock { progress in
            switch response {
            case .forming(let known):
                guard let answerer = known.first else { return }
                progress.heard(from: answerer.name, knows: known)
            case .formed(let servers):
                progress.adopt(servers)
            case .refused(let reason):
                progress.refused("the server at \(address) cannot form the cluster with this one: \(reason)")
            }
        }
    }

    /// The formation once decided, or the reason it cannot be.
    func outcome() throws(FormationError) -> [FormedServer]? {
        try progress.withLock { progress throws(FormationError) in
            if let failure = progress.failure { throw failure }
            return progress.formed
        }
    }
}

/// Answers a server of the formation that asks late (restarted before it saved, or slow): the
/// formation it is in.
struct FormedResponder: FormationResponder {
    let servers: [FormedServer]

    func answer(_ request: FormationRequest, from asker: String) async -> FormationResponse { .formed(servers: servers) }
}

/// Joins during formation: the cluster does not exist yet; the joiner asks again.
private struct StillForming: JoinAuthority {
    static let reason = "the cluster is still forming (its servers wait for one another, --bootstrap-expect)"

    func admit(_ request: JoinRequest, from remoteAddress: String) async -> JoinResponse { .unavailable(reason: Self.reason) }

    func renew(_ request: RenewRequest, presented: VerifiedPeer, from remoteAddress: String) async -> JoinResponse {
        .unavailable(reason: Self.reason)
    }
}

/// Raft messages before the node runs: dropped (Raft resends).
private struct DroppingReceiver: RaftMessageReceiver {
    func receive(_ messages: [Message]) {}
}
