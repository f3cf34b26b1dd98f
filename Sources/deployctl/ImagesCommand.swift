import AgentAPI
import ArgumentParser
import Foundation

/// `deployctl images`: the images on the node of the agent it talks to.
struct Images: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the images on this agent's node, with their sizes and the instances that use them.",
        discussion: "Talk to another node's agent (--addr) to see its images. An image no instance uses is removed after agentd's --image-grace.")

    @OptionGroup var connection: ConnectionOptions
    @Option(name: .shortAndLong, help: "Output format: text or json.") var output: OutputFormat = .text

    func run() async throws {
        let out = Terminal.standardOutput
        try await reportFailures {
            let list = try await connection.client().perform { api in
                try await api.listImages().ok.body.json
            }
            if output == .json { return out.write(jsonText(list)) }
            var table = Table("IMAGE", "DIGEST", "LAYERS", "SIZE", "INSTANCES")
            for image in list.images {
                // The reference without its digest, which has a column of its own, shortened as docker shortens ids.
                let name = image.reference.split(separator: "@").first.map(String.init) ?? image.reference
                let digest = String(image.manifestDigest.prefix("sha256:".count + 12))
                table.add(name, digest, String(image.layers.count), bytesText(image.sizeBytes),
                          image.instances.isEmpty ? "-" : image.instances.joined(separator: ","))
            }
            if !list.images.isEmpty { out.write(table.render(out)) }
            let count = list.images.count
            out.write(count == 0 ? "no images on \(list.node)\n" : "\(count) image\(count == 1 ? "" : "s") on \(list.node)\n")
        }
    }
}
