import Cluster
import Controller
import Foundation
import Logging

extension ClusterMembership {
    /// Renews this agent's certificate at two thirds of its life, for a new key: a server that
    /// holds the CA signs its own; any other agent asks the servers (`servers`, each in turn
    /// until one signs) over the cluster port, presenting its current certificate. The new one is saved (key first), and the
    /// transport presents it on every connection made from then on. A failure is retried
    /// with backoff while the current certificate still works; past its end this server can
    /// no longer connect, and the log says so.
    func renewCertificates(servers: @escaping @Sendable () async -> [MemberRecord]) async {
        var retry = Duration.seconds(1)
        while !Task.isCancelled {
            let current = credentials.withLock { $0 }
            let wait = current.renewalDate.timeIntervalSinceNow
            if wait > 0 {
                // Wake at least every minute: a clock that jumps should not delay renewal long.
                try? await Task.sleep(for: .seconds(min(wait, 60)))
                continue
            }
            do {
                let renewed = try await renew(current, servers: servers)
                try renewed.save(to: directory)
                try transport.replaceCredentials(try renewed.tlsMaterial())
                credentials.withLock { $0 = renewed }
                retry = .seconds(1)
                logger.notice("renewed the node certificate", metadata: ["valid until": "\(renewed.certificate.notValidAfter)"])
            } catch {
                let expired = current.certificate.notValidAfter < Date()
                logger.log(
                    level: expired ? .error : .warning,
                    expired ? "the node certificate has expired and could not be renewed" : "could not renew the node certificate yet",
                    metadata: ["error": "\(error)", "retry in": "\(retry)"])
                try? await Task.sleep(for: retry)
                retry = min(retry * 2, .seconds(60))
            }
        }
    }

    private func renew(_ current: NodeCredentials, servers: @Sendable () async -> [MemberRecord]) async throws -> NodeCredentials {
        if let ca = joinAuthority?.ca {
            // A fresh key and its certificate, as a join would give them.
            return try ca.issueNodeCredentials(
                nodeName: current.nodeName, ipAddresses: settings.certificateAddresses, now: Date(),
                lifetime: settings.certificateLifetime)
        }
        var failures: [String] = []
        for server in await servers() where server.id != identity.nodeID {
            guard let peer = Self.peer(server) else { continue }
            do {
                return try await ClusterJoin.renew(
                    host: peer.host, port: peer.port, credentials: current, nodeID: identity.nodeID, advertiseAddress: settings.advertiseAddress)
            } catch {
                failures.append("\(server.name): \(error)")
            }
        }
        throw AgentError.configuration("no server renewed the certificate (\(failures.isEmpty ? "none is known" : failures.joined(separator: "; ")))")
    }
}
