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
}

/// The joining side: an agent with a join token and no certificate asks a server of the
/// cluster for one.
public enum ClusterJoin {
    /// What a successful join gives: the node's id and its credentials.
    public struct Joined: Sendable {
        public var nodeID: NodeID
        public var credentials: NodeCredentials
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
            let answer = group.any().makePromise(of: JoinResponse.self)
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(timeout))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let tls = try NIOSSLClientHandler(context: context, serverHostname: nil) { chain, promise in
                            switch ClusterPeerVerifier.verifyJoinTarget(presentedChain: chain, pin: token.caPin, now: Date()) {
                            case .success(let target):
                                verified.withLock { $0 = target }
                                promise.succeed(.certificateVerified)
                            case .failure(let rejection):
                                pinProblem.withLock { $0 = "\(rejection)" }
                                promise.succeed(.failed)
                            }
                        }
                        try channel.pipeline.syncOperations.addHandlers([
                            tls,
                            ByteToMessageHandler(FrameDecoder(maximumPayloadBytes: 1 << 20)),
                            MessageToByteHandler(FrameEncoder()),
                            JoinClientHandler(request: joinRequest, answer: answer),
                        ])
                    }
                }
                .connect(host: host, port: port).get()
            channel.closeFuture.whenComplete { _ in
                answer.fail(JoinError(description: "the server closed the connection without answering"))
            }
            let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                answer.fail(JoinError(description: "no answer within \(timeout)"))
                channel.close(promise: nil)
            }
            defer { deadline.cancel() }
            response = try await answer.futureResult.get()
            try? await channel.close()
        } catch {
            if let problem = pinProblem.withLock({ $0 }) {
                throw JoinError(description: "the server at \(host):\(port) is not the cluster the token pins: \(problem)")
            }
            throw JoinError(description: "joining through \(host):\(port): \(error)")
        }
        switch response {
        case .refused(let reason):
            throw JoinError(description: "the server at \(host):\(port) refused the join: \(reason)")
        case .admitted(let nodeID, let certificateDER):
            guard let target = verified.withLock({ $0 }) else { throw JoinError(description: "answered before the server was verified") }
            do {
                let credentials = try request.credentials(issuedCertificateDER: certificateDER, caCertificate: target.caCertificate, now: Date())
                return Joined(nodeID: nodeID, credentials: credentials)
            } catch {
                throw JoinError(description: "the certificate the server sent is not usable: \(error)")
            }
        }
    }
}

/// Sends the join request once the handshake (and the pin check in it) is done, and takes the
/// one answer.
final class JoinClientHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    private let request: JoinRequest
    private let answer: EventLoopPromise<JoinResponse>

    init(request: JoinRequest, answer: EventLoopPromise<JoinResponse>) {
        self.request = request
        self.answer = answer
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted(let negotiated) = event as? TLSUserEvent else {
            return context.fireUserInboundEventTriggered(event)
        }
        guard negotiated == ClusterProtocol.join else {
            answer.fail(JoinError(description: "the server does not speak \(ClusterProtocol.join) (it chose \(negotiated ?? "nothing"))"))
            return context.close(promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(request.frame), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        do {
            guard frame.kind == .joinResponse else { throw FrameError.unexpected(kind: frame.kind, reason: "expected a join response") }
            answer.succeed(try JoinResponse(frame: frame))
        } catch {
            answer.fail(JoinError(description: "the server's answer: \(error)"))
        }
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }
}
