/// Generates the JSON Schema (draft 2020-12) of the manifest format from the same
/// ``ObjectSpec``s the reader uses, so that editors check what Flotilla checks.
public enum SchemaGenerator {
    /// The `$id` under which the schema is published.
    public static let schemaID = "https://flotilla.dev/schemas/manifest-v1.json"

    /// Every object spec reachable from ``Application``, in the order first met.
    public static func allSpecs() -> [ObjectSpec] {
        var ordered: [ObjectSpec] = []
        var seen = Set<String>()
        var pending = [Application.spec]
        while !pending.isEmpty {
            let spec = pending.removeFirst()
            guard seen.insert(spec.name).inserted else { continue }
            ordered.append(spec)
            for field in spec.fields { pending.append(contentsOf: field.schema.references) }
        }
        return ordered
    }

    /// The whole schema document.
    public static func schema() -> JSONValue {
        var document: JSONObject = [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": .string(schemaID),
            "title": "Flotilla application manifest, version 1",
            "$ref": "#/$defs/Application",
        ]
        var definitions = JSONObject()
        for spec in allSpecs() { definitions.append(spec.name, .object(objectSchema(spec))) }
        document.append("$defs", .object(definitions))
        return .object(document)
    }

    static func objectSchema(_ spec: ObjectSpec) -> JSONObject {
        var properties = JSONObject()
        for field in spec.fields {
            var property = field.schema.json
            // A `$ref` may have siblings in 2020-12; descriptions then show on hover.
            property.append("description", .string(field.doc))
            if let value = field.defaultValue { property.append("default", value) }
            if let example = field.example { property.append("examples", [example]) }
            properties.append(field.name, .object(property))
        }
        var schema: JSONObject = ["type": "object", "description": .string(spec.doc), "properties": .object(properties)]
        let required = spec.fields.filter(\.isRequired).map { JSONValue.string($0.name) }
        if !required.isEmpty { schema.append("required", .array(required)) }
        schema.append("additionalProperties", false)
        for member in spec.extraSchema { schema.append(member.key, member.value) }
        return schema
    }
}
