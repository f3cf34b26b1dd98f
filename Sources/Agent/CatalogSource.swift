import AgentAPI
import Controller
import Foundation

/// Where an agent's DNS server gets the catalog: a server's own replica, or for a client (which
/// keeps none) a server's answer to a blocking query.
protocol CatalogSource: Sendable {
    /// The catalog once the state has moved past `index` (at once when it already has, and
    /// after a while when it does not), or as it is now for nil; nil when there is none to be
    /// had for now. A state that has not changed yet is at index 0, which is waited past too.
    func catalog(after index: UInt64?) async -> Catalog?
}

/// A server's: built from its replica at each change of the state (the change feed). The state
/// is read on the node's actor; the catalog is built off it.
struct ReplicaCatalogSource: CatalogSource {
    let gateway: ClusterGateway

    func catalog(after index: UInt64?) async -> Catalog? {
        if let index { _ = await gateway.feed.pace(after: index, timeout: .seconds(5)) }
        return (try? await gateway.read { $0 }).map(Catalog.init)
    }
}

/// A client's: `GET /v1/catalog?index=N&wait=60s`, relayed to a server.
struct RelayedCatalogSource: CatalogSource {
    let relay: @Sendable (ForwardedHTTPRequest, Duration) async throws -> ForwardedHTTPResponse

    /// A relayed call ends when its task is cancelled (the agent stopping), so the wait can be
    /// long: one call a minute while nothing changes.
    static let wait = Duration.seconds(60)

    func catalog(after index: UInt64?) async -> Catalog? {
        let target = index.map { "/v1/catalog?index=\($0)&wait=60s" } ?? "/v1/catalog"
        do {
            let answer = try await relay(ForwardedHTTPRequest(method: "GET", target: target, headers: [], body: Data()), Self.wait + .seconds(15))
            guard answer.status == 200 else { throw CatalogUnavailable() }
            let snapshot = try JSONDecoder().decode(Components.Schemas.CatalogSnapshot.self, from: answer.body)
            let stateIndex = answer.headers.first { $0.first?.lowercased() == "x-flotilla-index" }?.last.flatMap { UInt64($0) } ?? index ?? 0
            return APIMapping.catalog(snapshot, index: stateIndex)
        } catch {
            // No server answers now: the last catalog stays answered; try again in a second.
            try? await Task.sleep(for: .seconds(1))
            return nil
        }
    }
}

/// A server answered the catalog with an error (no leader for a consistent read, say).
private struct CatalogUnavailable: Error {}
