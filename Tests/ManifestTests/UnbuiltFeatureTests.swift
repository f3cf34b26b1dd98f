import Manifest
import Testing

/// The examples promise nothing that does not exist.
@Suite struct UnbuiltFeatureTests {
    @Test(arguments: try exampleManifestNames())
    func anExamplePromisesNoServiceDiscovery(_ name: String) throws {
        let text = try readRepositoryFile("manifests/" + name)
        #expect(!text.contains("service discovery"), "\(name) promises service discovery")
        #expect(!text.contains(".service.flotilla"), "\(name) refers to a discovery DNS name")
    }
}
