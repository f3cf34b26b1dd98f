import AgentAPI
import Foundation
import HTTPTypes

/// What openapi.json says of each path, read from the embedded document itself so that the
/// server cannot disagree with it: which methods a path takes (405's `Allow`), and the
/// constraints of each operation's parameters that the generated code does not check
/// (`pattern`, `minLength`, `maxLength`, `minimum`, `maximum`).
///
/// A path parameter marked `x-flotilla-rest-of-path` in the document (a key-value key, whose
/// `/`s may be sent as they are) takes the rest of the path, which OpenAPI cannot say: such a
/// path matches every path that starts with its other segments.
struct DocumentRoutes: Sendable {
    /// One parameter's constraints.
    struct Parameter: Sendable {
        var name: String
        var location: String
        var pattern: String?
        /// `pattern`, compiled once: compiling it per request was 2% of a server's CPU under
        /// key-value writes. Nil when the pattern does not compile: then no value matches.
        var regex: NSRegularExpression?
        /// What a value that does not match `pattern` is told (`x-flotilla-pattern-hint`), in
        /// place of the pattern itself when that is too long to read.
        var patternHint: String?
        var minLength: Int?
        var maxLength: Int?
        var minimum: Int64?
        var maximum: Int64?
    }

    struct Route: Sendable {
        var segments: [String]
        var operations: [HTTPRequest.Method: [Parameter]]
        /// The parameter of the last segment when it takes the rest of the path.
        var restOfPath: String?
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
            let segments = path.split(separator: "/").map(String.init)
            let pathLevel = (item["parameters"] as? [Any] ?? []).compactMap { Self.resolved($0, shared: sharedParameters) }
            let rest = pathLevel.first { $0["x-flotilla-rest-of-path"] as? Bool == true && segments.last == "{\($0["name"] as? String ?? "")}" }
            return Route(segments: segments, operations: operations, restOfPath: rest?["name"] as? String)
        }.sorted { ($0.restOfPath == nil ? 0 : 1) < ($1.restOfPath == nil ? 0 : 1) }
        staticRoutes = Dictionary(
            routes.filter { !$0.segments.contains { $0.hasPrefix("{") } }.map { ("/" + $0.segments.joined(separator: "/"), $0) },
            uniquingKeysWith: { first, _ in first })
    }

    /// A parameter object, following a `$ref` into components/parameters.
    private static func resolved(_ value: Any, shared: [String: Any]) -> [String: Any]? {
        guard let object = value as? [String: Any] else { return nil }
        guard let reference = object["$ref"] as? String else { return object }
        return reference.split(separator: "/").last.flatMap { shared[String($0)] as? [String: Any] }
    }

    /// A parameter's constraints.
    private static func parameter(_ value: Any, shared: [String: Any]) -> Parameter? {
        guard let object = resolved(value, shared: shared) else { return nil }
        guard let name = object["name"] as? String, let location = object["in"] as? String else { return nil }
        let schema = object["schema"] as? [String: Any] ?? [:]
        return Parameter(
            name: name, location: location, pattern: schema["pattern"] as? String,
            regex: (schema["pattern"] as? String).flatMap { try? NSRegularExpression(pattern: $0) }, patternHint: object["x-flotilla-pattern-hint"] as? String,
            minLength: (schema["minLength"] as? NSNumber)?.intValue,
            maxLength: (schema["maxLength"] as? NSNumber)?.intValue, minimum: (schema["minimum"] as? NSNumber)?.int64Value,
            maximum: (schema["maximum"] as? NSNumber)?.int64Value)
    }

    /// The path template of the operation with `operationId` `id`.
    func path(ofOperation id: String) -> String? { operationPaths[id] }

    /// The parameter that takes the rest of the path of the path template `template`, if one does.
    func restOfPathParameter(ofTemplate template: String) -> String? {
        let segments = template.split(separator: "/").map(String.init)
        return routes.first { $0.segments == segments }?.restOfPath
    }

    /// The route `path` matches (a `{parameter}` segment matches any one segment, a
    /// rest-of-path one the rest), with the values of its path parameters, percent-decoded
    /// (nil: not valid percent-encoding). Routes with a rest-of-path parameter are tried last.
    func route(forPath path: String) -> (route: Route, pathValues: [String: String?])? {
        if let route = staticRoutes[path] { return (route, [:]) }
        let segments = path.split(separator: "/").map(String.init)
        for route in routes where route.segments.count == segments.count || (route.restOfPath != nil && segments.count > route.segments.count) {
            var values: [String: String?] = [:]
            let matches = zip(route.segments, segments).allSatisfy { pattern, segment in
                guard pattern.hasPrefix("{"), pattern.hasSuffix("}") else { return pattern == segment }
                values[String(pattern.dropFirst().dropLast())] = .some(Self.percentDecoded(segment))
                return true
            }
            guard matches else { continue }
            if let rest = route.restOfPath, let raw = Self.rest(of: path, after: route.segments.count - 1) {
                values[rest] = .some(Self.percentDecoded(raw))
            }
            return (route, values)
        }
        return nil
    }

    /// `text` percent-decoded; nil when it is not valid percent-encoding. Text without a `%` is
    /// itself: Foundation's decoding was 1.4% of a server's CPU under key-value writes, most of
    /// whose keys have none.
    static func percentDecoded(_ text: String) -> String? {
        text.utf8.contains(UInt8(ascii: "%")) ? text.removingPercentEncoding : text
    }

    /// What follows the first `count` segments of `path`, as sent (empty segments and a
    /// trailing `/` included).
    static func rest(of path: String, after count: Int) -> String? {
        var remainder = path[...]
        for _ in 0..<count {
            remainder = remainder.drop { $0 == "/" }
            guard let slash = remainder.firstIndex(of: "/") else { return nil }
            remainder = remainder[slash...]
        }
        guard remainder.first == "/" else { return nil }
        let value = remainder.dropFirst()
        return value.isEmpty ? nil : String(value)
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
            case "path":
                guard let value = pathValues[parameter.name] else { values = []; break }
                guard let value else {
                    return APIError(
                        code: APIErrorCode.badRequest, message: "path parameter \(parameter.name) is not valid percent-encoding (RFC 3986 §2.1)",
                        path: parameter.name)
                }
                values = [value]
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
        // JSON Schema counts a string's length in code points.
        let length = value.unicodeScalars.count
        if let maxLength = parameter.maxLength, length > maxLength { return "is longer than \(maxLength) characters" }
        if let minLength = parameter.minLength, length < minLength { return "is shorter than \(minLength) characters" }
        if let pattern = parameter.pattern,
           parameter.regex?.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) == nil {
            return parameter.patternHint ?? "does not match \(pattern)"
        }
        if let number = Int64(value) {
            if let minimum = parameter.minimum, number < minimum { return "is below the minimum, \(minimum)" }
            if let maximum = parameter.maximum, number > maximum { return "is above the maximum, \(maximum)" }
        }
        return nil
    }
}
