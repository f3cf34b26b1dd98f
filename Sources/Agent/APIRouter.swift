import AgentAPI
import Hummingbird
import OpenAPIHummingbird

/// The API's Hummingbird router: the generated routes of openapi.json (`APIHandler`) behind the
/// middleware every request passes, outermost first: errors into the API's one shape
/// (and 405 for a method a path lacks), metrics, the bearer token on TCP, the document's
/// parameter constraints, the body limit, and a response of known length sent whole.
enum APIRouter {
    typealias Context = BasicRequestContext

    static func router(_ api: APIContext, token: String?) throws -> Router<Context> {
        let router = Router(context: Context.self)
        let routes = try DocumentRoutes(document: APIDocument.bytes)
        router.add(middleware: APIErrorMiddleware(routes: routes))
        router.add(middleware: APIMetricsMiddleware())
        if let token { router.add(middleware: BearerTokenMiddleware(token: token)) }
        router.add(middleware: ParameterCheckMiddleware(routes: routes))
        router.add(middleware: RequestBodyMiddleware())
        router.add(middleware: WholeResponseMiddleware())
        // Compact answers, as before the API was generated: scripts pipe them, and pretty
        // printing costs the agent time on every read.
        try APIHandler(api: api).registerHandlers(
            on: router, configuration: .init(jsonEncodingOptions: [.sortedKeys, .withoutEscapingSlashes]),
            middlewares: [BuiltInDocumentsMiddleware()])
        return router
    }
}
