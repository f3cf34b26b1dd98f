import ArgumentParser
import Manifest

/// `deployctl schema`: the JSON Schema of the manifest format, or its field reference.
struct Schema: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the JSON Schema (draft 2020-12) of the manifest format.",
        discussion: "manifests/schema.json is this command's output; `--format markdown` prints the field reference of docs/manifest.md.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case json, markdown
    }

    @Option(help: "json (the schema) or markdown (the field reference).")
    var format: Format = .json

    func run() async throws {
        switch format {
        case .json: Terminal.standardOutput.write(JSONWriter.pretty(SchemaGenerator.schema()))
        case .markdown: Terminal.standardOutput.write(FieldReference.markdown())
        }
    }
}
