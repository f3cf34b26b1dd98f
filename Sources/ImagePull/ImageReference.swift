import Images

/// An image's name as users write it: `[registry/]repository[:tag][@sha256:…]`, parsed the way
/// Docker's `distribution/reference` does (its grammar in `reference/regexp.go`): the first
/// component is a registry only if it has a `.` or a `:` or is `localhost`; otherwise the image
/// is on Docker Hub, and a single-component name there is under `library/`.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// `registry.example:5000`; `docker.io` for Docker Hub (requests go to `requestHost`).
    public var registry: String
    /// `team/web`; `library/busybox` for Docker Hub's `busybox`.
    public var repository: String
    /// nil when only a digest is given; `latest` when neither is.
    public var tag: String?
    /// The manifest (or index) digest this reference is pinned to, if any.
    public var digest: Digest?

    /// What the errors show as a valid reference.
    static let example = "registry.example:5000/team/web:1.4 or registry.example:5000/team/web@sha256:<64 hex digits>"

    /// Parses `text`; every error says what is wrong with it and shows a valid example.
    public init(parsing text: String) throws(ImagePullError) {
        func refuse(_ reason: String) -> ImagePullError { .invalidReference(text: text, reason: reason) }
        guard !text.isEmpty else { throw refuse("empty") }
        guard text.utf8.count <= 512 else { throw refuse("longer than 512 characters") }
        guard !text.contains(where: { $0.isWhitespace }) else { throw refuse("contains whitespace") }

        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let digestText = String(rest[rest.index(after: at)...])
            do {
                digest = try Digest(parsing: digestText)
            } catch {
                throw refuse("the part after @ is not a digest: \(error)")
            }
            rest = rest[..<at]
        }

        // The registry is the first component when it looks like a host.
        var registry = "docker.io"
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" {
                registry = String(first)
                rest = rest[rest.index(after: slash)...]
                try Self.validateRegistry(registry, refuse)
            }
        }

        // A tag is after the last `:` of the last component (a registry port was taken above).
        var tag: String?
        let lastComponentStart = rest.lastIndex(of: "/").map { rest.index(after: $0) } ?? rest.startIndex
        if let colon = rest[lastComponentStart...].lastIndex(of: ":") {
            let tagText = String(rest[rest.index(after: colon)...])
            try Self.validateTag(tagText, refuse)
            tag = tagText
            rest = rest[..<colon]
        }

        var repository = String(rest)
        guard !repository.isEmpty else { throw refuse("no repository name") }
        for component in repository.split(separator: "/", omittingEmptySubsequences: false) {
            try Self.validateComponent(component, refuse)
        }
        if registry == "docker.io" && !repository.contains("/") {
            repository = "library/" + repository
        }
        guard repository.utf8.count <= 255 else { throw refuse("repository name longer than 255 characters") }

        self.registry = registry
        self.repository = repository
        self.tag = tag ?? (digest == nil ? "latest" : nil)
        self.digest = digest
    }

    /// A reference with these parts, taken as valid (the parts of a parsed reference).
    public init(registry: String, repository: String, tag: String?, digest: Digest?) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// The same reference pinned to `digest`, keeping its tag: `reg:5000/web:1.4@sha256:…`.
    public func pinned(to digest: Digest) -> ImageReference {
        var pinned = self
        pinned.digest = digest
        return pinned
    }

    /// `registry/repository[:tag][@digest]`, which `init(parsing:)` reads back to this value.
    public var description: String {
        var text = registry + "/" + repository
        if let tag { text += ":" + tag }
        if let digest { text += "@" + digest.description }
        return text
    }

    /// The host (and port) requests go to: Docker Hub's API is not at `docker.io`.
    public var requestHost: String {
        registry == "docker.io" ? "registry-1.docker.io" : registry
    }

    /// What `/v2/<repository>/manifests/<…>` takes: the digest when pinned, else the tag.
    var manifestReference: String {
        digest?.description ?? tag ?? "latest"
    }

    private static func validateRegistry(_ host: String, _ refuse: (String) -> ImagePullError) throws(ImagePullError) {
        var name = Substring(host)
        if let colon = host.lastIndex(of: ":"), !host.hasPrefix("[") || host[..<colon].hasSuffix("]") {
            let port = host[host.index(after: colon)...]
            guard let number = Int(port), (1...65535).contains(number) else {
                throw refuse("registry \"\(host)\" has an invalid port \"\(port)\"")
            }
            name = host[..<colon]
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-.[]:".contains($0)) }) else {
            throw refuse("registry \"\(host)\" is not a host name")
        }
    }

    private static func validateTag(_ tag: String, _ refuse: (String) -> ImagePullError) throws(ImagePullError) {
        // [\w][\w.-]{0,127}
        guard let first = tag.first, !tag.isEmpty else { throw refuse("empty tag after \":\"") }
        guard tag.utf8.count <= 128 else { throw refuse("tag longer than 128 characters") }
        func isWord(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "_") }
        guard isWord(first), tag.allSatisfy({ isWord($0) || $0 == "." || $0 == "-" }) else {
            throw refuse("tag \"\(tag)\" may have only letters, digits, _, . and -, and not start with . or -")
        }
    }

    private static func validateComponent(_ component: Substring, _ refuse: (String) -> ImagePullError) throws(ImagePullError) {
        // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
        guard !component.isEmpty else { throw refuse("empty path component in the repository name") }
        func isAlnum(_ c: Character) -> Bool { c.isASCII && (c.isLowercase || c.isNumber) }
        guard component.allSatisfy({ isAlnum($0) || "._-".contains($0) }) else {
            if component.contains(where: { $0.isUppercase }) {
                throw refuse("repository name \"\(component)\" must be lowercase")
            }
            throw refuse("repository name \"\(component)\" may have only a-z, 0-9, ., _ and -")
        }
        guard let first = component.first, let last = component.last, isAlnum(first), isAlnum(last) else {
            throw refuse("repository name \"\(component)\" must start and end with a letter or digit")
        }
        var previous: Character = "a"
        var underscores = 0
        for c in component {
            if c == "_" { underscores += 1 } else { underscores = 0 }
            if underscores > 2 || (c == "." && !isAlnum(previous)) || (c == "_" && previous != "_" && !isAlnum(previous))
                || (c == "-" && !(isAlnum(previous) || previous == "-")) {
                throw refuse("repository name \"\(component)\" has separators (., _, __, -) in a row")
            }
            previous = c
        }
    }
}
