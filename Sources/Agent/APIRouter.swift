import AgentAPI
import Hummingbird

/// The API's Hummingbird router: the generated routes of openapi.json (`APIHandler`, mounted by
/// `APITransport`) behind `APIMiddleware`, which every request passes.
enum APIRouter {
    typealias Context = BasicRequestContext

    static func router<RouterContext: RequestContext>(
        _ api: APIContext, token: String?, context: RouterContext.Type = Context.self
    ) throws -> Router<RouterContext> {
        let router = Router(context: RouterContext.self)
        let routes = try DocumentRoutes(document: APIDocument.bytes)
        router.add(middleware: APIMiddleware(routes: routes, token: token.map(BearerToken.init), metrics: APIMetrics()))
        try APIHandler(api: api).registerHandlers(
            on: APITransport(
                router: router, routes: routes, documents: BuiltInDocuments(routes: routes), answers: StateAnswerCache(gateway: api.gateway)),
            configuration: .init(jsonEncodingOptions: APIJSON.generatedOptions))
        return router
    }
}
