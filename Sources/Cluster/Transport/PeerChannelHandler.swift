import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Foundation
import Raft

/// The last handler of a connection between agents, after TLS and the frame codec.
///
/// The dialer checks, once the handshake is done, that the certificate it was shown names the
/// peer it meant to reach, then says hello; the acceptor reads that hello, checks that the
/// certificate names the node the hello claims to be, and that this node is a peer. Only then
/// is the connection attached to the peer's link and its Raft frames delivered. Anything else
/// (a bad name, a frame out of place, a malformed or oversized frame) closes the connection
/// with its reason in the log; it never reaches Raft and never stops the agent.
final class PeerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    enum Role {
        case dialer(ClusterPeer)
        case acceptor
    }

    private enum State {
        case handshaking
        case awaitingHello
        case awaitingJoin(any JoinAuthority)
        case awaitingRenewal(any JoinAuthority, VerifiedPeer)
        case awaitingFormation(any FormationResponder, VerifiedPeer)
        case joining
        case established(ClusterPeer, PeerLink)
        case closing
    }

    private let role: Role
    private let core: TransportCore
    private var state = State.handshaking
    /// Raised to the configuration's maximum once the peer is a member (its decoder's limit).
    private let frameLimit: FrameSizeLimit
    /// An accepted connection counted as not identified yet (released when it is, or when it
    /// has closed), and its deadline to be.
    private var countedAsUnidentified = false
    private var identificationDeadline: Scheduled<Void>?

    init(role: Role, core: TransportCore, frameLimit: FrameSizeLimit) {
        self.role = role
        self.core = core
        self.frameLimit = frameLimit
    }

    /// An accepted connection is a stranger until it shows who it is, which TLS does not
    /// require (a joiner has no certificate yet): it has the identification timeout from the
    /// accept, and without a certificate it takes one of a bounded number of places when its
    /// handshake is done (`admitStranger`). Without these a stranger could hold connections
    /// and buffers for ever.
    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        guard case .acceptor = role else { return }
        let timeout = core.configuration.identificationTimeout
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        identificationDeadline = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            let (handler, context) = bound.value
            handler.refuse(context, "\(handler.peerDescription) did not identify itself within \(timeout) of connecting")
        }
    }

    /// After the handshake of an accepted connection: one with a certificate of this cluster's
    /// CA (TLS verified it) is a member's, or a former member's, and takes no stranger's place
    /// (its frames stay small and its deadline runs until its hello or request); one without
    /// takes a place, or is refused when none is left. False when refused.
    private func admitStranger(_ context: ChannelHandlerContext) -> Bool {
        if case .success = verifiedPeer(context, names: nil) { return true }
        guard core.admitUnidentified() else {
            refuse(context) { $0.strangerRefusedAtCap() }
            return false
        }
        countedAsUnidentified = true
        return true
    }

    /// The connection has shown who it is: a member's hello (`raisingFrameLimit`: only then
    /// larger frames), or a single request now being answered; or it has closed. Its deadline
    /// ends, and its stranger's place, if it took one, is given back.
    private func identified(raisingFrameLimit: Bool = false) {
        if raisingFrameLimit { frameLimit.set(core.configuration.maximumFramePayloadBytes) }
        identificationDeadline?.cancel()
        identificationDeadline = nil
        guard countedAsUnidentified else { return }
        countedAsUnidentified = false
        core.unidentifiedEnded()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted(let negotiated) = event as? TLSUserEvent else {
            return context.fireUserInboundEventTriggered(event)
        }
        switch role {
        case .dialer(let peer):
            guard negotiated == ClusterProtocol.peer else {
                return refuse(context, "peer \(peer.id) at \(peer.host):\(peer.port) does not speak \(ClusterProtocol.peer)")
            }
            if let problem = checkCertificate(context, names: peer.name) {
                return refuse(context, "peer \(peer.id) at \(peer.host):\(peer.port): \(problem)")
            }
            guard let link = core.link(for: peer.id) else { return refuse(context, "peer \(peer.id) is no longer a member") }
            context.writeAndFlush(wrapOutboundOut(Hello(nodeID: core.localID, nodeName: core.localName).frame), promise: nil)
            state = .established(peer, link)
            link.attach(context.channel)
        case .acceptor:
            guard admitStranger(context) else { return }
            switch negotiated {
            case ClusterProtocol.peer:
                state = .awaitingHello
            case ClusterProtocol.join:
                // An agent without the CA answers with a refusal that says where to go, so the
                // joiner stops with that reason instead of retrying a closed connection.
                state = .awaitingJoin(core.joinAuthority ?? NoCertificateAuthority())
            case ClusterProtocol.renew:
                let authority = core.joinAuthority ?? NoCertificateAuthority()
                switch verifiedPeer(context, names: nil) {
                case .success(let peer): state = .awaitingRenewal(authority, peer)
                case .failure(let problem): refuse(context, "a renewal from a peer that \(problem.reason)")
                }
            case ClusterProtocol.form:
                guard let responder = core.formationResponder else {
                    return refuse(context, "a formation request, but this server was not started with --bootstrap-expect")
                }
                switch verifiedPeer(context, names: nil) {
                case .success(let peer): state = .awaitingFormation(responder, peer)
                case .failure(let problem): refuse(context, "a formation request from a server that \(problem.reason)")
                }
            default:
                refuse(context, "no cluster protocol chosen (\(ClusterProtocol.peer) or \(ClusterProtocol.join)); found \(negotiated ?? "none")")
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        do {
            switch (state, frame.kind) {
            case (.awaitingHello, .hello):
                let hello = try Hello(frame: frame)
                guard hello.nodeID != core.localID else {
                    return refuse(context, "hello from node \(hello.nodeID) (\(hello.nodeName)), which is this node's own id")
                }
                // The certificate first: only a member of the cluster may make a link appear.
                if let problem = checkCertificate(context, names: hello.nodeName) {
                    return refuse(context, "node \(hello.nodeID) (\(hello.nodeName)): \(problem)")
                }
                switch core.inboundLink(for: hello, from: context.channel.remoteAddress) {
                case .refused(let reason):
                    return refuse(context, reason)
                case .removed(let id, let reason):
                    return refuse(context) { $0.removedMemberRefused(id, reason) }
                case .taken(let link):
                    state = .established(link.peer, link)
                    identified(raisingFrameLimit: true)
                    link.attach(context.channel)
                }
            case (.established(let peer, _), .raft):
                let messages = try RaftBatch.messages(from: frame)
                // A member speaks for itself only: a message claiming another sender, or meant
                // for another node, is dropped (and counted), the rest delivered.
                let addressed = messages.filter { $0.from == peer.id && $0.to == core.localID }
                core.deliver(addressed, misaddressed: messages.count - addressed.count)
            case (.established(let peer, _), .call):
                answer(try Call(frame: frame), from: peer.id, context: context)
            case (.established(let peer, _), .reply):
                core.calls.complete(try Reply(frame: frame), from: peer.id, on: context.channel)
            case (.awaitingJoin(let authority), .joinRequest):
                state = .joining
                identified()
                let request = try JoinRequest(frame: frame)
                answer(context, what: "a join", node: request.nodeName) { await authority.admit(request, from: $0) }
            case (.awaitingRenewal(let authority, let peer), .renewRequest):
                state = .joining
                identified()
                let request = try RenewRequest(frame: frame)
                answer(context, what: "a renewal", node: peer.nodeName) { await authority.renew(request, presented: peer, from: $0) }
            case (.awaitingFormation(let responder, let peer), .formationRequest):
                state = .joining
                identified()
                let request = try FormationRequest(frame: frame)
                let channel = context.channel
                let promise = context.eventLoop.makePromise(of: FormationResponse.self)
                promise.completeWithTask { await responder.answer(request, from: peer.nodeName) }
                promise.futureResult.whenSuccess { response in
                    channel.writeAndFlush(response.frame).whenComplete { _ in channel.close(promise: nil) }
                }
            case (.closing, _), (.joining, _):
                break
            case (_, let kind):
                throw FrameError.unexpected(kind: kind, reason: "in state \(describe(state))")
            }
        } catch let error as FrameError {
            refuse(context, "\(peerDescription): \(error)")
        } catch {
            refuse(context, "\(peerDescription): \(error)")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .handshaking = state {
            // Mostly a peer without a certificate of this cluster's CA, or with an expired one.
            return refuse(context, "\(peerDescription): TLS handshake failed (the peer's certificate must be signed by this cluster's CA and valid now): \(error)")
        }
        refuse(context, "\(peerDescription): \(error)")
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .established(_, let link) = state, context.channel.isWritable { link.resumeFlushing(context.channel) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        identified()
        core.calls.connectionEnded(context.channel)
        if case .established(_, let link) = state {
            link.detach(context.channel)
            core.connectionEnded(on: link)
        }
        state = .closing
        context.fireChannelInactive()
    }

    /// Asks the call handler off the event loop and replies on the same connection.
    private func answer(_ call: Call, from caller: NodeID, context: ChannelHandlerContext) {
        let channel = context.channel
        guard let handler = core.callHandler else {
            channel.writeAndFlush(Reply(id: call.id, outcome: .failed("this agent takes no calls")).frame, promise: nil)
            return
        }
        let promise = context.eventLoop.makePromise(of: [UInt8].self)
        promise.completeWithTask { try await handler.answer(call.payload, from: caller) }
        promise.futureResult.whenComplete { result in
            let outcome: Reply.Outcome
            switch result {
            case .success(let bytes): outcome = .answered(bytes)
            case .failure(let error): outcome = .failed("\(error)")
            }
            channel.writeAndFlush(Reply(id: call.id, outcome: outcome).frame, promise: nil)
        }
    }

    /// Asks the authority off the event loop, answers, and closes: a join or renewal
    /// connection carries one request.
    private func answer(
        _ context: ChannelHandlerContext, what: String, node: String, _ decide: @escaping @Sendable (String) async -> JoinResponse
    ) {
        let remote = context.channel.remoteAddress.map { "\($0)" } ?? "an unknown address"
        let promise = context.eventLoop.makePromise(of: JoinResponse.self)
        promise.completeWithTask { await decide(remote) }
        let logger = core.logger
        let channel = context.channel
        promise.futureResult.whenSuccess { response in
            switch response {
            case .admitted(let nodeID, _, _):
                logger.notice("granted \(what)", metadata: ["node": "\(node)", "id": "\(nodeID)", "from": "\(remote)"])
            case .refused(let reason):
                logger.warning("refused \(what)", metadata: ["node": "\(node)", "from": "\(remote)", "reason": "\(reason)"])
            case .unavailable(let reason):
                logger.info("cannot answer \(what) now", metadata: ["node": "\(node)", "from": "\(remote)", "reason": "\(reason)"])
            }
            channel.writeAndFlush(response.frame).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// nil when the certificate the handshake verified names `nodeName`, else why not.
    private func checkCertificate(_ context: ChannelHandlerContext, names nodeName: String) -> String? {
        switch verifiedPeer(context, names: nodeName) {
        case .success: nil
        case .failure(let problem): problem.reason
        }
    }

    struct Problem: Error {
        var reason: String
    }

    /// The node the handshake's certificate belongs to, after the full node-certificate checks
    /// (and that it names `nodeName`, when given).
    private func verifiedPeer(_ context: ChannelHandlerContext, names nodeName: String?) -> Result<VerifiedPeer, Problem> {
        guard let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
            let der = try? certificate.toDERBytes()
        else { return .failure(Problem(reason: "presented no certificate")) }
        return core.configuration.verifier.verify(peerCertificateDER: der, expectedNodeName: nodeName, now: Date())
            .mapError { Problem(reason: "\($0)") }
    }

    private func refuse(_ context: ChannelHandlerContext, _ reason: String) {
        refuse(context) { $0.connectionRefused(reason) }
    }

    /// Closes the connection once, `count` telling the transport (counted and logged).
    private func refuse(_ context: ChannelHandlerContext, counting count: (TransportCore) -> Void) {
        // Its place among the strangers is given back once the socket has closed (channelInactive):
        // TLS may hold it a while yet for the peer's close_notify.
        identificationDeadline?.cancel()
        identificationDeadline = nil
        if case .closing = state { return }
        if case .established(_, let link) = state {
            link.detach(context.channel)
            core.connectionEnded(on: link)
        }
        state = .closing
        count(core)
        context.close(promise: nil)
    }

    private var peerDescription: String {
        switch (state, role) {
        case (.established(let peer, _), _), (_, .dialer(let peer)): "peer \(peer.id) (\(peer.name))"
        default: "an unidentified peer"
        }
    }

    private func describe(_ state: State) -> String {
        switch state {
        case .handshaking: "handshaking"
        case .awaitingHello: "awaiting hello"
        case .awaitingJoin: "awaiting a join request"
        case .awaitingRenewal: "awaiting a renewal request"
        case .awaitingFormation: "awaiting a formation request"
        case .joining: "joining"
        case .established: "established"
        case .closing: "closing"
        }
    }
}
