import Crypto
import Foundation
import Testing
import TestSupport
import X509

@testable import Cluster

@Suite("Cluster CA", .dedicatedThread)
struct SecurityClusterCATests {
    @Test("a new CA is a P-256 self-signed CA with the RFC 5280 extensions and ten years' validity")
    func createdCertificate() throws {
        let ca = try ClusterCA.create(clusterID: "c0ffee", now: testEpoch)
        let certificate = ca.certificate
        #expect(certificate.subject.description == "CN=Flotilla cluster CA c0ffee")
        #expect(certificate.issuer == certificate.subject)
        #expect(P256.Signing.PublicKey(certificate.publicKey) != nil)
        #expect(certificate.publicKey.isValidSignature(certificate.signature, for: certificate))

        let basic = try #require(certificate.extensions[oid: .X509ExtensionID.basicConstraints])
        #expect(basic.critical)
        #expect(try certificate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        let usage = try #require(certificate.extensions[oid: .X509ExtensionID.keyUsage])
        #expect(usage.critical)
        #expect(try certificate.extensions.keyUsage == KeyUsage(keyCertSign: true, cRLSign: true))
        #expect(try certificate.extensions.subjectKeyIdentifier == SubjectKeyIdentifier(hash: certificate.publicKey))

        #expect(certificate.notValidBefore == testEpoch.addingTimeInterval(-300))
        let tenYearsSeconds = 10.0 * 365 * 24 * 3600
        #expect(certificate.notValidAfter.timeIntervalSince(certificate.notValidBefore) == tenYearsSeconds)
        #expect(certificate.serialNumber.bytes.count == 20)
        #expect(try #require(certificate.serialNumber.bytes.first) & 0x80 == 0)
    }

    @Test("a cluster id that would overflow the 64-character common name is refused")
    func longClusterID() throws {
        #expect(throws: ClusterSecurityError.invalidClusterID(String(repeating: "a", count: 45), reason: "longer than 44 characters")) {
            try ClusterCA.create(clusterID: String(repeating: "a", count: 45), now: testEpoch)
        }
        _ = try ClusterCA.create(clusterID: String(repeating: "a", count: 44), now: testEpoch)
    }

    @Test("saved as ca.pem 0644 and ca-key.pem 0600, and loaded back the same, with the same pin")
    func fileRoundTrip() throws {
        let directory = try SecurityTemporaryDirectory()
        let tls = directory.appending("tls")
        let ca = try ClusterCA.create(clusterID: "round-trip", now: Date())
        #expect(!ClusterCA.exists(in: tls))
        try ca.save(to: tls)
        #expect(ClusterCA.exists(in: tls))
        #expect(try fileMode(tls + "/ca.pem") == 0o644)
        #expect(try fileMode(tls + "/ca-key.pem") == 0o600)
        #expect(try fileMode(tls) == 0o700)
        #expect(!FileManager.default.fileExists(atPath: tls + "/ca.pem.tmp"))
        #expect(!FileManager.default.fileExists(atPath: tls + "/ca-key.pem.tmp"))

        let loaded = try ClusterCA.load(from: tls)
        #expect(loaded.certificate == ca.certificate)
        #expect(loaded.privateKey.rawRepresentation == ca.privateKey.rawRepresentation)
        #expect(loaded.pin == ca.pin)

        // Saving again replaces both files with exactly these modes, whatever was there before:
        // a world-readable key and a leftover temporary file from a crash.
        #expect(chmod(tls + "/ca-key.pem", 0o644) == 0)
        #expect(FileManager.default.createFile(atPath: tls + "/ca-key.pem.tmp", contents: Data("stale".utf8), attributes: [.posixPermissions: 0o666]))
        try loaded.save(to: tls)
        #expect(try fileMode(tls + "/ca-key.pem") == 0o600)
        #expect(try fileMode(tls + "/ca.pem") == 0o644)
        #expect(!FileManager.default.fileExists(atPath: tls + "/ca-key.pem.tmp"))
        #expect(try ClusterCA.load(from: tls).pin == ca.pin)
    }

    @Test("a key that is not the certificate's is refused by name")
    func mismatchedKey() throws {
        let directory = try SecurityTemporaryDirectory()
        let first = try ClusterCA.create(clusterID: "one", now: Date())
        let second = try ClusterCA.create(clusterID: "two", now: Date())
        try first.save(to: directory.path)
        try Data(second.privateKey.pemRepresentation.utf8).write(to: URL(fileURLWithPath: directory.appending("ca-key.pem")))
        #expect(
            throws: ClusterSecurityError.keyDoesNotMatchCertificate(
                keyPath: directory.appending("ca-key.pem"), certificatePath: directory.appending("ca.pem"))
        ) { try ClusterCA.load(from: directory.path) }
    }

    @Test("a missing or garbled file is named in the error")
    func unreadableFiles() throws {
        let directory = try SecurityTemporaryDirectory()
        let missing = #expect(throws: ClusterSecurityError.self) { try ClusterCA.load(from: directory.path) }
        #expect(missing?.description.contains("open \"\(directory.appending("ca.pem"))\"") == true)

        try Data("not pem".utf8).write(to: URL(fileURLWithPath: directory.appending("ca.pem")))
        let garbled = #expect(throws: ClusterSecurityError.self) { try ClusterCA.load(from: directory.path) }
        #expect(garbled?.description.hasPrefix("\"\(directory.appending("ca.pem"))\":") == true)
    }

    @Test("the pin is written sha256:<64 hex digits> and reads back")
    func pinForm() throws {
        let ca = try ClusterCA.create(clusterID: "pin", now: Date())
        #expect(ca.pin.description.hasPrefix("sha256:"))
        #expect(ca.pin.hex.count == 64)
        #expect(ClusterCAPin(parsing: ca.pin.description) == ca.pin)
        #expect(ClusterCAPin(parsing: ca.pin.hex) == ca.pin)
        #expect(ClusterCAPin(parsing: ca.pin.hex.uppercased()) == nil)
        #expect(ca.pin.matches(ca.certificate))
        #expect(try ClusterCA.create(clusterID: "pin", now: Date()).pin != ca.pin)
    }

    @Test(
        "the pin is sha256 of the SubjectPublicKeyInfo DER, as kubeadm's openssl recipe computes it",
        .enabled(if: OpenSSL.isInstalled, OpenSSL.missing))
    func pinMatchesOpenSSL() throws {
        let ca = try ClusterCA.create(clusterID: "pin", now: Date())
        // kubeadm's documented recipe for --discovery-token-ca-cert-hash.
        let output = try OpenSSL.shell(
            "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum", input: try pemBytes(ca.certificate))
        #expect(output.split(separator: " ").first.map(String.init) == ca.pin.hex)
    }

    @Test("openssl reads the CA as a CA and verifies its self-signature", .enabled(if: OpenSSL.isInstalled, OpenSSL.missing))
    func openSSLReadsCA() throws {
        let directory = try SecurityTemporaryDirectory()
        let ca = try ClusterCA.create(clusterID: "openssl", now: Date())
        try ca.save(to: directory.path)
        let text = try OpenSSL.run(["x509", "-noout", "-text", "-in", directory.appending("ca.pem")])
        let printed = String(decoding: text.output, as: UTF8.self)
        #expect(text.status == 0, "\(text.error)")
        #expect(printed.contains("CA:TRUE, pathlen:0"))
        #expect(printed.contains("Certificate Sign, CRL Sign"))
        let verified = try OpenSSL.run(["verify", "-CAfile", directory.appending("ca.pem"), directory.appending("ca.pem")])
        #expect(verified.status == 0, "\(verified.error)")
        // openssl reads the key file too, and derives the certificate's public key from it.
        let keyCheck = try OpenSSL.run(["pkey", "-in", directory.appending("ca-key.pem"), "-pubout"])
        let certificateKey = try OpenSSL.run(["x509", "-in", directory.appending("ca.pem"), "-noout", "-pubkey"])
        #expect(keyCheck.status == 0, "\(keyCheck.error)")
        #expect(keyCheck.output == certificateKey.output)
    }
}
