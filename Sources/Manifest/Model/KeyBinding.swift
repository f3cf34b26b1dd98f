/// A key of the cluster's key-value store given to a service: as an environment variable or as
/// a read-only file. Each instance gets the value the key had when the instance was placed; a
/// change of the key makes the service's instances outdated, and they are replaced under its
/// update strategy, as after a new revision.
public struct KeyBinding: ManifestObject, Hashable {
    /// The key (docs/kv.md).
    public var key: String
    /// The environment variable that holds the value.
    public var env: String?
    /// The absolute path, inside the service, of a read-only file that holds the value.
    public var file: String?

    public init(key: String, env: String? = nil, file: String? = nil) {
        self.key = key
        self.env = env
        self.file = file
    }

    public static let spec = ObjectSpec(
        "KeyBinding",
        doc: "A key of the cluster's key-value store given to the service, as an environment variable or a file. A change of the key's value replaces the service's instances under its update strategy; a key that does not exist gives no variable and no file.",
        fields: [
            FieldSpec("key", String.self, required: true, example: "web/config/port", doc: "The key: a `/`-separated path of at most 512 bytes, with no empty, `.` or `..` segment and no leading `/` (docs/kv.md)."),
            FieldSpec("env", String.self, example: "PORT", doc: "The environment variable that holds the value (which must then be UTF-8 text without NUL). Exactly one of `env` and `file`."),
            FieldSpec("file", String.self, example: "/etc/web/config.json", constraints: [.absolutePath], doc: "The absolute path, inside the service, of a read-only file that holds the value (bind-mounted from the agent's state directory). Exactly one of `env` and `file`."),
        ])

    public init?(reading reader: ObjectReader) {
        let key = reader.read("key", as: String.self)
        env = reader.read("env", as: String.self)
        file = reader.read("file", as: String.self)
        if let key, let problem = KeyRules.problem(key) { reader.report("key", problem) }
        if let env, let problem = NameRules.environmentNameProblem(env) { reader.report("env", problem) }
        if let file, ["/", "/proc", "/sys", "/dev"].contains(file) || file.hasSuffix("/") {
            reader.report("file", "\"\(file)\" cannot be a file; name a file, e.g. \"/etc/app/config\"")
        }
        switch (reader.isPresent("env"), reader.isPresent("file")) {
        case (true, true): reader.report("file", "give the value either as env or as file, not both; split it into two bindings")
        case (false, false): reader.report("env", "is required unless file is given: say where the value goes")
        default: break
        }
        guard let key else { return nil }
        self.key = key
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("key", key)
        writer.write("env", env)
        writer.write("file", file)
    }
}

/// The rules for a key of the key-value store, shared by the store (which refuses a key that
/// breaks them) and the manifest (which names keys to give to services).
public enum KeyRules {
    /// The longest key, in bytes.
    public static let maxBytes = 512

    /// Why `key` cannot be a key, or nil: empty, over 512 bytes, a control character, an empty
    /// segment (`a//b`, or a leading `/`) or a `.` or `..` segment. A trailing `/` is allowed:
    /// `config/` names a folder, as in Consul.
    public static func problem(_ key: String) -> String? {
        let bytes = key.utf8.count
        guard bytes > 0 else { return "a key cannot be empty" }
        guard bytes <= maxBytes else { return "the key is \(bytes) bytes; keys are at most \(maxBytes)" }
        if let control = key.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "the key holds the control character U+\(String(control.value, radix: 16, uppercase: true)); use printable characters"
        }
        let segments = key.split(separator: "/", omittingEmptySubsequences: false)
        for (position, segment) in segments.enumerated() {
            let isTrailing = position == segments.count - 1 && position > 0
            if segment.isEmpty && !isTrailing {
                return position == 0 ? "a key does not start with /" : "a key has no empty segment (//)"
            }
            if segment == "." || segment == ".." { return "a key has no \(segment) segment; write the path it stands for" }
        }
        return nil
    }
}
