import Crypto
import Foundation
import SwiftASN1
import Testing
import TestSupport
import X509

@testable import Cluster

@Suite("Node certificates", .dedicatedThread)
struct SecurityNodeCertificateTests {
    @Test("a node certificate from a request carries the node's names, usages and key")
    func issuedCertificate() throws {
        let ca = try ClusterCA.create(clusterID: "issue", now: testEpoch)
        let request = try NodeCertificateRequest(nodeName: "node-b")
        let certificate = try ca.issueNodeCertificate(
            requestDER: try request.derBytes(), nodeName: "node-b", ipAddresses: ["10.0.0.2", "fd00::2"], now: testEpoch)

        #expect(certificate.subject.description == "CN=node-b")
        #expect(certificate.issuer == ca.certificate.subject)
        #expect(certificate.publicKey == Certificate.PublicKey(request.privateKey.publicKey))
        #expect(ca.certificate.publicKey.isValidSignature(certificate.signature, for: certificate))
        #expect(certificate.dnsNames == ["node-b"])
        #expect(certificate.ipAddressNames == ["10.0.0.2", "fd00::2"])

        let extendedUsage = try #require(try certificate.extensions.extendedKeyUsage)
        #expect(Array(extendedUsage) == [.serverAuth, .clientAuth])
        let usage = try #require(certificate.extensions[oid: .X509ExtensionID.keyUsage])
        #expect(usage.critical)
        #expect(try certificate.extensions.keyUsage == KeyUsage(digitalSignature: true))
        #expect(try certificate.extensions.basicConstraints == .notCertificateAuthority)
        let authority = try #require(try certificate.extensions.authorityKeyIdentifier)
        #expect(authority.keyIdentifier == (try ca.certificate.extensions.subjectKeyIdentifier)?.keyIdentifier)

        #expect(certificate.notValidBefore == testEpoch.addingTimeInterval(-300))
        #expect(certificate.notValidAfter == testEpoch.addingTimeInterval(24 * 3600))
        // RFC 5280 §4.1.2.2: positive, at most 20 octets; ours are exactly 20.
        #expect(certificate.serialNumber.bytes.count == 20)
        #expect(try #require(certificate.serialNumber.bytes.first) & 0x80 == 0)
        let other = try ca.issueNodeCertificate(request: request.request, nodeName: "node-b", now: testEpoch)
        #expect(other.serialNumber != certificate.serialNumber)
    }

    @Test("the lifetime is configurable and never runs past the CA's end")
    func lifetime() throws {
        let ca = try ClusterCA.create(clusterID: "life", now: testEpoch, validity: .seconds(7200))
        let request = try NodeCertificateRequest(nodeName: "a")
        let hour = try ca.issueNodeCertificate(request: request.request, nodeName: "a", now: testEpoch, lifetime: .seconds(1800))
        #expect(hour.notValidAfter == testEpoch.addingTimeInterval(1800))
        let clamped = try ca.issueNodeCertificate(request: request.request, nodeName: "a", now: testEpoch)
        #expect(clamped.notValidAfter == ca.certificate.notValidAfter)
        #expect(throws: ClusterSecurityError.invalidLifetime(.zero)) {
            try ca.issueNodeCertificate(request: request.request, nodeName: "a", now: testEpoch, lifetime: .zero)
        }
        let late = testEpoch.addingTimeInterval(7200)
        #expect(
            throws: ClusterSecurityError.caNotValid(
                notValidBefore: ca.certificate.notValidBefore, notValidAfter: ca.certificate.notValidAfter, now: late)
        ) { try ca.issueNodeCertificate(request: request.request, nodeName: "a", now: late) }
    }

    @Test(
        "openssl verifies a node certificate against the CA and sees its names and usages",
        .enabled(if: OpenSSL.isInstalled, OpenSSL.missing))
    func openSSLVerifies() throws {
        let directory = try SecurityTemporaryDirectory()
        let ca = try ClusterCA.create(clusterID: "openssl", now: Date())
        try ca.save(to: directory.path)
        let credentials = try ca.issueNodeCredentials(nodeName: "node-b", ipAddresses: ["192.0.2.7"], now: Date())
        try credentials.save(to: directory.path)
        let leafPath = directory.appending("leaf.pem")
        try Data(try pemBytes(credentials.certificate)).write(to: URL(fileURLWithPath: leafPath))

        for purpose in ["sslserver", "sslclient"] {
            let verified = try OpenSSL.run(["verify", "-purpose", purpose, "-CAfile", directory.appending("ca.pem"), leafPath])
            #expect(verified.status == 0, "\(purpose): \(verified.error)")
        }
        let named = try OpenSSL.run(["verify", "-verify_hostname", "node-b", "-CAfile", directory.appending("ca.pem"), leafPath])
        #expect(named.status == 0, "\(named.error)")
        let misnamed = try OpenSSL.run(["verify", "-verify_hostname", "node-c", "-CAfile", directory.appending("ca.pem"), leafPath])
        #expect(misnamed.status != 0)

        let text = String(decoding: try OpenSSL.run(["x509", "-noout", "-text", "-in", leafPath]).output, as: UTF8.self)
        #expect(text.contains("DNS:node-b, IP Address:192.0.2.7"))
        #expect(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
        #expect(text.contains("Digital Signature"))

        // A certificate of another CA fails openssl's check as it fails ours.
        let stranger = try ClusterCA.create(clusterID: "stranger", now: Date())
        let strangerLeaf = directory.appending("stranger.pem")
        let strangerCredentials = try stranger.issueNodeCredentials(nodeName: "node-b", now: Date())
        try Data(try pemBytes(strangerCredentials.certificate)).write(to: URL(fileURLWithPath: strangerLeaf))
        let refused = try OpenSSL.run(["verify", "-CAfile", directory.appending("ca.pem"), strangerLeaf])
        #expect(refused.status != 0)
    }

    @Test("a request whose signature does not verify is refused before anything is issued")
    func badRequestSignature() throws {
        let ca = try ClusterCA.create(clusterID: "csr", now: testEpoch)
        let honest = try NodeCertificateRequest(nodeName: "node-b")
        // Someone else's key with node-b's signature: the sender does not hold the key it asks for.
        let stolenKey = Certificate.PublicKey(P256.Signing.PrivateKey().publicKey)
        let forged = try CertificateSigningRequest(
            version: .v1, subject: honest.request.subject, publicKey: stolenKey, attributes: honest.request.attributes,
            signatureAlgorithm: .ecdsaWithSHA256, signature: honest.request.signature)
        #expect(throws: ClusterSecurityError.requestSignatureInvalid(subject: "node node-b")) {
            try ca.issueNodeCertificate(request: forged, nodeName: "node-b", now: testEpoch)
        }
        #expect(throws: ClusterSecurityError.requestSignatureInvalid(subject: "node node-b")) {
            try ca.issueNodeCertificate(
                requestDER: try DEREncoding.bytes(of: forged), nodeName: "node-b", now: testEpoch)
        }
        #expect(
            ClusterSecurityError.requestSignatureInvalid(subject: "node node-b").description
                == "certificate signing request for node node-b: the signature does not verify with its public key")
    }

    @Test("a request for another name, or bytes that are no request, are refused")
    func requestNameAndBytes() throws {
        let ca = try ClusterCA.create(clusterID: "csr", now: testEpoch)
        let request = try NodeCertificateRequest(nodeName: "node-c")
        #expect(throws: ClusterSecurityError.requestNameMismatch(approvedNodeName: "node-b", requestedSubject: "CN=node-c")) {
            try ca.issueNodeCertificate(request: request.request, nodeName: "node-b", now: testEpoch)
        }
        let garbage = #expect(throws: ClusterSecurityError.self) {
            try ca.issueNodeCertificate(requestDER: [0x30, 0x03, 0x02, 0x01], nodeName: "node-b", now: testEpoch)
        }
        #expect(garbage?.description.hasPrefix("certificate signing request: ") == true)
        #expect(throws: ClusterSecurityError.invalidIPAddress("10.0.0.300")) {
            try ca.issueNodeCertificate(request: request.request, nodeName: "node-c", ipAddresses: ["10.0.0.300"], now: testEpoch)
        }
    }

    @Test(
        "node names must be host names of at most 64 characters",
        arguments: [
            ("", "must not be empty"),
            ("node_b", "may hold only letters, digits, '-' and '.'"),
            ("-node", "a label may not start or end with '-'"),
            ("node..b", "has an empty label (two dots, or a dot at an end)"),
            (String(repeating: "n", count: 65), "longer than 64 characters"),
        ])
    func invalidNodeNames(name: String, reason: String) throws {
        #expect(throws: ClusterSecurityError.invalidNodeName(name, reason: reason)) {
            try NodeCertificateRequest(nodeName: name)
        }
    }

    @Test("credentials round-trip through node.pem 0644 and node-key.pem 0600")
    func credentialFiles() throws {
        let directory = try SecurityTemporaryDirectory()
        let ca = try ClusterCA.create(clusterID: "files", now: Date())
        let credentials = try ca.issueNodeCredentials(nodeName: "node-a", now: Date())
        try credentials.save(to: directory.path)
        #expect(try fileMode(directory.appending("node.pem")) == 0o644)
        #expect(try fileMode(directory.appending("node-key.pem")) == 0o600)
        let loaded = try NodeCredentials.load(from: directory.path)
        #expect(loaded.certificate == credentials.certificate)
        #expect(loaded.caCertificate == ca.certificate)
        #expect(loaded.privateKey.rawRepresentation == credentials.privateKey.rawRepresentation)
        #expect(loaded.nodeName == "node-a")
    }

    @Test("a save cut off between the key and the certificate leaves the previous pair, which loads")
    func saveCutOffBetweenKeyAndCertificate() throws {
        let directory = try SecurityTemporaryDirectory()
        let ca = try ClusterCA.create(clusterID: "files", now: Date())
        let old = try ca.issueNodeCredentials(nodeName: "node-a", now: Date())
        let renewed = try ca.issueNodeCredentials(nodeName: "node-a", now: Date())
        try old.save(to: directory.path)
        // The certificate's temporary file cannot be made (a directory is in its place): the
        // new key is written, the certificate is not, as a crash between the two would leave.
        let blocker = directory.appending("node.pem.tmp")
        try FileManager.default.createDirectory(atPath: blocker + "/in-the-way", withIntermediateDirectories: true)
        #expect(throws: ClusterSecurityError.self) { try renewed.save(to: directory.path) }
        #expect(try PEMFiles.privateKey(at: directory.appending("node-key.pem")).rawRepresentation == renewed.privateKey.rawRepresentation)

        let loaded = try NodeCredentials.load(from: directory.path)
        #expect(loaded.certificate == old.certificate)
        #expect(loaded.privateKey.rawRepresentation == old.privateKey.rawRepresentation)

        // A second renewal cut off the same way (a retry, with a fresh key): the key that
        // fits the certificate is still the one kept.
        let retried = try ca.issueNodeCredentials(nodeName: "node-a", now: Date())
        #expect(throws: ClusterSecurityError.self) { try retried.save(to: directory.path) }
        let loadedAgain = try NodeCredentials.load(from: directory.path)
        #expect(loadedAgain.certificate == old.certificate)
        #expect(loadedAgain.privateKey.rawRepresentation == old.privateKey.rawRepresentation)

        // The next save completes and leaves no previous key behind.
        try FileManager.default.removeItem(atPath: blocker)
        try renewed.save(to: directory.path)
        let reloaded = try NodeCredentials.load(from: directory.path)
        #expect(reloaded.certificate == renewed.certificate)
        #expect(reloaded.privateKey.rawRepresentation == renewed.privateKey.rawRepresentation)
        let previous = directory.appending("node-key.previous.pem")
        #expect(!FileManager.default.fileExists(atPath: previous))

        // A save cut off after the chain, before the previous key was removed: the next load
        // removes it (the old certificate is valid for a while yet; its key is not left about).
        try FileManager.default.copyItem(atPath: directory.appending("node-key.pem"), toPath: previous)
        _ = try NodeCredentials.load(from: directory.path)
        #expect(!FileManager.default.fileExists(atPath: previous))
    }

    @Test("an issued certificate for another key or of another CA is not taken into credentials")
    func credentialsCheckTheAnswer() throws {
        let ca = try ClusterCA.create(clusterID: "answer", now: testEpoch)
        let request = try NodeCertificateRequest(nodeName: "node-a")
        let otherRequest = try NodeCertificateRequest(nodeName: "node-a")
        let forOtherKey = try ca.issueNodeCertificate(request: otherRequest.request, nodeName: "node-a", now: testEpoch)
        #expect(
            throws: ClusterSecurityError.issuedCertificateMismatch(reason: "it is for another public key than the one this node sent")
        ) { try request.credentials(issuedCertificateDER: try derBytes(forOtherKey), caCertificate: ca.certificate, now: testEpoch) }

        let stranger = try ClusterCA.create(clusterID: "stranger", now: testEpoch)
        let fromStranger = try stranger.issueNodeCertificate(request: request.request, nodeName: "node-a", now: testEpoch)
        let refused = #expect(throws: ClusterSecurityError.self) {
            try request.credentials(issuedCertificateDER: try derBytes(fromStranger), caCertificate: ca.certificate, now: testEpoch)
        }
        #expect(refused?.description.contains("is signed by another CA") == true)
        _ = try request.credentials(
            issuedCertificateDER: try derBytes(try ca.issueNodeCertificate(request: request.request, nodeName: "node-a", now: testEpoch)),
            caCertificate: ca.certificate, now: testEpoch)
    }

    @Test("renewal is due once two-thirds of the lifetime have passed")
    func renewalThreshold() throws {
        let ca = try ClusterCA.create(clusterID: "renew", now: testEpoch)
        let credentials = try ca.issueNodeCredentials(nodeName: "node-a", now: testEpoch, lifetime: .seconds(3 * 3600))
        // Lifetime counted from issue (the start is backdated 5 min for clock skew): 2 h after it.
        let threshold = testEpoch.addingTimeInterval(2 * 3600)
        #expect(credentials.renewalDate == threshold)
        #expect(!credentials.needsRenewal(now: testEpoch))
        #expect(!credentials.needsRenewal(now: threshold.addingTimeInterval(-1)))
        #expect(credentials.needsRenewal(now: threshold))
        #expect(credentials.needsRenewal(now: testEpoch.addingTimeInterval(3 * 3600 + 1)))
        // A lifetime shorter than the backdating still renews after its issue, not before.
        let short = try ca.issueNodeCredentials(nodeName: "node-a", now: testEpoch, lifetime: .seconds(30))
        #expect(short.renewalDate == testEpoch.addingTimeInterval(20))
    }

    @Test("the TLS material converts to swift-nio-ssl: node then CA, the key, the CA alone as root")
    func tlsMaterial() throws {
        let ca = try ClusterCA.create(clusterID: "tls", now: Date())
        let credentials = try ca.issueNodeCredentials(nodeName: "node-a", now: Date())
        let material = try credentials.tlsMaterial()
        #expect(try material.certificateChain.map { try $0.toDERBytes() } == [derBytes(credentials.certificate), derBytes(ca.certificate)])
        #expect(try material.trustRoots.map { try $0.toDERBytes() } == [derBytes(ca.certificate)])
        // The key swift-nio-ssl holds is the node's own.
        let heldKey = try P256.Signing.PrivateKey(derRepresentation: try material.privateKey.derBytes)
        #expect(heldKey.rawRepresentation == credentials.privateKey.rawRepresentation)
        let verified = ca.peerVerifier.verify(peerCertificates: material.certificateChain, expectedNodeName: "node-a", now: Date())
        #expect(rejection(verified) == nil)
    }
}
