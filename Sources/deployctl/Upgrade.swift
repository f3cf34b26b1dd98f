import AgentAPI
import ArgumentParser
import Foundation

/// `deployctl upgrade APP/SERVICE --env K=V --set PATH=VALUE`: the common one-field change
/// without editing the manifest file. The current manifest is read from the cluster, changed,
/// and applied as `apply` does, with a check-and-set on the revision it was read at, so that a
/// change made in between is not overwritten.
struct Upgrade: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change one service's manifest in place (environment, any field) and roll it out.",
        discussion: """
            --image sets the service's image (its tag is resolved when the revision is made). \
            --set takes a dotted path inside the service (update.maxParallel=2, \
            resources.memory=256Mi, command.0=/bin/web); the value is read as JSON when it is \
            JSON, else as a string. Exit status as for apply.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "APPLICATION/SERVICE.") var reference: ServiceReference
    @Option(name: .customLong("env"), help: "Set an environment variable: K=V (repeatable).") var environment: [String] = []
    @Option(name: .customLong("set"), help: "Set a field of the service: PATH=VALUE (repeatable).") var fields: [String] = []
    @Option(help: "Run another image, e.g. registry.example:5000/team/web:1.5; its tag is resolved to a digest when the revision is made.") var image: String?
    @Flag(help: "Return once the change is committed, without following the rollout.") var noWait = false
    @Option(help: "How long to follow the rollout, e.g. 5m.") var timeout: String = "5m"

    func validate() throws {
        guard !environment.isEmpty || !fields.isEmpty || image != nil else {
            throw ValidationError("nothing to change: give --env K=V, --set PATH=VALUE or --image REF")
        }
        if let image, image.isEmpty { throw ValidationError("--image: give an image reference, e.g. registry.example:5000/team/web:1.5") }
        for pair in environment + fields where !pair.contains("=") || pair.hasPrefix("=") {
            throw ValidationError("\(pair): write NAME=VALUE")
        }
    }

    func run() async throws {
        var current: (text: String, revision: Int64)?
        try await reportFailures {
            let info = try await connection.client().perform { api in
                try await api.getApplication(path: .init(name: reference.application), query: .init(detail: true)).ok.body.json
            }
            current = (info.manifest ?? "{}", info.revision)
        }
        guard let current else { return }
        let changed: Data
        do {
            changed = try ManifestEdit(text: current.text).changing(service: reference.service, environment: environment, fields: fields, image: image)
        } catch {
            Terminal.standardError.write("\(Terminal.standardError.paint("error", .red)): \(error)\n")
            throw ExitCode(1)
        }
        // Named for what it is: apply's messages name the file.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("deployctl-upgrade-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("\(reference.application)-revision-\(current.revision)-upgraded.json")
        try changed.write(to: file)
        var apply = try Apply.parse(["-f", file.path, "--timeout", timeout])
        apply.connection = connection
        apply.revision = UInt64(clamping: current.revision)
        apply.noWait = noWait
        try await apply.run()
    }
}

/// A manifest's JSON, changed field by field.
struct ManifestEdit {
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    let text: String

    /// The manifest with `service`'s environment and fields set.
    func changing(service name: String, environment: [String], fields: [String], image: String? = nil) throws -> Data {
        guard var root = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            var services = root["services"] as? [[String: Any]]
        else { throw Problem(description: "the application's manifest has no services") }
        guard let position = services.firstIndex(where: { $0["name"] as? String == name }) else {
            let names = services.compactMap { $0["name"] as? String }.joined(separator: ", ")
            throw Problem(description: "the application has no service \(name) (it has \(names))")
        }
        var service = services[position]
        var env = service["env"] as? [String: Any] ?? [:]
        for pair in environment {
            let (key, value) = Self.split(pair)
            env[key] = value
        }
        if !environment.isEmpty { service["env"] = env }
        for pair in fields {
            let (path, text) = Self.split(pair)
            let value = (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) ?? text
            // Setting into an object always gives an object back.
            service = try Self.set(value, at: path.split(separator: ".").map(String.init), in: service, path: path) as? [String: Any] ?? service
        }
        // A string as given: an image reference is never JSON.
        if let image { service["image"] = image }
        services[position] = service
        root["services"] = services
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted])
    }

    private static func split(_ pair: String) -> (String, String) {
        let index = pair.firstIndex(of: "=") ?? pair.endIndex
        return (String(pair[..<index]), String(pair[pair.index(after: index)...]))
    }

    /// `value` at `keys` inside `container` (objects by key, arrays by index), creating objects
    /// on the way; a key into something that is neither is refused with the path.
    private static func set(_ value: Any, at keys: [String], in container: Any?, path: String) throws -> Any {
        guard let key = keys.first else { return value }
        let rest = Array(keys.dropFirst())
        if var array = container as? [Any] {
            guard let index = Int(key), array.indices.contains(index) else {
                throw Problem(description: "--set \(path): \(key) is not an index of a list of \(array.count)")
            }
            array[index] = try set(value, at: rest, in: array[index], path: path)
            return array
        }
        guard container == nil || container is [String: Any] else { throw Problem(description: "--set \(path): \(key) is inside a value that is not an object") }
        var object = container as? [String: Any] ?? [:]
        object[key] = try set(value, at: rest, in: object[key], path: path)
        return object
    }
}
