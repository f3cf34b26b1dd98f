import AgentAPI
import Cluster
import Controller
import Foundation
import OpenAPIRuntime

/// Service discovery over HTTP: the catalog's names, the instances of one (as a blocking query
/// or a server-sent-events watch), and Prometheus's HTTP service discovery. All from this
/// agent's copy of the state: the state is read on the node's actor, the catalog built off it.
extension APIHandler {
    func listCatalogServices(_ input: Operations.ListCatalogServices.Input) async throws -> Operations.ListCatalogServices.Output {
        let query = input.query
        let (state, index) = try await blockingRead(index: query.index, wait: query.wait, consistent: query.consistent) { $0 }
        let services = Catalog(state).services.map {
            Schemas.CatalogServiceInfo(name: $0.name, tags: $0.tags, instances: $0.instances, passing: $0.passing)
        }
        return .ok(.init(headers: .init(xFlotillaIndex: index), body: .json(services)))
    }

    func getCatalog(_ input: Operations.GetCatalog.Input) async throws -> Operations.GetCatalog.Output {
        let query = input.query
        let (state, index) = try await blockingRead(index: query.index, wait: query.wait, consistent: query.consistent) { $0 }
        let catalog = Catalog(state)
        let snapshot = Schemas.CatalogSnapshot(
            instances: catalog.instances.map(APIMapping.catalogInstance),
            nodes: catalog.nodes.sorted { $0.key < $1.key }.map { Schemas.CatalogNodeInfo(name: $0.key, address: $0.value) })
        return .ok(.init(headers: .init(xFlotillaIndex: index), body: .json(snapshot)))
    }

    func getCatalogService(_ input: Operations.GetCatalogService.Input) async throws -> Operations.GetCatalogService.Output {
        let (name, query) = (input.path.name, input.query)
        let lookup = { @Sendable (catalog: Catalog) in
            catalog.instances(named: name, tag: query.tag, node: query.node, passingOnly: query.passing ?? true).map(APIMapping.catalogInstance)
        }
        guard query.watch == true else {
            let (state, index) = try await blockingRead(index: query.index, wait: query.wait, consistent: query.consistent) { $0 }
            return .ok(.init(headers: .init(xFlotillaIndex: index), body: .json(lookup(Catalog(state)))))
        }
        if let index = query.index, index < 0 { throw Self.negative("index", index) }
        let duration = try api.queryLimits.wait(query.wait, fallback: api.queryLimits.maxWait)
        // The first answer is read before the stream starts, so that a refused read is an error
        // status rather than a stream that ends at once.
        let first = try await api.gateway.read(consistent: query.consistent ?? false) { $0 }
        let answers = CatalogWatch(gateway: api.gateway, first: first, after: query.index.map(UInt64.init) ?? 0, lookup: lookup)
        let encoder = APIJSON.encoder()
        let events = Self.bounded(answers.events(), for: duration).map { item -> ArraySlice<UInt8> in
            guard let (index, instances) = item else { return ArraySlice(": keepalive\n\n".utf8) }
            let data = String(decoding: try encoder.encode(instances), as: UTF8.self)
            return ArraySlice("id: \(index)\nevent: instances\ndata: \(data)\n\n".utf8)
        }
        return .ok(.init(
            headers: .init(xFlotillaIndex: APIMapping.signed(first.lastChangeIndex)),
            body: .textEventStream(HTTPBody(events, length: .unknown, iterationBehavior: .single))))
    }

    func getPrometheusTargets(_ input: Operations.GetPrometheusTargets.Input) async throws -> Operations.GetPrometheusTargets.Output {
        let query = input.query
        let state = try await api.gateway.read(consistent: query.consistent ?? false) { $0 }
        let catalog = Catalog(state)
        let instances = query.name.map { catalog.instances(named: $0) } ?? catalog.instances.filter { $0.health == .passing }
        let groups = instances.compactMap { instance -> Schemas.PrometheusTargetGroup? in
            let port = query.port.map { name in instance.ports.first { $0.name == name } } ?? instance.port
            guard let port else { return nil }
            return Schemas.PrometheusTargetGroup(
                targets: [HostPort(host: instance.address, port: port.number).description],
                labels: .init(additionalProperties: PrometheusLabels.of(instance, port: port.name)))
        }
        return .ok(.init(headers: .init(xFlotillaIndex: APIMapping.signed(catalog.index)), body: .json(groups)))
    }
}

/// The labels Prometheus's HTTP service discovery gives a target, named as its own Consul
/// discovery names them (`__meta_consul_*`), so that relabelling rules carry over.
enum PrometheusLabels {
    static func of(_ instance: CatalogInstance, port: String) -> [String: String] {
        var labels = [
            "__meta_flotilla_name": instance.name,
            "__meta_flotilla_application": instance.service.application,
            "__meta_flotilla_service": instance.service.service,
            "__meta_flotilla_instance": instance.id,
            "__meta_flotilla_node": instance.node,
            "__meta_flotilla_address": instance.address,
            "__meta_flotilla_revision": String(instance.revision),
            "__meta_flotilla_port_name": port,
            // Leading and trailing commas, as Consul's `__meta_consul_tags`: `.*,v2,.*` matches
            // a tag without matching another that contains it.
            "__meta_flotilla_tags": instance.tags.isEmpty ? "" : ",\(instance.tags.joined(separator: ",")),",
        ]
        for tag in instance.tags { labels["__meta_flotilla_tag_\(tag.replacingOccurrences(of: "-", with: "_"))"] = "true" }
        return labels
    }
}
