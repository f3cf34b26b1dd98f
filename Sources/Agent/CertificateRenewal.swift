import Cluster
import Controller
import Foundation
import Logging

extension ClusterMembership {
    /// Renews this agent's certificate at two thirds of its life, for a new key: the CA's
    /// holder signs its own; every other agent asks the holder (member 1, found by `caHolder`) over the cluster
    /// port, presenting its current certificate. The new one is saved (key first), and the
    /// transport presents it on every connection made from then on. A failure is retried
    /// with backoff while the current certificate still works; past its end this server can
    /// no longer connect, and the log says so.
    func renewCertificates(caHolder: @escaping @Sendable () async -> MemberRecord?) async {
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
                let renewed = try await renew(current, caHolder: caHolder)
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

    private func renew(_ current: NodeCredentials, caHolder: @Sendable () async -> MemberRecord?) async throws -> NodeCredentials {
        if let ca = identity.ca {
            // A fresh key and its certificate, as a join would give them.
            return try ca.issueNodeCredentials(
                nodeName: current.nodeName, ipAddresses: settings.certificateAddresses, now: Date(),
                lifetime: settings.certificateLifetime)
        }
        guard let holder = await caHolder(), let peer = Self.peer(holder) else {
            throw AgentError.configuration("the server holding the cluster CA (member 1) is not in the member list")
        }
        return try await ClusterJoin.renew(
            host: peer.host, port: peer.port, credentials: current, nodeID: identity.nodeID, advertiseAddress: settings.advertiseAddress)
    }
}
