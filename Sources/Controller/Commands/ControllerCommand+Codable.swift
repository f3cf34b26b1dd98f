/// The log's format for commands: one object with a `type` and that command's fields, written
/// out by hand so that renaming a Swift case or label never changes what is on disk.
extension ControllerCommand: Codable {
    private enum Kind: String, Codable {
        case applyApplication, deleteApplication, scaleService, restartService, registerNode
        case nodeHeartbeat, markNodeDown, setNodeDraining, setNodeEligibility, commitPlan, reportInstanceStatus
        case addMember, removeMember, setJoinToken, kvTransaction, controlRollout
    }

    private enum CodingKeys: String, CodingKey {
        case type, manifest, expectedRevision, application, service, replicas, node, registration
        case lastHeartbeatSeen, draining, deadline, eligible, plan, reports, memberID, address, role, token, transaction, expectedAddress, expectedAbsent
        case action, toRevision
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func service() throws -> ServiceKey {
            ServiceKey(try container.decode(String.self, forKey: .application), try container.decode(String.self, forKey: .service))
        }
        switch try container.decode(Kind.self, forKey: .type) {
        case .applyApplication:
            self = .applyApplication(
                manifestJSON: try container.decode(String.self, forKey: .manifest),
                expectedRevision: try container.decodeIfPresent(UInt64.self, forKey: .expectedRevision))
        case .deleteApplication:
            self = .deleteApplication(
                name: try container.decode(String.self, forKey: .application),
                expectedRevision: try container.decodeIfPresent(UInt64.self, forKey: .expectedRevision))
        case .scaleService:
            self = .scaleService(
                try service(), replicas: try container.decode(Int.self, forKey: .replicas),
                expectedRevision: try container.decodeIfPresent(UInt64.self, forKey: .expectedRevision))
        case .restartService:
            self = .restartService(try service())
        case .registerNode:
            self = .registerNode(try container.decode(NodeRegistration.self, forKey: .registration))
        case .nodeHeartbeat:
            self = .nodeHeartbeat(node: try container.decode(String.self, forKey: .node))
        case .markNodeDown:
            self = .markNodeDown(
                node: try container.decode(String.self, forKey: .node),
                lastHeartbeatSeen: try container.decodeIfPresent(Timestamp.self, forKey: .lastHeartbeatSeen))
        case .setNodeDraining:
            self = .setNodeDraining(
                node: try container.decode(String.self, forKey: .node), draining: try container.decode(Bool.self, forKey: .draining),
                deadline: try container.decodeIfPresent(Timestamp.self, forKey: .deadline))
        case .setNodeEligibility:
            self = .setNodeEligibility(node: try container.decode(String.self, forKey: .node), eligible: try container.decode(Bool.self, forKey: .eligible))
        case .commitPlan:
            self = .commitPlan(try container.decode(Plan.self, forKey: .plan))
        case .reportInstanceStatus:
            self = .reportInstanceStatus(
                node: try container.decode(String.self, forKey: .node), reports: try container.decode([InstanceStatusReport].self, forKey: .reports))
        case .addMember:
            self = .addMember(
                id: try container.decode(UInt64.self, forKey: .memberID), name: try container.decode(String.self, forKey: .node),
                address: try container.decode(String.self, forKey: .address),
                role: try container.decodeIfPresent(MemberRole.self, forKey: .role) ?? .server,
                expecting: try container.decodeIfPresent(Bool.self, forKey: .expectedAbsent) == true
                    ? .absent : try container.decodeIfPresent(String.self, forKey: .expectedAddress).map(MemberExpectation.at))
        case .removeMember:
            self = .removeMember(id: try container.decode(UInt64.self, forKey: .memberID))
        case .setJoinToken:
            self = .setJoinToken(try container.decode(String.self, forKey: .token))
        case .kvTransaction:
            self = .kvTransaction(try container.decode(KVTransaction.self, forKey: .transaction))
        case .controlRollout:
            let name = try container.decode(String.self, forKey: .application)
            let action: RolloutAction
            switch try container.decode(String.self, forKey: .action) {
            case "pause": action = .pause
            case "resume": action = .resume
            case "promote": action = .promote
            case "undo": action = .undo(to: try container.decodeIfPresent(UInt64.self, forKey: .toRevision))
            case let other:
                throw DecodingError.dataCorruptedError(forKey: .action, in: container, debugDescription: "unknown rollout action \(other)")
            }
            self = .controlRollout(application: name, action: action)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        func encode(_ service: ServiceKey) throws {
            try container.encode(service.application, forKey: .application)
            try container.encode(service.service, forKey: .service)
        }
        switch self {
        case .applyApplication(let manifestJSON, let expectedRevision):
            try container.encode(Kind.applyApplication, forKey: .type)
            try container.encode(manifestJSON, forKey: .manifest)
            try container.encodeIfPresent(expectedRevision, forKey: .expectedRevision)
        case .deleteApplication(let name, let expectedRevision):
            try container.encode(Kind.deleteApplication, forKey: .type)
            try container.encode(name, forKey: .application)
            try container.encodeIfPresent(expectedRevision, forKey: .expectedRevision)
        case .scaleService(let service, let replicas, let expectedRevision):
            try container.encode(Kind.scaleService, forKey: .type)
            try encode(service)
            try container.encode(replicas, forKey: .replicas)
            try container.encodeIfPresent(expectedRevision, forKey: .expectedRevision)
        case .restartService(let service):
            try container.encode(Kind.restartService, forKey: .type)
            try encode(service)
        case .registerNode(let registration):
            try container.encode(Kind.registerNode, forKey: .type)
            try container.encode(registration, forKey: .registration)
        case .nodeHeartbeat(let node):
            try container.encode(Kind.nodeHeartbeat, forKey: .type)
            try container.encode(node, forKey: .node)
        case .markNodeDown(let node, let lastHeartbeatSeen):
            try container.encode(Kind.markNodeDown, forKey: .type)
            try container.encode(node, forKey: .node)
            try container.encodeIfPresent(lastHeartbeatSeen, forKey: .lastHeartbeatSeen)
        case .setNodeEligibility(let node, let eligible):
            try container.encode(Kind.setNodeEligibility, forKey: .type)
            try container.encode(node, forKey: .node)
            try container.encode(eligible, forKey: .eligible)
        case .setNodeDraining(let node, let draining, let deadline):
            try container.encode(Kind.setNodeDraining, forKey: .type)
            try container.encodeIfPresent(deadline, forKey: .deadline)
            try container.encode(node, forKey: .node)
            try container.encode(draining, forKey: .draining)
        case .commitPlan(let plan):
            try container.encode(Kind.commitPlan, forKey: .type)
            try container.encode(plan, forKey: .plan)
        case .reportInstanceStatus(let node, let reports):
            try container.encode(Kind.reportInstanceStatus, forKey: .type)
            try container.encode(node, forKey: .node)
            try container.encode(reports, forKey: .reports)
        case .addMember(let id, let name, let address, let role, let expecting):
            try container.encode(Kind.addMember, forKey: .type)
            if role != .server { try container.encode(role, forKey: .role) }
            switch expecting {
            case .absent?: try container.encode(true, forKey: .expectedAbsent)
            case .at(let expected)?: try container.encode(expected, forKey: .expectedAddress)
            case nil: break
            }
            try container.encode(id, forKey: .memberID)
            try container.encode(name, forKey: .node)
            try container.encode(address, forKey: .address)
        case .removeMember(let id):
            try container.encode(Kind.removeMember, forKey: .type)
            try container.encode(id, forKey: .memberID)
        case .setJoinToken(let token):
            try container.encode(Kind.setJoinToken, forKey: .type)
            try container.encode(token, forKey: .token)
        case .kvTransaction(let transaction):
            try container.encode(Kind.kvTransaction, forKey: .type)
            try container.encode(transaction, forKey: .transaction)
        case .controlRollout(let name, let action):
            try container.encode(Kind.controlRollout, forKey: .type)
            try container.encode(name, forKey: .application)
            switch action {
            case .pause: try container.encode("pause", forKey: .action)
            case .resume: try container.encode("resume", forKey: .action)
            case .promote: try container.encode("promote", forKey: .action)
            case .undo(let revision):
                try container.encode("undo", forKey: .action)
                try container.encodeIfPresent(revision, forKey: .toRevision)
            }
        }
    }
}
