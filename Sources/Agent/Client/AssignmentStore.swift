import Cluster
import Controller
import Foundation

/// A client's copies on disk (`<state>/client`, 0700): the last assignment the servers sent
/// and the servers it knows, each replaced atomically and fsynced before it is acted on, so
/// that a client restarted while no server answers runs what it ran, and finds the servers.
struct AssignmentStore: Sendable {
    let directory: String

    init(stateDirectory: String) throws {
        directory = stateDirectory + "/client"
        try SecurityFile.makeDirectory(directory)
    }

    private var assignmentPath: String { directory + "/assignment.json" }
    private var serversPath: String { directory + "/servers.json" }

    func loadAssignment() throws -> NodeAssignment? {
        try load(NodeAssignment.self, from: assignmentPath)
    }

    func save(_ assignment: NodeAssignment) throws {
        try SecurityFile.writeAtomically(AssignmentCoding.encode(assignment), to: assignmentPath, mode: SecurityFile.privateKeyMode)
    }

    func loadServers() throws -> [MemberRecord]? {
        try load([MemberRecord].self, from: serversPath)
    }

    func save(servers: [MemberRecord]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try SecurityFile.writeAtomically(Array(try encoder.encode(servers)), to: serversPath, mode: SecurityFile.privateKeyMode)
    }

    private func load<Value: Decodable>(_ type: Value.Type, from path: String) throws -> Value? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(type, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw AgentError.configuration(
                "\(path) cannot be read (\(error)); it is this client's copy of what the servers said: remove it to start from what they say next")
        }
    }
}
