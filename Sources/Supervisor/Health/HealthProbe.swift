import Glibc
import Manifest
import NIOCore
import NIOHTTP1
import NIOPosix

/// What one run of a probe found.
public struct ProbeOutcome: Sendable, Hashable {
    /// Whether the check passed.
    public var passed: Bool
    /// What it saw: the HTTP status, the connect error, the command's exit and output.
    public var detail: String
}

/// The network probes, run as swift-nio channels on the supervisor's event loop: a thousand
/// instances' checks share one thread, each check costing a connection, not a thread.
/// Checks connect to the instance's port on 127.0.0.1, from the agent's side.
enum NetworkProbe {
    /// An HTTP/1.1 GET of `path`; passes when the response's status is in `accepted` and its head
    /// arrives within `timeout`.
    static func http(on loop: EventLoop, port: Int, path: String, accepted: StatusRange, timeout: Duration)
        -> EventLoopFuture<ProbeOutcome>
    {
        let promise = loop.makePromise(of: ProbeOutcome.self)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(timeout.nanosecondsClamped))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(HTTPStatusHandler(promise: promise, accepted: accepted))
                }
            }
        let timer = loop.scheduleTask(in: .nanoseconds(timeout.nanosecondsClamped)) {
            promise.succeed(ProbeOutcome(passed: false, detail: "no response within \(timeout)"))
        }
        bootstrap.connect(host: "127.0.0.1", port: port).whenComplete { result in
            switch result {
            case .success(let channel):
                var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
                head.headers.add(name: "Host", value: "127.0.0.1:\(port)")
                head.headers.add(name: "User-Agent", value: "flotilla-health-check")
                head.headers.add(name: "Connection", value: "close")
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
            case .failure(let error):
                promise.succeed(ProbeOutcome(passed: false, detail: "connect to 127.0.0.1:\(port): \(error)"))
            }
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    /// A TCP connect; passes when the connection is accepted within `timeout`.
    static func tcp(on loop: EventLoop, port: Int, timeout: Duration) -> EventLoopFuture<ProbeOutcome> {
        ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(timeout.nanosecondsClamped))
            .connect(host: "127.0.0.1", port: port)
            .flatMap { channel in
                channel.close().map { ProbeOutcome(passed: true, detail: "connected to 127.0.0.1:\(port)") }
            }
            .flatMapErrorThrowing { error in
                ProbeOutcome(passed: false, detail: "connect to 127.0.0.1:\(port): \(error)")
            }
    }
}

/// Completes the probe with the response head's status, then lets the channel close.
private final class HTTPStatusHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<ProbeOutcome>
    private let accepted: StatusRange

    init(promise: EventLoopPromise<ProbeOutcome>, accepted: StatusRange) {
        self.promise = promise
        self.accepted = accepted
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let code = Int(head.status.code)
        promise.succeed(ProbeOutcome(passed: accepted.contains(code), detail: "HTTP \(code)"))
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.succeed(ProbeOutcome(passed: false, detail: "HTTP: \(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(ProbeOutcome(passed: false, detail: "connection closed before a response"))
        context.fireChannelInactive()
    }
}
