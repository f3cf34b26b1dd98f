/// A change of membership, one server at a time (thesis §4.1): the data of an entry of kind
/// `.configChange`. It takes effect on each node as soon as the entry is in that node's log,
/// committed or not, and is undone if the entry is overwritten (thesis §4.1).
public struct ConfChange: Sendable, Hashable {
    /// What the change does.
    public enum Operation: UInt8, Sendable, Hashable {
        /// Adds the node as a voter, or promotes it if it is a learner (the leader refuses to
        /// promote a learner that has not caught up, thesis §4.2.1).
        case addVoter = 1
        /// Adds the node as a learner, which receives the log but does not vote; also demotes a
        /// voter.
        case addLearner = 2
        /// Removes the node, which may be the leader itself (thesis §4.2.2).
        case removeNode = 3
    }

    /// What the change does.
    public var operation: Operation
    /// The node it applies to.
    public var nodeID: NodeID

    /// Creates a change.
    public init(_ operation: Operation, _ nodeID: NodeID) {
        self.operation = operation
        self.nodeID = nodeID
    }

    /// The entry data: the operation byte, then the node id as a varint.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(reservingCapacity: 11)
        writer.writeByte(operation.rawValue)
        writer.writeVarint(nodeID)
        return writer.bytes
    }

    /// Decodes what `encoded()` wrote.
    public init(decoding bytes: [UInt8]) throws(MessageDecodingError) {
        var reader = ByteReader(bytes)
        let raw = try reader.readByte()
        guard let operation = Operation(rawValue: raw) else {
            throw .invalidValue(field: "conf change operation", value: UInt64(raw), offset: 0)
        }
        let nodeID = try reader.readVarint()
        guard nodeID != 0 else { throw .invalidValue(field: "conf change node", value: 0, offset: 1) }
        guard reader.remainingCount == 0 else { throw .trailingBytes(count: reader.remainingCount) }
        self.init(operation, nodeID)
    }

    /// The membership after this change.
    public func applied(to conf: ConfState) -> ConfState {
        var result = conf
        switch operation {
        case .addVoter:
            result.learners.remove(nodeID)
            result.voters.insert(nodeID)
        case .addLearner:
            result.voters.remove(nodeID)
            result.learners.insert(nodeID)
        case .removeNode:
            result.voters.remove(nodeID)
            result.learners.remove(nodeID)
        }
        return result
    }
}

extension ConfChange: CustomStringConvertible {
    /// `add-voter 4`, `add-learner 4` or `remove 4`.
    public var description: String {
        switch operation {
        case .addVoter: "add-voter \(nodeID)"
        case .addLearner: "add-learner \(nodeID)"
        case .removeNode: "remove \(nodeID)"
        }
    }
}
