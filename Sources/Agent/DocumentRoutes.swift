import AgentAPI
import Foundation
import HTTPTypes

/// What openapi.json says of each path, read from the embedded document itself so that the
/// server cannot disagree with it: which methods a path takes (405's `Allow`), and the
/// constraints of each operation's parameters that the generated code does not check
/// (`pattern`, `minLength`, `maxLength`, `minimum`, `maximum`).
struct DocumentRoutes: Sendable {
    /// One parameter's constraints.
    struct Parameter: Sendable {
        var name: String
        var location: String
        var pattern: String?
        var minLength: Int?
        var maxLength: Int?
        var minimum: Int64?
        var maximum: Int64?
    }

    struct Route: Sendable {
        var segments: [String]
        var operations: [HTTPRequest.Method: [Parameter]]
    }

    private let routes: [Route]
    /// Each operation's path template, by its `operationId`.
    private let operationPaths: [String: String]
    /// Paths without parameters, by their text: most requests find their route in one lookup.
    private let staticRoutes: [String: Route]

    init(document: [UInt8]) throws {
        let root = try JSONSerialization.jsonObject(with: Data(document)) as? [String: Any] ?? [:]
        let components = root["components"] as? [String: Any] ?? [:]
        let sharedParameters = components["parameters"] as? [String: Any] ?? [:]
        let paths = root["paths"] as? [String: [String: Any]] ?? [:]
        var operationPaths: [String: String] = [:]
        for (path, item) in paths {
            for case let operation as [String: Any] in item.values {
                if let id = operation["operationId"] as? String { operationPaths[id] = path }
            }
        }
        self.operationPaths = operationPaths
        routes = paths.map { path, item in
            var operations: [HTTPRequest.Method: [Parameter]] = [:]
            for (key, value) in item {
                guard let method = HTTPRequest.Method(key.uppercased()), ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"].contains(method.rawValue),
                    let operation = value as? [String: Any]
                else { continue }
                let declared = (operation["parameters"] as? [Any] ?? []) + (item["parameters"] as? [Any] ?? [])
                operations[method] = declared.compactMap { Self.parameter($0, shared: sharedParameters) }
            }
            return Route(segments: path.split(separator: "/").map(String.init), operations: operations)
        }
        staticRoutes = Dictionary(
            routes.filter { !$0.segments.contains { $0.hasPrefix("{") } }.map { ("/" + $0.segments.joined(separator: "/"), $0) },
            uniquingKeysWith: { first, _ in first })
    }

    /// A parameter object, following a `$ref` into components/parameters.
    private static func parameter(_ value: Any, shared: [String: Any]) -> Parameter? {
        guard var object = value as? [String: Any] else { return nil }
        if let reference = object["$ref"] as? String, let name = reference.split(separator: "/").last {
            guard let resolved = shared[String(name)] as? [String: Any] else { return nil }
            object = resolved
        }
        guard let name = object["name"] as? String, let location = object["in"] as? String else { return nil }
        let schema = object["schema"] as? [String: Any] ?? [:]
        return Parameter(
            name: name, location: location, pattern: schema["pattern"] as? String, minLength: (schema["minLength"] as? NSNumber)?.intValue,
            maxLength: (schema["maxLength"] as? NSNumber)?.intValue, minimum: (schema["minimum"] as? NSNumber)?.int64Value,
            maximum: (schema["maximum"] as? NSNumber)?.int64Value)
    }

    /// The path template of the operation with `operationId` `id`.
    func path(ofOperation id: String) -> String? { operationPaths[id] }

    /// The route `path` matches (a `{parameter}` segment matches any one segment), with the
    /// values of its path parameters.
    func route(forPath path: String) -> (route: Route, pathValues: [String: String])? {
        if let route = staticRoutes[path] { return (route, [:]) }
        let segments = path.split(separator: "/").map(String.init)
        for route in routes where route.segments.count == segments.count {
            var values: [String: String] = [:]
            let matches = zip(route.segments, segments).allSatisfy { pattern, segment in
                guard pattern.hasPrefix("{"), pattern.hasSuffix("}") else { return pattern == segment }
                values[String(pattern.dropFirst().dropLast())] = segment.removingPercentEncoding ?? segment
                return true
            }
            if matches { return (route, values) }
        }
        return nil
    }

    /// The methods `path` takes; empty when no path of the document matches it.
    func allowedMethods(forPath path: String) -> [HTTPRequest.Method] {
        guard let route = route(forPath: path)?.route else { return [] }
        return route.operations.keys.sorted { $0.rawValue < $1.rawValue }
    }

    /// The first value of the request that breaks its parameter's constraints in the document,
    /// as the API's error; nil when every value keeps them. Values that do not parse at all are
    /// left to the generated code, which refuses them too.
    func violation(method: HTTPRequest.Method, path: String, query: [(String, String)], headers: HTTPFields) -> APIError? {
        guard let (route, pathValues) = route(forPath: path), let parameters = route.operations[method] else { return nil }
        // Nothing to check: the common read without a query string.
        if query.isEmpty && pathValues.isEmpty && !parameters.contains(where: { $0.location == "header" }) { return nil }
        for parameter in parameters {
            let values: [String]
            switch parameter.location {
            case "path": values = pathValues[parameter.name].map { [$0] } ?? []
            case "query": values = query.filter { $0.0 == parameter.name }.map(\.1)
            case "header": values = HTTPField.Name(parameter.name).flatMap { headers[values: $0] } ?? []
            default: values = []
            }
            for value in values {
                if let problem = Self.problem(value, parameter) {
                    return APIError(
                        code: APIErrorCode.badRequest, message: "\(parameter.location) parameter \(parameter.name)=\(value) \(problem)",
                        path: parameter.name)
                }
            }
        }
        return nil
    }

    private static func problem(_ value: String, _ parameter: Parameter) -> String? {
        if let maxLength = parameter.maxLength, value.count > maxLength { return "is longer than \(maxLength) characters" }
        if let minLength = parameter.minLength, value.count < minLength { return "is shorter than \(minLength) characters" }
        if let pattern = parameter.pattern, value.range(of: pattern, options: .regularExpression) == nil {
            return "does not match \(pattern)"
        }
        if let number = Int64(value) {
            if let minimum = parameter.minimum, number < minimum { return "is below the minimum, \(minimum)" }
            if let maximum = parameter.maximum, number > maximum { return "is above the maximum, \(maximum)" }
        }
        return nil
    }
}
