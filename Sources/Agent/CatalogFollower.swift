import Controller
import Supervisor

/// Follows the catalog from the agent's source and hands each changed one to what answers from
/// it: the DNS server, and the node's local proxy. A catalog is compared with the last one
/// handed over, so that state changes of other kinds (a status report of an instance that
/// stays where it was) cost a comparison.
struct CatalogFollower: Sendable {
    let source: any CatalogSource
    let dns: DiscoveryDNS?
    let upstreams: UpstreamDirectory

    /// Until cancelled; while the source has none (a client that reaches no server), the last
    /// catalog stays in use. Closes the DNS server at the end.
    func run() async {
        var handed: Catalog?
        // nil until the first catalog: then its index, even 0 (a server whose state has not
        // changed yet, waiting for its peers), so that the next call waits for a change.
        var seen: UInt64?
        while !Task.isCancelled {
            guard let catalog = await source.catalog(after: seen) else { continue }
            seen = catalog.index
            if catalog.instances != handed?.instances || catalog.nodes != handed?.nodes {
                upstreams.update(Self.endpoints(catalog))
                dns?.update(catalog)
                handed = catalog
            }
        }
        await dns?.stop()
    }

    /// The passing instances, as the proxy balances over them: at their node's address, by
    /// their TCP ports.
    static func endpoints(_ catalog: Catalog) -> [UpstreamEndpoint] {
        catalog.instances.filter { $0.health == .passing }.map { instance in
            var ports: [String: Int] = [:]
            for port in instance.ports where port.protocol == .tcp { ports[port.name] = port.number }
            return UpstreamEndpoint(
                id: instance.id, service: instance.name, tags: instance.tags, address: instance.address, ports: ports,
                advertisedPort: instance.port?.name, weight: instance.weight)
        }
    }
}
