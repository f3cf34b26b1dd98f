import Foundation
import NIOCore
import Raft
import Synchronization
import Testing
import TestSupport
import X509

@testable import Cluster

/// Joining over the cluster port: the token's secret buys a certificate only from a server the
/// token's CA pin vouches for; a wrong, rotated or mis-pinned token gets nothing, and says why.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct JoinTests {
    /// A real `TokenJoinAuthority`, counting the requests that reach it.
    final class CountingAuthority: JoinAuthority {
        let authority: TokenJoinAuthority
        let requests = Mutex(0)

        init(_ authority: TokenJoinAuthority) { self.authority = authority }

        func admit(_ request: JoinRequest, from remoteAddress: String) async -> JoinResponse {
            requests.withLock { $0 += 1 }
            return await authority.admit(request, from: remoteAddress)
        }

        func renew(_ request: RenewRequest, presented: VerifiedPeer, from remoteAddress: String) async -> JoinResponse {
            requests.withLock { $0 += 1 }
            return await authority.renew(request, presented: presented, from: remoteAddress)
        }
    }

    struct Server {
        let transport: ClusterTransport
        let authority: CountingAuthority
        let received: CollectingReceiver
        let port: Int
    }

    /// Node 1 of `pki`'s cluster, admitting joins with a fresh token; new nodes get id 2, 3, ….
    static func server(_ pki: TestPKI, log: String) async throws -> Server {
        let nextID = Mutex<NodeID>(2)
        let authority = CountingAuthority(
            TokenJoinAuthority(ca: pki.ca, token: JoinToken.generate(caPin: pki.ca.pin)) { _ in
                (nextID.withLock { id in defer { id += 1 }; return id }, [])
            })
        let received = CollectingReceiver()
        let transport = try ClusterTransport(
            configuration: pki.configuration(id: 1), receiver: received, joinAuthority: authority, logger: RecordingLogHandler.logger(log))
        let port = try await transport.start()
        return Server(transport: transport, authority: authority, received: received, port: port)
    }

    static func join(_ server: Server, token: JoinToken, name: String = "node-2") async throws(JoinError) -> ClusterJoin.Joined {
        try await ClusterJoin.join(
            host: "127.0.0.1", port: server.port, token: token, nodeName: name, role: .server, advertiseAddress: "127.0.0.1:7000",
            timeout: .seconds(5))
    }

    static func joinError(_ server: Server, token: JoinToken) async -> String? {
        do {
            _ = try await join(server, token: token)
            return nil
        } catch {
            return error.description
        }
    }

    @Test("a join with the token gets an id and a certificate of the cluster's CA naming the node, which then works as a peer")
    func joinGivesACertificateThatMakesAPeer() async throws {
        let pki = try TestPKI()
        let server = try await Self.server(pki, log: #function)
        let joined = try await Self.join(server, token: server.authority.authority.token)
        #expect(joined.nodeID == 2)
        #expect(joined.credentials.nodeName == "node-2")
        #expect(joined.credentials.caCertificate == pki.ca.certificate)
        #expect(joined.credentials.certificate.issuer == pki.ca.certificate.subject)
        let lifetime = joined.credentials.certificate.notValidAfter.timeIntervalSince(joined.credentials.certificate.notValidBefore)
        #expect(lifetime <= ClusterCA.defaultNodeCertificateLifetime.timeIntervalSeconds + 600, "short-lived")
        // The address it advertised is in its certificate.
        let addresses = try joined.credentials.certificate.extensions.subjectAlternativeNames?.compactMap { name -> [UInt8]? in
            if case .ipAddress(let bytes) = name { return Array(bytes.bytes) }
            return nil
        }
        #expect(addresses == [[127, 0, 0, 1]])
        // With those credentials it is a member: node 1 dials it and delivers.
        let received = CollectingReceiver()
        let member = try ClusterTransport(
            configuration: TransportConfiguration(
                localID: 2, localName: "node-2", listenHost: "127.0.0.1", listenPort: 0, tls: try joined.credentials.tlsMaterial(),
                verifier: joined.credentials.peerVerifier),
            receiver: received)
        let memberPort = try await member.start()
        member.setPeers([ClusterPeer(id: 1, name: "node-1", host: "127.0.0.1", port: server.port)])
        server.transport.setPeers([ClusterPeer(id: 2, name: "node-2", host: "127.0.0.1", port: memberPort)])
        server.transport.send([Message(from: 1, to: 2, term: 9, payload: .timeoutNow)])
        try await eventually("delivery to the joined node") { received.count == 1 }
        let lines = RecordingLogHandler.lines(of: #function)
        #expect(lines.contains { $0.contains("granted a join") }, "\(lines)")
        await member.shutdown()
        await server.transport.shutdown()
    }

    @Test("a wrong token, or one rotated away, is refused with the reason on both sides; the rotated-to token works")
    func wrongOrRotatedTokensAreRefused() async throws {
        let pki = try TestPKI()
        let server = try await Self.server(pki, log: #function)
        let wrong = JoinToken.generate(caPin: pki.ca.pin)
        let error = await Self.joinError(server, token: wrong)
        #expect(error?.contains("refused the join: the join token is not this cluster's current one") == true, "\(error ?? "joined")")
        let old = server.authority.authority.token
        let new = JoinToken.generate(caPin: pki.ca.pin)
        server.authority.authority.replaceToken(new)
        #expect(new.encoded != old.encoded)
        #expect(await Self.joinError(server, token: old)?.contains("not this cluster's current one") == true)
        _ = try await Self.join(server, token: new)
        let lines = RecordingLogHandler.lines(of: #function)
        #expect(lines.filter { $0.contains("refused a join") && $0.contains("not this cluster's current one") }.count == 2, "\(lines)")
        await server.transport.shutdown()
    }

    @Test("a token pinning another CA, or a server of another CA posing as the cluster, never gets the secret")
    func wrongPinOrImpostorServerGetsNoSecret() async throws {
        let pki = try TestPKI()
        let stranger = try TestPKI(clusterID: "impostor")
        let server = try await Self.server(pki, log: #function)
        let real = server.authority.authority.token
        // The right secret, the wrong pin: the joining side stops in the handshake.
        let misPinned = try JoinToken(parsing: "flt1.\(real.id).\(real.secret).\(stranger.ca.pin.hex)")
        let error = await Self.joinError(server, token: misPinned)
        #expect(error?.contains("is not the cluster the token pins") == true, "\(error ?? "joined")")
        #expect(server.authority.requests.withLock { $0 } == 0)
        // An impostor with its own CA, reached with the real token: it gets no request either.
        let impostor = try await Self.server(stranger, log: #function + "impostor")
        let fooled = await Self.joinError(impostor, token: real)
        #expect(fooled?.contains("is not the cluster the token pins") == true, "\(fooled ?? "joined")")
        #expect(impostor.authority.requests.withLock { $0 } == 0)
        await impostor.transport.shutdown()
        await server.transport.shutdown()
    }

    @Test("the peer protocol without a certificate, a join on an agent that admits none, and Raft on a join connection are refused")
    func protocolsAreKeptApart() async throws {
        let pki = try TestPKI()
        let server = try await Self.server(pki, log: #function)
        server.transport.setPeers([ClusterPeer(id: 2, name: "node-2", host: "127.0.0.1", port: 1)])
        let anonymousPeer = try await RawPeerConnection(port: server.port, withoutCertificateSpeaking: ClusterProtocol.peer)
        try? await anonymousPeer.send(Hello(nodeID: 2, nodeName: "node-2").frame)
        try? await anonymousPeer.send(RaftBatch.frame([Message(from: 2, to: 1, term: 1, payload: .timeoutNow)]))
        #expect(await anonymousPeer.closedByPeer(within: .seconds(5)))
        let raftOnJoin = try await RawPeerConnection(port: server.port, withoutCertificateSpeaking: ClusterProtocol.join)
        try? await raftOnJoin.send(RaftBatch.frame([Message(from: 2, to: 1, term: 1, payload: .timeoutNow)]))
        #expect(await raftOnJoin.closedByPeer(within: .seconds(5)))
        #expect(server.received.count == 0)
        let lines = RecordingLogHandler.lines(of: #function)
        #expect(lines.contains { $0.contains("presented no certificate") }, "\(lines)")
        #expect(lines.contains { $0.contains("unexpected raft frame: in state awaiting a join request") }, "\(lines)")
        // An agent without a join authority (not holding the CA) admits nobody.
        let plain = try ClusterTransport(
            configuration: pki.configuration(id: 3), receiver: CollectingReceiver(), logger: RecordingLogHandler.logger(#function + "plain"))
        let plainPort = try await plain.start()
        var refusal: JoinError?
        do {
            _ = try await ClusterJoin.join(
                host: "127.0.0.1", port: plainPort, token: server.authority.authority.token, nodeName: "node-4", role: .client,
                advertiseAddress: "127.0.0.1:7001", timeout: .seconds(5))
        } catch {
            refusal = error
        }
        // A refusal that says where to go, final (the joining agent stops rather than retrying).
        #expect(refusal?.description.contains("does not admit joins") == true, "\(String(describing: refusal))")
        #expect(refusal?.isFinal == true)
        #expect(RecordingLogHandler.lines(of: #function + "plain").contains { $0.contains("refused a join") })
        await plain.shutdown()
        await server.transport.shutdown()
    }

    @Test("a member renews with its current certificate: a new key, a new certificate of the same name, still a peer")
    func renewalReplacesKeyAndCertificate() async throws {
        let pki = try TestPKI()
        let server = try await Self.server(pki, log: #function)
        let joined = try await Self.join(server, token: server.authority.authority.token)
        let renewed = try await ClusterJoin.renew(
            host: "127.0.0.1", port: server.port, credentials: joined.credentials, nodeID: joined.nodeID,
            advertiseAddress: "127.0.0.1:7000", timeout: .seconds(5))
        #expect(renewed.nodeName == "node-2")
        #expect(renewed.certificate != joined.credentials.certificate)
        #expect(renewed.certificate.publicKey != joined.credentials.certificate.publicKey, "a renewal replaces the key")
        #expect(renewed.certificate.notValidAfter >= joined.credentials.certificate.notValidAfter)
        #expect(renewed.caCertificate == pki.ca.certificate)
        #expect(RecordingLogHandler.lines(of: #function).contains { $0.contains("granted a renewal") })
        // A transport running on the old credentials presents the new ones on connections
        // made after the swap.
        let member = try ClusterTransport(
            configuration: TransportConfiguration(
                localID: 2, localName: "node-2", listenHost: "127.0.0.1", listenPort: 0, tls: try joined.credentials.tlsMaterial(),
                verifier: joined.credentials.peerVerifier),
            receiver: CollectingReceiver())
        let memberPort = try await member.start()
        let before = try await RawPeerConnection(port: memberPort, tls: try pki.material(for: "node-1"))
        #expect(try await before.peerCertificateDER() == derBytes(joined.credentials.certificate))
        try member.replaceCredentials(try renewed.tlsMaterial())
        let after = try await RawPeerConnection(port: memberPort, tls: try pki.material(for: "node-1"))
        #expect(try await after.peerCertificateDER() == derBytes(renewed.certificate))
        await before.close()
        await after.close()
        await member.shutdown()
        await server.transport.shutdown()
    }

    @Test("a renewal with an expired certificate, one of another CA, or none is refused before the authority sees it")
    func renewalNeedsAValidCertificate() async throws {
        let pki = try TestPKI(createdAt: Date().addingTimeInterval(-3 * 86_400))
        let stranger = try TestPKI(clusterID: "other")
        let server = try await Self.server(pki, log: #function)
        // Issued two days ago for a day: expired now.
        let expired = try pki.ca.issueNodeCredentials(nodeName: "node-2", now: Date().addingTimeInterval(-2 * 86_400))
        let foreign = try stranger.ca.issueNodeCredentials(nodeName: "node-2", now: Date())
        for (label, credentials) in [("expired", expired), ("foreign", foreign)] {
            await #expect(throws: JoinError.self, "\(label)") {
                _ = try await ClusterJoin.renew(
                    host: "127.0.0.1", port: server.port, credentials: credentials, nodeID: 2, advertiseAddress: "127.0.0.1:7000",
                    timeout: .seconds(5))
            }
        }
        // No certificate at all, straight to the renewal protocol.
        let anonymous = try await RawPeerConnection(port: server.port, withoutCertificateSpeaking: ClusterProtocol.renew)
        #expect(await anonymous.closedByPeer(within: .seconds(5)))
        #expect(server.authority.requests.withLock { $0 } == 0)
        let lines = RecordingLogHandler.lines(of: #function)
        #expect(lines.contains { $0.contains("a renewal from a peer that presented no certificate") }, "\(lines)")
        await server.transport.shutdown()
    }

    @Test("a join to a port where nothing listens fails with where it went, and nothing crashes")
    func joinToNothingFails() async throws {
        let pki = try TestPKI()
        let port = try unusedPort()
        do {
            _ = try await ClusterJoin.join(
                host: "127.0.0.1", port: port, token: JoinToken.generate(caPin: pki.ca.pin), nodeName: "node-2", role: .server,
                advertiseAddress: "127.0.0.1:7000", timeout: .seconds(2))
            Issue.record("joined nothing")
        } catch {
            #expect(error.description.contains("joining through 127.0.0.1:\(port)"), "\(error)")
        }
    }
}
