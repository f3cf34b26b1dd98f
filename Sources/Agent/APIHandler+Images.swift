import AgentAPI
import Images

/// The images on this agent's node.
extension APIHandler {
    func listImages(_ input: Operations.ListImages.Input) async throws -> Operations.ListImages.Output {
        .ok(.init(body: .json(try APIMapping.imageList(node: api.nodeName, api.images))))
    }
}

extension APIMapping {
    /// A node's images as the API lists them. A client agent answers this itself rather than
    /// relay it: a server would list its own node's.
    static func imageList(node: String, _ images: NodeImages?) throws -> Schemas.ImageList {
        let listed = try (images?.images() ?? []).map { entry in
            Schemas.ImageInfo(
                reference: entry.image.reference.description, manifestDigest: entry.image.manifestDigest.description,
                configDigest: entry.image.configDigest.description, layers: entry.image.layers.map(\.description),
                sizeBytes: entry.image.size, instances: entry.instances)
        }
        return Schemas.ImageList(node: node, images: listed)
    }
}
