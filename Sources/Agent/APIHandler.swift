import AgentAPI
import Controller
import Foundation
import Manifest
import OpenAPIRuntime
import Cluster
import Raft

/// What the HTTP API serves from.
public struct APIContext: Sendable {
    public var gateway: ClusterGateway
    public var logs: any InstanceLogSource
    public var nodeName: String
    public var version: String
    /// Renders `/metrics` (Prometheus text format).
    public var metrics: @Sendable () -> String
    /// How long blocking queries and streams may last.
    public var queryLimits: QueryLimits
    /// The join token, where this agent holds the cluster CA.
    var joinTokens: (any JoinTokenKeeper)?
    /// This node's images: resolves a manifest's image tags to digests when a revision is made.
    var images: NodeImages?

    public init(
        gateway: ClusterGateway, logs: any InstanceLogSource, nodeName: String, version: String, metrics: @escaping @Sendable () -> String,
        queryLimits: QueryLimits = QueryLimits()
    ) {
        self.gateway = gateway
        self.logs = logs
        self.nodeName = nodeName
        self.version = version
        self.metrics = metrics
        self.queryLimits = queryLimits
    }
}

/// Consul's `default_query_time` and `max_query_time`: how long a blocking query waits when it
/// does not say, and at most; a stream (events, log follow) lasts at most `maxWait` too, after
/// which its client resumes where it was (as Kubernetes ends watches).
public struct QueryLimits: Sendable {
    /// A blocking query's wait when `?wait=` is not given.
    public var defaultWait: Duration
    /// The longest any blocking query or stream lasts.
    public var maxWait: Duration

    /// 60 s by default, at most 5 minutes.
    public init(defaultWait: Duration = .seconds(60), maxWait: Duration = .seconds(300)) {
        self.maxWait = maxWait
        self.defaultWait = min(defaultWait, maxWait)
    }

    /// `?wait=`, as manifests write durations, bounded by `maxWait`; `fallback` when absent.
    func wait(_ text: String?, fallback: Duration) throws(APIError) -> Duration {
        guard let text else { return min(fallback, maxWait) }
        do {
            return min(try DurationText.parse(text), maxWait)
        } catch {
            throw APIError(code: APIErrorCode.badRequest, message: "query parameter wait=\(text) \(error.message)", path: "wait")
        }
    }
}

/// The API's operations (`APIProtocol`, generated from openapi.json): reads here, changes in
/// `APIHandler+Commands.swift`, streams in `APIHandler+Streams.swift`. Errors are thrown as
/// `APIError` and rendered by `APIErrorResponse`, so each operation answers only its success.
struct APIHandler: APIProtocol {
    typealias Schemas = Components.Schemas
    let api: APIContext

    func getVersion(_ input: Operations.GetVersion.Input) async throws -> Operations.GetVersion.Output {
        .ok(.init(body: .json(Schemas.VersionInfo(version: api.version, api: "v1", node: api.nodeName))))
    }

    func getOpenAPIDocument(_ input: Operations.GetOpenAPIDocument.Input) async throws -> Operations.GetOpenAPIDocument.Output {
        throw BuiltInDocuments.notServedHere(Operations.GetOpenAPIDocument.id)
    }

    func getManifestSchema(_ input: Operations.GetManifestSchema.Input) async throws -> Operations.GetManifestSchema.Output {
        throw BuiltInDocuments.notServedHere(Operations.GetManifestSchema.id)
    }

    func getMetrics(_ input: Operations.GetMetrics.Input) async throws -> Operations.GetMetrics.Output {
        .ok(.init(body: .plainText(HTTPBody(api.metrics()))))
    }

    func getStatus(_ input: Operations.GetStatus.Input) async throws -> Operations.GetStatus.Output {
        let query = input.query
        let (status, index) = try await blockingReadWithRaftStatus(index: query.index, wait: query.wait, consistent: query.consistent) {
            state, raft in
            Schemas.ClusterStatus(
                index: APIMapping.signed(state.lastChangeIndex), leader: raft.softState.leader == 0 ? nil : String(raft.softState.leader),
                term: APIMapping.signed(raft.hardState.term),
                applications: state.applications.values.sorted { $0.name < $1.name }.map { APIMapping.application($0, in: state, detail: false) },
                nodes: state.nodes.values.sorted { $0.name < $1.name }.map { APIMapping.node($0, in: state) })
        }
        return .ok(.init(headers: .init(xFlotillaIndex: index), body: .json(status)))
    }

    func listApplications(_ input: Operations.ListApplications.Input) async throws -> Operations.ListApplications.Output {
        let query = input.query
        let (list, index) = try await blockingRead(index: query.index, wait: query.wait, consistent: query.consistent) { state in
            state.applications.values.sorted { $0.name < $1.name }.map { APIMapping.application($0, in: state, detail: false) }
        }
        return .ok(.init(headers: .init(xFlotillaIndex: index), body: .json(list)))
    }

    func getApplication(_ input: Operations.GetApplication.Input) async throws -> Operations.GetApplication.Output {
        let (name, query) = (input.path.name, input.query)
        let detail = query.detail ?? false
        let (info, index) = try await blockingRead(index: query.index, wait: query.wait, consistent: query.consistent) { state in
            state.applications[name].map { APIMapping.application($0, in: state, detail: detail) }
        }
        guard let info else { throw APIMapping.error(.applicationNotFound(name)) }
        return .ok(.init(headers: .init(xFlotillaIndex: index), body: .json(info)))
    }

    func getService(_ input: Operations.GetService.Input) async throws -> Operations.GetService.Output {
        let key = ServiceKey(input.path.name, input.path.service)
        let query = input.query
        let (found, index) = try await blockingRead(index: query.index, wait: query.wait, consistent: query.consistent) {
            state -> Schemas.ServiceDescription? in
            guard let record = state.applications[key.application], let status = APIMapping.service(key.service, of: record, in: state),
                let manifest = record.service(named: key.service)
            else { return nil }
            let instances = state.instances(of: key).sorted { ($0.index, $0.createdIndex) < ($1.index, $1.createdIndex) }
            return Schemas.ServiceDescription(
                application: key.application, status: status, manifest: JSONWriter.compact(manifest.json),
                instances: instances.map(APIMapping.instance))
        }
        guard let found else { throw APIMapping.error(.serviceNotFound(key)) }
        return .ok(.init(headers: .init(xFlotillaIndex: index), body: .json(found)))
    }

    func listInstances(_ input: Operations.ListInstances.Input) async throws -> Operations.ListInstances.Output {
        let query = input.query
        let (list, index) = try await blockingRead(index: query.index, wait: query.wait, consistent: query.consistent) { state in
            state.instances.values
                .filter { query.application == nil || $0.service.application == query.application }
                .filter { query.service == nil || $0.service.service == query.service }
                .filter { query.node == nil || $0.node == query.node }
                .sorted { ($0.service, $0.index, $0.createdIndex) < ($1.service, $1.index, $1.createdIndex) }
                .map(APIMapping.instance)
        }
        return .ok(.init(headers: .init(xFlotillaIndex: index), body: .json(list)))
    }

    func getInstance(_ input: Operations.GetInstance.Input) async throws -> Operations.GetInstance.Output {
        let id = input.path.id
        guard let instance = try await api.gateway.read({ $0.instances[id] }) else {
            throw Self.instanceNotFound(id)
        }
        return .ok(.init(body: .json(APIMapping.instance(instance))))
    }

    func listMembers(_ input: Operations.ListMembers.Input) async throws -> Operations.ListMembers.Output {
        let query = input.query
        let (members, index) = try await blockingReadWithRaftStatus(index: query.index, wait: query.wait, consistent: query.consistent) {
            state, raft in APIMapping.members(state.members, raft: raft)
        }
        return .ok(.init(headers: .init(xFlotillaIndex: index), body: .json(members)))
    }

    func getJoinToken(_ input: Operations.GetJoinToken.Input) async throws -> Operations.GetJoinToken.Output {
        .ok(.init(body: .json(APIMapping.joinToken(try await Self.keeper(api).current()))))
    }

    func rotateJoinToken(_ input: Operations.RotateJoinToken.Input) async throws -> Operations.RotateJoinToken.Output {
        .ok(.init(body: .json(APIMapping.joinToken(try await Self.keeper(api).rotate()))))
    }

    static func keeper(_ api: APIContext) throws(APIError) -> any JoinTokenKeeper {
        guard let keeper = api.joinTokens else {
            throw APIError(
                code: APIErrorCode.notFound,
                message: "this agent holds no join token: every server of a cluster does (ask one)")
        }
        return keeper
    }

    func listNodes(_ input: Operations.ListNodes.Input) async throws -> Operations.ListNodes.Output {
        let query = input.query
        var (nodes, index) = try await blockingRead(index: query.index, wait: query.wait, consistent: query.consistent) { state in
            state.nodes.values.sorted { $0.name < $1.name }.map { APIMapping.node($0, in: state) }
        }
        // The log holds the last registration or return; the leader knows the last heartbeat.
        let heard = await api.gateway.lastHeard(from: nodes.map(\.name))
        for position in nodes.indices {
            if let time = heard[nodes[position].name]?.unixMilliseconds, time > nodes[position].lastHeartbeat { nodes[position].lastHeartbeat = time }
        }
        return .ok(.init(headers: .init(xFlotillaIndex: index), body: .json(nodes)))
    }

    // MARK: - Helpers

    /// Serves a read; with `?index=N`, first waits (up to `?wait=`) for a change past N
    /// (Consul's blocking queries). Returns the answer and the index it reflects.
    func blockingRead<Result: Sendable>(
        index: Int64?, wait: String?, consistent: Bool?, _ body: @escaping @Sendable (ClusterState) -> Result
    ) async throws(APIError) -> (Result, Int64) {
        let limit = try api.queryLimits.wait(wait, fallback: api.queryLimits.defaultWait)
        if let index { try await waitForChange(after: index, limit: limit) }
        let (result, stateIndex) = try await api.gateway.read(consistent: consistent ?? false) { state in (body(state), state.lastChangeIndex) }
        return (result, APIMapping.signed(stateIndex))
    }

    /// `blockingRead` for an answer that also needs the node's Raft status, read in the same
    /// visit to the node as the state (and after the wait, not before it).
    func blockingReadWithRaftStatus<Result: Sendable>(
        index: Int64?, wait: String?, consistent: Bool?, _ body: @escaping @Sendable (ClusterState, RaftStatus) -> Result
    ) async throws(APIError) -> (Result, Int64) {
        let limit = try api.queryLimits.wait(wait, fallback: api.queryLimits.defaultWait)
        if let index { try await waitForChange(after: index, limit: limit) }
        let observed = StateAnswerCache.observed
        let (result, stateIndex) = try await api.gateway.readWithRaftStatus(consistent: consistent ?? false) { state, raft in
            observed?.record(StateAnswerCache.Source(state, raft))
            return (body(state, raft), state.lastChangeIndex)
        }
        return (result, APIMapping.signed(stateIndex))
    }

    /// `?index=N`: waits (up to `?wait=`) for a change past N (Consul's blocking queries). Only
    /// called with an index, so that a plain read makes no async call for it.
    private func waitForChange(after index: Int64, limit: Duration) async throws(APIError) {
        guard index >= 0 else { throw Self.negative("index", index) }
        _ = await api.gateway.feed.wait(after: UInt64(index), timeout: limit)
    }

    static func negative(_ name: String, _ value: Int64) -> APIError {
        APIError(code: APIErrorCode.badRequest, message: "query parameter \(name)=\(value) is negative; it counts from 0", path: name)
    }

    static func instanceNotFound(_ id: String) -> APIError {
        APIError(code: APIErrorCode.instanceNotFound, message: "no instance \"\(id)\"; list them with `deployctl status`")
    }

}
