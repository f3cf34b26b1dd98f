import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import Cluster

@Suite("Peer certificate verification")
struct SecurityPeerVerifierTests {
    let ca: ClusterCA
    let nodeB: NodeCredentials

    init() throws {
        // The CA is a month old, so that certificates issued in the past are its own.
        ca = try ClusterCA.create(clusterID: "verify", now: testEpoch.addingTimeInterval(-30 * 24 * 3600))
        nodeB = try ca.issueNodeCredentials(nodeName: "b", ipAddresses: ["10.0.0.2"], now: testEpoch)
    }

    @Test("a node certificate of the cluster CA is accepted, with or without an expected name")
    func accepted() throws {
        let der = try derBytes(nodeB.certificate)
        let named = ca.peerVerifier.verify(peerCertificateDER: der, expectedNodeName: "b", now: testEpoch)
        #expect(try named.get() == VerifiedPeer(nodeName: "b", certificate: nodeB.certificate))
        let anyNode = ca.peerVerifier.verify(peerCertificateDER: der, expectedNodeName: nil, now: testEpoch)
        #expect(try anyNode.get().nodeName == "b")
        // Host names compare without regard to case (RFC 6125 §6.4.1).
        #expect(rejection(ca.peerVerifier.verify(peerCertificateDER: der, expectedNodeName: "B", now: testEpoch)) == nil)
    }

    @Test("a certificate from another CA is refused, naming its issuer")
    func anotherCA() throws {
        let stranger = try ClusterCA.create(clusterID: "stranger", now: testEpoch)
        let impostor = try stranger.issueNodeCredentials(nodeName: "b", now: testEpoch)
        let refused = rejection(
            ca.peerVerifier.verify(peerCertificateDER: try derBytes(impostor.certificate), expectedNodeName: "b", now: testEpoch))
        #expect(refused == .signedByAnotherCA(holder: "b", issuer: "CN=Flotilla cluster CA stranger"))
        #expect(refused?.description == "certificate for node b is signed by another CA (issuer CN=Flotilla cluster CA stranger)")
    }

    @Test("a certificate from another CA with the same name is refused by its signature")
    func sameNamedCA() throws {
        let twin = try ClusterCA.create(clusterID: "verify", now: ca.certificate.notValidBefore)
        let impostor = try twin.issueNodeCredentials(nodeName: "b", now: testEpoch)
        let refused = rejection(
            ca.peerVerifier.verify(peerCertificateDER: try derBytes(impostor.certificate), expectedNodeName: "b", now: testEpoch))
        #expect(refused == .signatureInvalid(holder: "b", issuer: "CN=Flotilla cluster CA verify"))
        #expect(refused?.description.contains("its signature does not verify with that CA's key") == true)
    }

    @Test("an expired certificate is refused, saying when it expired")
    func expired() throws {
        // Issued three days before now for a day: expired two days ago.
        let issued = testEpoch.addingTimeInterval(-3 * 24 * 3600)
        let old = try ca.issueNodeCredentials(nodeName: "b", now: issued)
        let refused = rejection(
            ca.peerVerifier.verify(peerCertificateDER: try derBytes(old.certificate), expectedNodeName: "b", now: testEpoch))
        let end = issued.addingTimeInterval(24 * 3600)
        #expect(refused == .expired(holder: "b", notValidAfter: end, now: testEpoch))
        #expect(refused?.description == "certificate for node b expired at 2029-12-30T00:00:00Z (now 2030-01-01T00:00:00Z)")
        // Still good at its last second (RFC 5280 §4.1.2.5: the bounds are inclusive), not after.
        #expect(rejection(ca.peerVerifier.verify(peerCertificate: old.certificate, expectedNodeName: "b", now: end)) == nil)
        #expect(rejection(ca.peerVerifier.verify(peerCertificate: old.certificate, expectedNodeName: "b", now: end + 1)) != nil)
    }

    @Test("a certificate not yet valid is refused, hinting at the clock")
    func notYetValid() throws {
        // Issued by a server whose clock is a day ahead: even the 5-minute backdate does not cover it.
        let ahead = try ca.issueNodeCredentials(nodeName: "b", now: testEpoch.addingTimeInterval(24 * 3600))
        let refused = rejection(ca.peerVerifier.verify(peerCertificate: ahead.certificate, expectedNodeName: "b", now: testEpoch))
        #expect(refused == .notYetValid(holder: "b", notValidBefore: testEpoch.addingTimeInterval(24 * 3600 - 300), now: testEpoch))
        // Within the backdate, a peer a little behind still accepts it.
        let behind = testEpoch.addingTimeInterval(24 * 3600 - 299)
        #expect(rejection(ca.peerVerifier.verify(peerCertificate: ahead.certificate, expectedNodeName: "b", now: behind)) == nil)
        #expect(refused?.description.contains("is a clock behind?") == true)
    }

    @Test("a certificate for another node is refused, naming both")
    func anotherNode() throws {
        let nodeC = try ca.issueNodeCredentials(nodeName: "c", now: testEpoch)
        let refused = rejection(
            ca.peerVerifier.verify(peerCertificateDER: try derBytes(nodeC.certificate), expectedNodeName: "b", now: testEpoch))
        #expect(refused == .wrongNode(expected: "b", presented: ["c"]))
        #expect(refused?.description == "certificate for node c presented where node b was expected")
    }

    @Test("the CA certificate itself, or any CA, is not a node certificate")
    func caAsLeaf() throws {
        let refused = rejection(
            ca.peerVerifier.verify(peerCertificateDER: try derBytes(ca.certificate), expectedNodeName: nil, now: testEpoch))
        #expect(refused == .notANodeCertificate(holder: "CN=Flotilla cluster CA verify"))
        // A CA certificate signed by the cluster CA (which never issues one) is refused the same way.
        let subordinate = try ca.signNodeCertificate(
            publicKey: nodeB.certificate.publicKey, nodeName: "b", ipAddresses: [], now: testEpoch, lifetime: .seconds(3600)
        ) { extensions in
            extensions.update(try Certificate.Extension(BasicConstraints.isCertificateAuthority(maxPathLength: nil), critical: true))
        }
        #expect(rejection(ca.peerVerifier.verify(peerCertificate: subordinate, expectedNodeName: "b", now: testEpoch)) == .notANodeCertificate(holder: "CN=b"))
    }

    @Test("a certificate without both TLS usages is refused")
    func missingUsage() throws {
        let serverOnly = try ca.signNodeCertificate(
            publicKey: nodeB.certificate.publicKey, nodeName: "b", ipAddresses: [], now: testEpoch, lifetime: .seconds(3600)
        ) { extensions in
            extensions.update(try Certificate.Extension(try ExtendedKeyUsage([.serverAuth]), critical: false))
        }
        #expect(
            rejection(ca.peerVerifier.verify(peerCertificate: serverOnly, expectedNodeName: "b", now: testEpoch))
                == .missingUsage(holder: "b", missing: "extendedKeyUsage clientAuth"))
        let noUsage = try ca.signNodeCertificate(
            publicKey: nodeB.certificate.publicKey, nodeName: "b", ipAddresses: [], now: testEpoch, lifetime: .seconds(3600)
        ) { extensions in
            extensions.remove(.X509ExtensionID.extendedKeyUsage)
        }
        #expect(
            rejection(ca.peerVerifier.verify(peerCertificate: noUsage, expectedNodeName: "b", now: testEpoch))
                == .missingUsage(holder: "b", missing: "extendedKeyUsage (serverAuth, clientAuth)"))
    }

    @Test("an unknown critical extension is refused (RFC 5280 §4.2)")
    func unknownCriticalExtension() throws {
        let oid: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 99999, 1]
        let marked = try ca.signNodeCertificate(
            publicKey: nodeB.certificate.publicKey, nodeName: "b", ipAddresses: [], now: testEpoch, lifetime: .seconds(3600)
        ) { extensions in
            extensions.update(Certificate.Extension(oid: oid, critical: true, value: [0x05, 0x00]))
        }
        #expect(
            rejection(ca.peerVerifier.verify(peerCertificate: marked, expectedNodeName: "b", now: testEpoch))
                == .unhandledCriticalExtension(holder: "b", oid: oid))
    }

    @Test("bytes that are no certificate, or no certificate at all, are refused")
    func unreadable() throws {
        let garbage = rejection(ca.peerVerifier.verify(peerCertificateDER: [0x30, 0x00], expectedNodeName: nil, now: testEpoch))
        #expect(garbage?.description.hasPrefix("the peer's certificate is not a DER X.509 certificate") == true)
        #expect(rejection(ca.peerVerifier.verify(peerCertificates: [], expectedNodeName: nil, now: testEpoch)) == .noCertificate)
    }

    @Test("an expired CA makes every certificate it signed refused")
    func expiredCA() throws {
        let shortCA = try ClusterCA.create(clusterID: "short", now: testEpoch, validity: .seconds(3600))
        let node = try shortCA.issueNodeCredentials(nodeName: "b", now: testEpoch)
        let later = testEpoch.addingTimeInterval(3600)
        let refused = rejection(shortCA.peerVerifier.verify(peerCertificate: node.certificate, expectedNodeName: "b", now: later))
        #expect(
            refused
                == .caNotValid(
                    notValidBefore: shortCA.certificate.notValidBefore, notValidAfter: shortCA.certificate.notValidAfter, now: later))
    }

    @Test("a joining agent accepts a server whose chain holds the pinned CA, and refuses another pin")
    func joinTarget() throws {
        let chain = [try derBytes(nodeB.certificate), try derBytes(ca.certificate)]
        let target = try ClusterPeerVerifier.verifyJoinTarget(presentedChainDER: chain, pin: ca.pin, now: testEpoch).get()
        #expect(target.caCertificate == ca.certificate)
        #expect(target.server.nodeName == "b")

        let stranger = try ClusterCA.create(clusterID: "stranger", now: testEpoch)
        let refused = rejection(ClusterPeerVerifier.verifyJoinTarget(presentedChainDER: chain, pin: stranger.pin, now: testEpoch).map(\.server))
        #expect(refused == .caPinMismatch(pinned: stranger.pin, presented: [ca.pin]))
        #expect(refused?.description.contains("or something is in the middle") == true)

        // A man in the middle with its own CA, presenting the real CA certificate beside a leaf it
        // signed itself: the pin matches the real CA, the leaf does not chain to it.
        let middle = try stranger.issueNodeCredentials(nodeName: "b", now: testEpoch)
        let spliced = [try derBytes(middle.certificate), try derBytes(ca.certificate)]
        let splicedResult = ClusterPeerVerifier.verifyJoinTarget(presentedChainDER: spliced, pin: ca.pin, now: testEpoch)
        #expect(rejection(splicedResult.map(\.server)) == .signedByAnotherCA(holder: "b", issuer: "CN=Flotilla cluster CA stranger"))

        // The pin of a leaf is not the pin of a CA: a chain of leaves is refused.
        let leafPin = try ClusterCAPin(certificate: nodeB.certificate)
        let leaves = [try derBytes(nodeB.certificate), try derBytes(nodeB.certificate)]
        #expect(rejection(ClusterPeerVerifier.verifyJoinTarget(presentedChainDER: leaves, pin: leafPin, now: testEpoch).map(\.server)) != nil)
        #expect(
            rejection(ClusterPeerVerifier.verifyJoinTarget(presentedChainDER: [], pin: ca.pin, now: testEpoch).map(\.server))
                == .noCertificate)
    }
}
