import AgentAPI
import Images

/// The images on this agent's node.
extension APIHandler {
    func listImages(_ input: Operations.ListImages.Input) async throws -> Operations.ListImages.Output {
        let images = try api.images?.images() ?? []
        let listed = images.map { entry in
            Schemas.ImageInfo(
                reference: entry.image.reference.description, manifestDigest: entry.image.manifestDigest.description,
                configDigest: entry.image.configDigest.description, layers: entry.image.layers.map(\.description),
                sizeBytes: entry.image.size, instances: entry.instances)
        }
        return .ok(.init(body: .json(Schemas.ImageList(node: api.nodeName, images: listed))))
    }
}
