import NIOCore
import NIOPosix
import NIOSSL

/// The asking side of forming a cluster (`--bootstrap-expect`): a server with a certificate of
/// the operator's CA asks another for what it knows.
public enum ClusterFormation {
    /// Sends `request` to the server at `host:port`, which must present a certificate of the
    /// same CA (`credentials` trust no other), and returns its answer.
    public static func ask(
        host: String, port: Int, credentials: NodeCredentials, request: FormationRequest, timeout: Duration = .seconds(5),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> FormationResponse {
        let context = try credentials.tlsMaterial().context(server: false, applicationProtocols: [ClusterProtocol.form])
        let frame = try await ClusterJoin.exchange(
            host: host, port: port, protocol: ClusterProtocol.form, request: request.frame, answerKind: .formationResponse, timeout: timeout,
            group: group
        ) { try NIOSSLClientHandler(context: context, serverHostname: nil) }
        return try FormationResponse(frame: frame)
    }
}
