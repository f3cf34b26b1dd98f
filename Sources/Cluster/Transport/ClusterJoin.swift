import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Raft
import Synchronization

/// Why a join failed, for the joining agent's operator.
public struct JoinError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// The server answered and said no, or is not the cluster the token pins: trying again
    /// will not help. Otherwise (unreachable, no answer) it may.
    public var isFinal = false
}

/// The joining side: an agent with a join token and no certificate asks a server of the
/// cluster for one.
public enum ClusterJoin {
    /// What a successful join gives: the node's id and its credentials.
    public struct Joined: Sendable {
        public var nodeID: NodeID
        public var credentials: NodeCredentials
        /// The cluster's servers, as the admitting server knew them.
        public var servers: [ClusterPeer]
    }

    /// Joins through the server at `host:port`. The server's certificate chain must hold the
    /// CA the token pins and a node certificate of it for the handshake's key, or the
    /// connection ends before the token's secret is sent: a man in the middle learns nothing.
    public static func join(
        host: String, port: Int, token: JoinToken, nodeName: String, role: JoinRequest.Role, advertiseAddress: String,
        timeout: Duration = .seconds(10), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(JoinError) -> Joined {
        let request: NodeCertificateRequest
        let requestDER: [UInt8]
        do {
            request = try NodeCertificateRequest(nodeName: nodeName)
            requestDER = try request.derBytes()
        } catch {
            throw JoinError(description: "cannot make a certificate request for \(nodeName): \(error)")
        }
        let joinRequest = JoinRequest(
            tokenID: token.id, tokenSecret: token.secret, nodeName: nodeName, role: role, advertiseAddress: advertiseAddress,
            certificateRequestDER: requestDER)
        let verified = Mutex<VerifiedJoinTarget?>(nil)
        let pinProblem = Mutex<String?>(nil)
        let response: JoinResponse
        do {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv13
            configuration.applicationProtocols = [ClusterProtocol.join]
            // No roots: the callback below decides, by the pin alone.
            configuration.trustRoots = .certificates([])
            configuration.certificateVerification = .noHostnameVerification
            let context = try NIOSSLContext(configuration: configuration)
            response = try await exchange(
                host: host, port: port, protocol: ClusterProtocol.join, request: joinRequest.frame, timeout: timeout, group: group
            ) {
                try NIOSSLClientHandler(context: context, serverHostname: nil) { chain, promise in
                    switch ClusterPeerVerifier.verifyJoinTarget(presentedChain: chain, pin: token.caPin, now: Date()) {
                    case .success(let target):
                        verified.withLock { $0 = target }
                        promise.succeed(.certificateVerified)
                    case .failure(let rejection):
                        pinProblem.withLock { $0 = "\(rejection)" }
                        promise.succeed(.failed)
                    }
                }
            }
        } catch {
            if let problem = pinProblem.withLock({ $0 }) {
                throw JoinError(description: "the server at \(host):\(port) is not the cluster the token pins: \(problem)", isFinal: true)
            }
            throw JoinError(description: "joining through \(host):\(port): \(error)")
        }
        switch response {
        case .refused(let reason):
            throw JoinError(description: "the server at \(host):\(port) refused the join: \(reason)", isFinal: true)
        case .unavailable(let reason):
            throw JoinError(description: "the server at \(host):\(port) cannot admit now: \(reason)")
        case .admitted(let nodeID, let certificateDER, let servers):
            guard let target = verified.withLock({ $0 }) else { throw JoinError(description: "answered before the server was verified") }
            do {
                let credentials = try request.credentials(issuedCertificateDER: certificateDER, caCertificate: target.caCertificate, now: Date())
                return Joined(nodeID: nodeID, credentials: credentials, servers: servers)
            } catch {
                throw JoinError(description: "the certificate the server sent is not usable: \(error)")
            }
        }
    }
}

extension ClusterJoin {
    /// Gets a new certificate, for a new key, from the server at `host:port` (one that holds
    /// the CA), presenting the current `credentials`, which must still be valid: an agent
    /// renews well before the end (`NodeCredentials.renewalDate`). The CA is the one trusted
    /// already, never one from the answer.
    public static func renew(
        host: String, port: Int, credentials: NodeCredentials, nodeID: NodeID, advertiseAddress: String,
        timeout: Duration = .seconds(10), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(JoinError) -> NodeCredentials {
        let request: NodeCertificateRequest
        let response: JoinResponse
        do {
            request = try NodeCertificateRequest(nodeName: credentials.nodeName)
            let renewal = RenewRequest(nodeID: nodeID, advertiseAddress: advertiseAddress, certificateRequestDER: try request.derBytes())
            let context = try credentials.tlsMaterial().context(server: false, applicationProtocols: [ClusterProtocol.renew])
            response = try await exchange(
                host: host, port: port, protocol: ClusterProtocol.renew, request: renewal.frame, timeout: timeout, group: group
            ) { try NIOSSLClientHandler(context: context, serverHostname: nil) }
        } catch {
            throw JoinError(description: "renewing node \(credentials.nodeName)'s certificate through \(host):\(port): \(error)")
        }
        switch response {
        case .refused(let reason), .unavailable(let reason):
            throw JoinError(description: "the server at \(host):\(port) refused the renewal: \(reason)")
        case .admitted(_, let certificateDER, _):
            do {
                return try request.credentials(issuedCertificateDER: certificateDER, caCertificate: credentials.caCertificate, now: Date())
            } catch {
                throw JoinError(description: "the certificate the server sent is not usable: \(error)")
            }
        }
    }

    /// One request and its answer (a `JoinResponse`) on a new TLS connection speaking `protocol`.
    static func exchange(
        host: String, port: Int, protocol applicationProtocol: String, request: Frame, timeout: Duration, group: any EventLoopGroup,
        tls: @escaping @Sendable () throws -> NIOSSLClientHandler
    ) async throws -> JoinResponse {
        let frame = try await exchange(
            host: host, port: port, protocol: applicationProtocol, request: request, answerKind: .joinResponse, timeout: timeout, group: group,
            tls: tls)
        return try JoinResponse(frame: frame)
    }

    /// One request and its answer, a frame of `answerKind`, on a new TLS connection speaking
    /// `protocol`.
    static func exchange(
        host: String, port: Int, protocol applicationProtocol: String, request: Frame, answerKind: Frame.Kind, timeout: Duration,
        group: any EventLoopGroup, tls: @escaping @Sendable () throws -> NIOSSLClientHandler
    ) async throws -> Frame {
        let answer = group.any().makePromise(of: Frame.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(timeout))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            try tls(),
                            ByteToMessageHandler(FrameDecoder(maximumPayloadBytes: 1 << 20)),
                            MessageToByteHandler(FrameEncoder()),
                            RequestClientHandler(protocol: applicationProtocol, request: request, answerKind: answerKind, answer: answer),
                        ])
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            // A promise must be completed before it is dropped (NIO checks in debug builds).
            answer.fail(error)
            throw error
        }
        channel.closeFuture.whenComplete { _ in
            answer.fail(JoinError(description: "the server closed the connection without answering"))
        }
        let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            answer.fail(JoinError(description: "no answer within \(timeout)"))
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        let response = try await answer.futureResult.get()
        try? await channel.close()
        return response
    }
}

/// Sends one request once the handshake (and the server checks in it) is done, and takes the
/// one answer.
final class RequestClientHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    private let applicationProtocol: String
    private let request: Frame
    private let answerKind: Frame.Kind
    private let answer: EventLoopPromise<Frame>

    init(protocol applicationProtocol: String, request: Frame, answerKind: Frame.Kind, answer: EventLoopPromise<Frame>) {
        self.applicationProtocol = applicationProtocol
        self.request = request
        self.answerKind = answerKind
        self.answer = answer
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted(let negotiated) = event as? TLSUserEvent else {
            return context.fireUserInboundEventTriggered(event)
        }
        guard negotiated == applicationProtocol else {
            answer.fail(JoinError(description: "the server does not speak \(applicationProtocol) (it chose \(negotiated ?? "nothing"))"))
            return context.close(promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if frame.kind == answerKind {
            answer.succeed(frame)
        } else {
            answer.fail(JoinError(description: "the server's answer: \(FrameError.unexpected(kind: frame.kind, reason: "expected \(answerKind)"))"))
        }
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }
}
