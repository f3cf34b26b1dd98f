import AgentAPI
import Controller
import Foundation
import Hummingbird
import Manifest
import NIOCore

/// What the HTTP API serves from.
public struct APIContext: Sendable {
    public var gateway: ClusterGateway
    public var logs: any InstanceLogSource
    public var nodeName: String
    public var version: String
    /// Renders `/metrics` (Prometheus text format).
    public var metrics: @Sendable () -> String

    public init(gateway: ClusterGateway, logs: any InstanceLogSource, nodeName: String, version: String, metrics: @escaping @Sendable () -> String) {
        self.gateway = gateway
        self.logs = logs
        self.nodeName = nodeName
        self.version = version
        self.metrics = metrics
    }
}

/// The routes of `/v1`, described in ``OpenAPIDocument``.
enum APIRoutes {
    typealias Context = BasicRequestContext

    static func router(_ api: APIContext, token: String?) -> Router<Context> {
        let router = Router(context: Context.self)
        router.add(middleware: APIErrorMiddleware())
        router.add(middleware: APIMetricsMiddleware())
        if let token { router.add(middleware: BearerTokenMiddleware(token: token)) }
        router.get("/v1/version") { _, _ in
            try HTTPSupport.json(VersionInfo(version: api.version, api: "v1", node: api.nodeName))
        }
        router.get("/v1/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: ResponseBody(byteBuffer: ByteBuffer(string: api.metrics())))
        }
        router.get("/v1/status") { request, _ in try await status(api, request) }
        router.get("/v1/applications") { request, _ in try await applications(api, request) }
        router.put("/v1/applications/:name") { request, context in
            try await apply(api, request, name: context.parameters.require("name"))
        }
        router.get("/v1/applications/:name") { request, context in
            try await application(api, request, name: context.parameters.require("name"))
        }
        router.delete("/v1/applications/:name") { request, context in
            try await delete(api, request, name: context.parameters.require("name"))
        }
        router.get("/v1/applications/:name/services/:service") { request, context in
            try await service(api, request, ServiceKey(context.parameters.require("name"), context.parameters.require("service")))
        }
        router.post("/v1/applications/:name/services/:service/scale") { request, context in
            let body = try await HTTPSupport.decode(ScaleRequest.self, from: request)
            let key = ServiceKey(try context.parameters.require("name"), try context.parameters.require("service"))
            return try await submit(api, .scaleService(key, replicas: body.replicas, expectedRevision: body.revision))
        }
        router.post("/v1/applications/:name/services/:service/restart") { _, context in
            let key = ServiceKey(try context.parameters.require("name"), try context.parameters.require("service"))
            return try await submit(api, .restartService(key))
        }
        router.post("/v1/applications/:name/services/:service/stop") { _, context in
            // Stopping keeps the service and its manifest, with no instance: a scale to zero.
            let key = ServiceKey(try context.parameters.require("name"), try context.parameters.require("service"))
            return try await submit(api, .scaleService(key, replicas: 0, expectedRevision: nil))
        }
        router.get("/v1/instances") { request, _ in try await instances(api, request) }
        router.get("/v1/instances/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let instance = try await api.gateway.read({ $0.instances[id] }) else {
                throw APIError(code: "instance_not_found", message: "no instance \"\(id)\"; list them with `deployctl status`")
            }
            return try HTTPSupport.json(APIMapping.instance(instance))
        }
        router.get("/v1/instances/:id/logs") { request, context in
            try await logs(api, request, instance: context.parameters.require("id"))
        }
        router.get("/v1/nodes") { request, _ in
            let (nodes, index) = try await blockingRead(api, request) { state in
                state.nodes.values.sorted { $0.name < $1.name }.map { APIMapping.node($0, in: state) }
            }
            return try HTTPSupport.json(nodes, index: index)
        }
        router.get("/v1/events") { request, _ in try await events(api, request) }
        return router
    }

    /// Serves a read; with `?index=N`, first waits (up to `?wait=`) for a change past N.
    static func blockingRead<Result: Sendable>(_ api: APIContext, _ request: Request, _ body: @escaping @Sendable (ClusterState) -> Result) async throws(APIError) -> (Result, UInt64) {
        if let index = try HTTPSupport.query(request, "index", { UInt64($0) }) {
            _ = await api.gateway.feed.wait(after: index, timeout: try HTTPSupport.wait(request))
        }
        let consistent = try HTTPSupport.flag(request, "consistent")
        return try await api.gateway.read(consistent: consistent) { state in (body(state), state.lastChangeIndex) }
    }

    static func status(_ api: APIContext, _ request: Request) async throws -> Response {
        let raft = await api.gateway.raftStatus()
        let (status, index) = try await blockingRead(api, request) { state in
            ClusterStatus(
                index: state.lastChangeIndex, leader: raft.leader == 0 ? nil : String(raft.leader), term: raft.term,
                applications: state.applications.values.sorted { $0.name < $1.name }.map { APIMapping.application($0, in: state, detail: false) },
                nodes: state.nodes.values.sorted { $0.name < $1.name }.map { APIMapping.node($0, in: state) })
        }
        return try HTTPSupport.json(status, index: index)
    }

    static func applications(_ api: APIContext, _ request: Request) async throws -> Response {
        let (list, index) = try await blockingRead(api, request) { state in
            state.applications.values.sorted { $0.name < $1.name }.map { APIMapping.application($0, in: state, detail: false) }
        }
        return try HTTPSupport.json(list, index: index)
    }

    static func application(_ api: APIContext, _ request: Request, name: String) async throws -> Response {
        let detail = try HTTPSupport.flag(request, "detail")
        let (info, index) = try await blockingRead(api, request) { state in
            state.applications[name].map { APIMapping.application($0, in: state, detail: detail) }
        }
        guard let info else { throw APIMapping.error(.applicationNotFound(name)) }
        return try HTTPSupport.json(info, index: index)
    }

    static func service(_ api: APIContext, _ request: Request, _ key: ServiceKey) async throws -> Response {
        let (found, index) = try await blockingRead(api, request) { state -> ServiceDescription? in
            guard let record = state.applications[key.application], let status = APIMapping.service(key.service, of: record, in: state),
                let manifest = record.service(named: key.service)
            else { return nil }
            let instances = state.instances(of: key).sorted { ($0.index, $0.createdIndex) < ($1.index, $1.createdIndex) }.map(APIMapping.instance)
            return ServiceDescription(application: key.application, status: status, manifest: JSONWriter.compact(manifest.json), instances: instances)
        }
        guard let found else {
            throw APIMapping.error(.serviceNotFound(key))
        }
        return try HTTPSupport.json(found, index: index)
    }

    static func instances(_ api: APIContext, _ request: Request) async throws -> Response {
        let application = request.uri.queryParameters.get("application")
        let service = request.uri.queryParameters.get("service")
        let node = request.uri.queryParameters.get("node")
        let (list, index) = try await blockingRead(api, request) { state in
            state.instances.values
                .filter { application == nil || $0.service.application == application }
                .filter { service == nil || $0.service.service == service }
                .filter { node == nil || $0.node == node }
                .sorted { ($0.service, $0.index, $0.createdIndex) < ($1.service, $1.index, $1.createdIndex) }
                .map(APIMapping.instance)
        }
        return try HTTPSupport.json(list, index: index)
    }

    static func apply(_ api: APIContext, _ request: Request, name: String) async throws -> Response {
        let bytes = try await HTTPSupport.body(request)
        // Validate here too, so that a bad manifest is refused with its paths before it costs
        // a log entry (the state machine checks again when applying).
        let manifest: Manifest.Application
        do {
            manifest = try ManifestDecoder.decode(bytes)
        } catch {
            throw APIMapping.error(.invalidManifest(error.issues))
        }
        guard manifest.name == name else {
            throw APIError(code: APIErrorCode.badRequest, message: "the path names application \"\(name)\" but the manifest names \"\(manifest.name)\"; PUT it to /v1/applications/\(manifest.name)", path: "name")
        }
        let revision = try HTTPSupport.query(request, "revision") { UInt64($0) }
        let command = ControllerCommand.applyApplication(manifestJSON: String(decoding: bytes, as: UTF8.self), expectedRevision: revision)
        if try HTTPSupport.flag(request, "dryRun") {
            let result = await api.gateway.preview(command)
            return try respond(result, index: await api.gateway.read { $0.lastChangeIndex }, dryRun: true)
        }
        let (result, index) = try await api.gateway.submit(command)
        return try respond(result, index: index, dryRun: false)
    }

    static func delete(_ api: APIContext, _ request: Request, name: String) async throws -> Response {
        let revision = try HTTPSupport.query(request, "revision") { UInt64($0) }
        return try await submit(api, .deleteApplication(name: name, expectedRevision: revision))
    }

    static func submit(_ api: APIContext, _ command: ControllerCommand) async throws -> Response {
        let (result, index) = try await api.gateway.submit(command)
        return try respond(result, index: index, dryRun: false)
    }

    /// The response to a command: its outcome, or its refusal in the error shape.
    static func respond(_ result: CommandResult, index: UInt64, dryRun: Bool) throws -> Response {
        switch result {
        case .rejected(let error):
            throw APIMapping.error(error)
        case .applicationApplied(let name, let revision, let diff):
            return try HTTPSupport.json(APIMapping.applyResult(name, revision: revision, diff: diff, dryRun: dryRun, index: index), index: index)
        case .applicationDeleted(let name, let stopping):
            return try HTTPSupport.json(CommandOutcome(message: "deleted \(name); stopping \(stopping.count) instance\(stopping.count == 1 ? "" : "s")", index: index), index: index)
        case .serviceScaled(let key, let replicas):
            return try HTTPSupport.json(CommandOutcome(message: "\(key) scaled to \(replicas)", index: index), index: index)
        case .serviceRestarted(let key, _):
            return try HTTPSupport.json(CommandOutcome(message: "\(key): every instance will be replaced", index: index), index: index)
        case .nodeUpdated, .planCommitted, .statusRecorded:
            return try HTTPSupport.json(CommandOutcome(message: "done", index: index), index: index)
        }
    }

    static func logs(_ api: APIContext, _ request: Request, instance: String) async throws -> Response {
        let lines = try HTTPSupport.query(request, "tail") { Int($0).flatMap { $0 >= 0 ? $0 : nil } }
        let since = try HTTPSupport.query(request, "since") { Int64($0) }
        guard try await api.gateway.read({ $0.instances[instance] != nil }) else {
            throw APIError(code: "instance_not_found", message: "no instance \"\(instance)\"; list them with `deployctl status`")
        }
        if try HTTPSupport.flag(request, "follow") {
            let stream = try await api.logs.follow(instance: instance, lines: lines, since: since)
            let body = ResponseBody { writer in
                let encoder = HTTPSupport.encoder()
                for try await line in stream {
                    var data = try encoder.encode(line)
                    data.append(0x0A)
                    try await writer.write(ByteBuffer(bytes: data))
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
        }
        return try HTTPSupport.json(try await api.logs.tail(instance: instance, lines: lines, since: since))
    }

    /// Recent events as JSON, or with `?stream=true` a server-sent event stream of every new one.
    static func events(_ api: APIContext, _ request: Request) async throws -> Response {
        let after = try HTTPSupport.query(request, "after") { UInt64($0) } ?? 0
        guard try HTTPSupport.flag(request, "stream") else {
            return try HTTPSupport.json(api.gateway.feed.recent(after: after), index: api.gateway.feed.index)
        }
        let stream = api.gateway.feed.subscribe(after: after)
        let body = ResponseBody { writer in
            let encoder = HTTPSupport.encoder()
            try await withThrowingTaskGroup(of: Void.self) { group in
                let (lines, output) = AsyncStream<String>.makeStream()
                group.addTask {
                    for await event in stream {
                        let data = (try? encoder.encode(event)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                        output.yield("id: \(event.index)\nevent: \(event.kind)\ndata: \(data)\n\n")
                    }
                    output.finish()
                }
                group.addTask {
                    // A comment line now and then keeps proxies and idle timeouts from closing the stream.
                    while !Task.isCancelled {
                        output.yield(": keepalive\n\n")
                        try await Task.sleep(for: .seconds(15))
                    }
                }
                for await line in lines {
                    try await writer.write(ByteBuffer(string: line))
                }
                group.cancelAll()
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}
