/// Reads manifests: JSON text in, a validated ``Application`` or every problem out.
public enum ManifestDecoder {
    /// Parses and validates a manifest. Throws ``ManifestError/syntax(_:)`` for text that is
    /// not JSON, and ``ManifestError/invalid(_:)`` with every problem found otherwise.
    public static func decode(_ bytes: [UInt8]) throws(ManifestError) -> Application {
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw .syntax(error)
        }
        return try decode(json: json)
    }

    /// Validates a manifest already parsed.
    public static func decode(json: JSONValue) throws(ManifestError) -> Application {
        let issues = IssueCollector()
        let application = Application.read(json, at: .root, issues)
        guard issues.isEmpty, let application else {
            var seen = Set<ManifestIssue>()
            throw .invalid(issues.issues.filter { seen.insert($0).inserted })
        }
        return application
    }
}

extension Application {
    /// The manifest as pretty-printed JSON, every default written out; decoding it gives an
    /// equal application.
    public func encodedJSON() -> String {
        JSONWriter.pretty(json)
    }
}
