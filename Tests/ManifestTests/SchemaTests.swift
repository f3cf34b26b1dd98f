import Manifest
import Testing

@Suite struct SchemaTests {
    @Test func committedSchemaIsCurrent() throws {
        let committed = try readRepositoryFile("manifests/schema.json")
        #expect(committed == JSONWriter.pretty(SchemaGenerator.schema()), "manifests/schema.json is stale: run `deployctl schema > manifests/schema.json`")
    }

    @Test func fieldReferenceInDocsIsCurrent() throws {
        let docs = try readRepositoryFile("docs/manifest.md")
        let generated = FieldReference.markdown()
        #expect(docs.hasSuffix(generated), "docs/manifest.md's field reference is stale: replace everything from the marker on with `deployctl schema --format markdown`")
    }

    @Test func everyObjectForbidsUnknownMembersAndDocumentsEveryField() {
        for spec in SchemaGenerator.allSpecs() {
            #expect(!spec.doc.isEmpty, "\(spec.name) has no doc")
            for field in spec.fields {
                #expect(!field.doc.isEmpty, "\(spec.name).\(field.name) has no doc")
            }
        }
        guard case .object(let document) = SchemaGenerator.schema(), case .object(let definitions)? = document["$defs"] else {
            Issue.record("no $defs")
            return
        }
        #expect(definitions.members.count == SchemaGenerator.allSpecs().count)
        for member in definitions.members {
            guard case .object(let definition) = member.value else { continue }
            #expect(definition["additionalProperties"] == false, "\(member.key) allows unknown members")
        }
    }

    /// A document holding every field of every object, built from the specs' examples and
    /// defaults: reading it must touch every declared field (the reader traps on fields
    /// declared but not read, and on reads of undeclared fields) and every default must read.
    @Test func maximalDocumentReadsEveryField() {
        func maximal(_ spec: ObjectSpec, depth: Int) -> JSONValue {
            var object = JSONObject()
            for field in spec.fields {
                if let nested = field.schema.references.first, depth < 6 {
                    let value = maximal(nested, depth: depth + 1)
                    object.append(field.name, field.schema.typeName.hasPrefix("array") ? [value] : value)
                } else if let value = field.example ?? field.defaultValue {
                    object.append(field.name, value)
                }
            }
            return .object(object)
        }
        let document = maximal(Application.spec, depth: 0)
        // It is not a valid manifest (all three probes at once, both value and values…);
        // what matters is that reading it completes and reports no unknown field.
        do {
            _ = try ManifestDecoder.decode(json: document)
        } catch {
            #expect(!error.issues.contains { $0.message.hasPrefix("unknown field") }, "\(error)")
        }
    }
}
