import Manifest
import Testing

/// The manifest format has fields for features that are not built yet (canaries). The format
/// says so, and the examples promise nothing that does not exist.
@Suite struct UnbuiltFeatureTests {
    @Test func theSpecsSayWhatIsNotBuiltYet() throws {
        for name in ["canaries"] {
            let field = try #require(UpdateStrategy.spec.fields.first { $0.name == name })
            #expect(field.doc.contains("not acted on yet"), "update.\(name): \(field.doc)")
        }
    }

    @Test(arguments: try exampleManifestNames())
    func anExamplePromisesNoServiceDiscovery(_ name: String) throws {
        let text = try readRepositoryFile("manifests/" + name)
        #expect(!text.contains("service discovery"), "\(name) promises service discovery")
        #expect(!text.contains(".service.flotilla"), "\(name) refers to a discovery DNS name")
    }

    /// A description that names canaries says they are not acted on yet.
    @Test(arguments: try exampleManifestNames())
    func anExampleDescribesItsCanariesAsKeptOnly(_ name: String) throws {
        let application = try ManifestDecoder.decode(Array(try readRepositoryFile("manifests/" + name).utf8))
        for description in [application.description] + application.services.map(\.description) where description.contains("canar") {
            #expect(description.contains("checked and kept"), "\(name): \(description)")
        }
    }
}
