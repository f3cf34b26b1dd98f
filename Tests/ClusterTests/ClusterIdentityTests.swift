import Foundation
import Testing
import TestSupport

@testable import Cluster

/// An agent's cluster identity on disk: made at bootstrap or by a join, read back after a
/// restart, with its secrets readable by root only, and a damaged file named in the error.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct ClusterIdentityTests {
    @Test("bootstrap makes a CA, node 1's credentials and a join token; all read back; keys and token are 0600")
    func bootstrapSavesWhatLoadReads() throws {
        let root = try SecurityTemporaryDirectory()
        let directory = root.appending("cluster")
        #expect(try ClusterIdentity.load(from: directory) == nil)
        let made = try ClusterIdentity.bootstrap(directory: directory, clusterID: "c1", nodeName: "alpha", ipAddresses: ["10.0.0.1"])
        #expect(made.nodeID == 1 && made.role == .server)
        let loaded = try #require(try ClusterIdentity.load(from: directory))
        #expect(loaded.nodeID == 1 && loaded.role == .server)
        #expect(loaded.credentials.certificate == made.credentials.certificate)
        #expect(loaded.ca?.certificate == made.ca?.certificate)
        #expect(loaded.joinToken?.encoded == made.joinToken?.encoded)
        #expect(loaded.joinToken?.caPin == made.ca?.pin)
        #expect(try fileMode(directory) & 0o777 == 0o700)
        for secret in ["ca-key.pem", "node-key.pem", "join-token"] {
            #expect(try fileMode(directory + "/" + secret) & 0o777 == 0o600, "\(secret)")
        }
    }

    @Test("a rotated token is saved and the old one is gone")
    func rotationPersists() throws {
        let root = try SecurityTemporaryDirectory()
        let directory = root.appending("cluster")
        var identity = try ClusterIdentity.bootstrap(directory: directory, clusterID: "c1", nodeName: "alpha", ipAddresses: [])
        let old = try #require(identity.joinToken)
        let new = JoinToken.generate(caPin: try #require(identity.ca).pin)
        try identity.takeToken(new, in: directory)
        #expect(new.encoded != old.encoded)
        #expect(try ClusterIdentity.load(from: directory)?.joinToken?.encoded == new.encoded)
    }

    @Test("a server adopts the CA another server shares, and only its own cluster's")
    func aSharedCAIsAdoptedOnlyIfItIsTheClusters() throws {
        let root = try SecurityTemporaryDirectory()
        let first = try ClusterIdentity.bootstrap(directory: root.appending("first"), clusterID: "c1", nodeName: "alpha", ipAddresses: [])
        let ca = try #require(first.ca)
        let directory = root.appending("second")
        var second = ClusterIdentity(
            nodeID: 2, role: .server, credentials: try ca.issueNodeCredentials(nodeName: "beta", ipAddresses: [], now: Date()), ca: nil, joinToken: nil)
        try second.save(to: directory)
        #expect(try ClusterIdentity.load(from: directory)?.ca == nil)
        // Another cluster's CA is refused, even a well-formed one.
        let stranger = try ClusterCA.create(clusterID: "c2", now: Date())
        #expect(throws: ClusterSecurityError.self) { try ClusterCA.receive(try stranger.sharedBundle(), expected: second.credentials.caCertificate) }
        let received = try ClusterCA.receive(try ca.sharedBundle(), expected: second.credentials.caCertificate)
        try second.adopt(received, token: try #require(first.joinToken), in: directory)
        let loaded = try #require(try ClusterIdentity.load(from: directory))
        #expect(loaded.ca?.certificate == ca.certificate && loaded.joinToken?.encoded == first.joinToken?.encoded)
        #expect(try fileMode(directory + "/ca-key.pem") & 0o777 == 0o600)
    }

    @Test("a damaged member file or token is refused with its path and what it should hold")
    func damagedFilesAreNamed() throws {
        let root = try SecurityTemporaryDirectory()
        let directory = root.appending("cluster")
        _ = try ClusterIdentity.bootstrap(directory: directory, clusterID: "c1", nodeName: "alpha", ipAddresses: [])
        let cases: [(file: String, text: String, message: String)] = [
            ("member", "id=0\nrole=server\n", "id=0 is not a node id"),
            ("member", "id=3\n", "needs both id=<number> and role=server|client"),
            ("member", "id=3\nrole=boss\n", "unexpected line \"role=boss\""),
            ("join-token", "not-a-token\n", "join-token"),
        ]
        for (file, text, message) in cases {
            let path = directory + "/" + file
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            do {
                _ = try ClusterIdentity.load(from: directory)
                Issue.record("\(file) with \(text.debugDescription) was accepted")
            } catch {
                #expect(error.description.contains(path) && error.description.contains(message), "\(error)")
            }
            try original.write(to: URL(fileURLWithPath: path))
        }
    }
}
