/// An OCI image reference as the distribution spec and Docker write it:
/// `[registry[:port]/]repository[:tag][@sha256:<64 hex>]`.
///
/// The first path component is the registry when it holds a `.` or a `:` or is `localhost`;
/// otherwise the registry is Docker Hub and a one-component repository is under `library/`,
/// as `docker pull busybox` means `docker.io/library/busybox:latest`.
public struct ImageName: ManifestValue, Hashable, CustomStringConvertible {
    /// The registry host and optional port, e.g. `registry.example:5000` or `docker.io`.
    public let registry: String
    /// The repository path, e.g. `team/web` or `library/busybox`.
    public let repository: String
    /// The tag as written; nil when only a digest is written.
    public let tag: String?
    /// `sha256:` and 64 lowercase hex digits, when pinned.
    public let digest: String?
    /// As written, so that a manifest reads back unchanged.
    public let text: String

    public static let defaultRegistry = "docker.io"
    static let maximumNameLength = 255

    /// The tag fetched: as written, else `latest` when no digest pins the image.
    public var effectiveTag: String? { tag ?? (digest == nil ? "latest" : nil) }

    /// `registry/repository`, the part before the tag and digest.
    public var name: String { registry + "/" + repository }

    public var description: String { text }

    /// What a registry is asked for: the digest when pinned, else the tag.
    public var manifestReference: String { digest ?? effectiveTag ?? "latest" }

    /// Parses `text`, or says what is wrong with it.
    public init(parsing text: String) throws(ImageNameError) {
        var rest = Substring(text)
        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            let written = String(rest[rest.index(after: at)...])
            if let problem = Self.digestProblem(written) { throw ImageNameError(text: text, problem: problem) }
            digest = written
            rest = rest[..<at]
        }
        var tag: String?
        // A ':' after the last '/' starts the tag; one before it is a registry's port.
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let written = String(rest[rest.index(after: colon)...])
            if let problem = Self.tagProblem(written) { throw ImageNameError(text: text, problem: problem) }
            tag = written
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var registry = Self.defaultRegistry
        if components.count > 1, let first = components.first,
           first.contains(".") || first.contains(":") || first == "localhost" {
            if let problem = Self.registryProblem(first) { throw ImageNameError(text: text, problem: problem) }
            registry = first
            components.removeFirst()
        }
        guard !components.isEmpty, components != [""] else {
            throw ImageNameError(text: text, problem: "the repository name is missing")
        }
        for component in components {
            if let problem = Self.componentProblem(component) { throw ImageNameError(text: text, problem: problem) }
        }
        if registry == Self.defaultRegistry, components.count == 1 { components.insert("library", at: 0) }
        let repository = components.joined(separator: "/")
        guard registry.utf8.count + 1 + repository.utf8.count <= Self.maximumNameLength else {
            throw ImageNameError(text: text, problem: "the name is longer than \(Self.maximumNameLength) characters")
        }
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.text = text
    }

    /// The same image pinned to `digest`, keeping the tag for people to read:
    /// `registry:5000/web:1.4@sha256:…`. The digest decides what runs.
    public func pinned(to digest: String) -> ImageName {
        let base = text.split(separator: "@", maxSplits: 1).first.map(String.init) ?? text
        // Re-parsing cannot fail: the base parsed, and the digest is checked by the caller's
        // source (a registry's answer checked against its content).
        return (try? ImageName(parsing: base + "@" + digest)) ?? self
    }

    // MARK: Grammar (github.com/distribution/reference)

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// A path component: lowercase alphanumerics, separated by one `.`, one or two `_`, or
    /// any number of `-`.
    private static func componentProblem(_ component: String) -> String? {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last else { return "a path component is empty (\"//\" or a leading or trailing \"/\")" }
        guard isLowerAlphanumeric(first), isLowerAlphanumeric(last) else {
            return "\"\(component)\" must start and end with a lowercase letter or digit"
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if isLowerAlphanumeric(byte) { index += 1; continue }
            var end = index
            while end < bytes.count, !isLowerAlphanumeric(bytes[end]) { end += 1 }
            let separator = String(decoding: bytes[index..<end], as: UTF8.self)
            let allowed = separator == "." || separator == "_" || separator == "__" || separator.allSatisfy { $0 == "-" }
            guard allowed else {
                return "\"\(component)\" has \"\(separator)\"; repository names use lowercase letters, digits and single '.', '_' or '__', or '-' between them"
            }
            index = end
        }
        return nil
    }

    private static func registryProblem(_ registry: String) -> String? {
        let parts = registry.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let host = parts[0]
        if parts.count == 2 {
            guard let port = Int(parts[1]), (1...65535).contains(port) else {
                return "\"\(registry)\" has an invalid port; write host:port with a port from 1 to 65535"
            }
        }
        let valid = !host.isEmpty && host.utf8.allSatisfy {
            isLowerAlphanumeric($0) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-")
        }
        return valid ? nil : "\"\(registry)\" is not a registry host; write a name or address such as registry.example:5000"
    }

    private static func tagProblem(_ tag: String) -> String? {
        let bytes = Array(tag.utf8)
        let isWord = { (byte: UInt8) in
            isLowerAlphanumeric(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || byte == UInt8(ascii: "_")
        }
        guard let first = bytes.first else { return "the tag after ':' is empty" }
        let valid = bytes.count <= 128 && isWord(first)
            && bytes.allSatisfy { isWord($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
        return valid ? nil : "tag \"\(tag)\" must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
    }

    static func digestProblem(_ digest: String) -> String? {
        guard digest.hasPrefix("sha256:") else { return "digest \"\(digest)\" must be sha256: and 64 lowercase hex digits" }
        let hex = digest.utf8.dropFirst("sha256:".utf8.count)
        let valid = hex.count == 64 && hex.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
        return valid ? nil : "digest \"\(digest)\" must be sha256: and 64 lowercase hex digits"
    }

    // MARK: ManifestValue

    public static var schema: ValueSchema {
        ValueSchema(typeName: "image reference", json: ["type": "string", "minLength": 1, "maxLength": 400])
    }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> ImageName? {
        guard let text = String.read(json, at: path(), issues) else { return nil }
        do {
            return try ImageName(parsing: text)
        } catch {
            issues.report(path(), "is not an image reference: " + error.problem + "; write e.g. \"registry.example:5000/team/web:1.4\" or \"busybox@sha256:<64 hex digits>\"")
            return nil
        }
    }

    public var json: JSONValue { .string(text) }

    public static func == (lhs: ImageName, rhs: ImageName) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }
}

/// Why a text is not an image reference.
public struct ImageNameError: Error, Sendable, Hashable, CustomStringConvertible {
    public let text: String
    public let problem: String
    public var description: String { "\"\(text)\" is not an image reference: \(problem)" }
}
