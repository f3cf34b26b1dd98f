/// What happens to a service's instances when their node stops answering (Nomad's
/// `disconnect` block, Kubernetes' toleration of `node.kubernetes.io/unreachable`).
public struct DisconnectPolicy: ManifestObject, Hashable {
    public var lostAfter: Duration

    public init(lostAfter: Duration = .zero) {
        self.lostAfter = lostAfter
    }

    public static let spec = ObjectSpec(
        "Disconnect",
        doc: "When a node is marked down (silent past the agents' node-down timeout), its instances are lost: nobody knows whether they still run. They are replaced on other nodes once `lostAfter` has passed since; a node that comes back stops the instances that were replaced meanwhile, and its instances that were not are kept.",
        fields: [
            FieldSpec("lostAfter", Duration.self, default: "0s", example: "5m", doc: "How long after its node is marked down a lost instance is replaced elsewhere. `0s` replaces at once; longer rides out short partitions without running the service twice (a replaced instance is stopped only when its node comes back)."),
        ])

    public init?(reading reader: ObjectReader) {
        lostAfter = reader.read("lostAfter") ?? .zero
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("lostAfter", lostAfter)
    }
}
