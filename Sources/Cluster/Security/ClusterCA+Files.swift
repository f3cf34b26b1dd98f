import Crypto
import SwiftASN1
import X509

extension ClusterCA {
    /// Loads the CA saved by ``save(to:)`` from `directory` (`ca.pem` and `ca-key.pem`).
    public static func load(from directory: String) throws(ClusterSecurityError) -> ClusterCA {
        let certificatePath = SecurityFile.path(directory, certificateFileName)
        let keyPath = SecurityFile.path(directory, privateKeyFileName)
        let certificate = try PEMFiles.certificates(at: certificatePath, count: 1...1)[0]
        let key = try PEMFiles.privateKey(at: keyPath)
        do {
            return try ClusterCA(certificate: certificate, privateKey: key)
        } catch .keyDoesNotMatchCertificate {
            throw .keyDoesNotMatchCertificate(keyPath: keyPath, certificatePath: certificatePath)
        } catch .unreadableFile(_, let reason) {
            throw .unreadableFile(path: certificatePath, reason: reason)
        }
    }

    /// Saves the CA into `directory` (created with mode 0700 if missing): `ca-key.pem` (0600)
    /// first, then `ca.pem` (0644), each replaced atomically, so that a `ca.pem` on disk always
    /// has its key beside it.
    public func save(to directory: String) throws(ClusterSecurityError) {
        try PEMFiles.save(
            privateKey: privateKey, keyFileName: Self.privateKeyFileName, certificates: [certificate],
            certificateFileName: Self.certificateFileName, in: directory)
    }

    /// Whether `directory` holds a saved CA certificate (bootstrap makes one only if not).
    public static func exists(in directory: String) -> Bool {
        SecurityFile.exists(SecurityFile.path(directory, certificateFileName))
    }
}

/// PEM files of certificates and keys, with errors that name the file.
enum PEMFiles {
    /// The certificates in the PEM file at `path`, in file order; their number must be in `count`.
    static func certificates(at path: String, count: ClosedRange<Int>) throws(ClusterSecurityError) -> [Certificate] {
        let text = try SecurityFile.readText(path)
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw .unreadableFile(path: path, reason: "not PEM: \(error)")
        }
        var certificates: [Certificate] = []
        for (position, document) in documents.enumerated() {
            guard document.discriminator == Certificate.defaultPEMDiscriminator else {
                throw .unreadableFile(path: path, reason: "PEM block \(position + 1) is \(document.discriminator), expected CERTIFICATE")
            }
            do {
                certificates.append(try Certificate(derEncoded: document.derBytes))
            } catch {
                throw .unreadableFile(path: path, reason: "certificate \(position + 1): \(error)")
            }
        }
        guard count.contains(certificates.count) else {
            let expected = count.lowerBound == count.upperBound ? "\(count.lowerBound)" : "\(count.lowerBound) to \(count.upperBound)"
            throw .unreadableFile(path: path, reason: "holds \(certificates.count) certificates, expected \(expected)")
        }
        return certificates
    }

    /// The P-256 private key in the PEM file at `path` (PKCS #8 or SEC 1).
    static func privateKey(at path: String) throws(ClusterSecurityError) -> P256.Signing.PrivateKey {
        let text = try SecurityFile.readText(path)
        do {
            return try P256.Signing.PrivateKey(pemRepresentation: text)
        } catch {
            throw .unreadableFile(path: path, reason: "not a PEM P-256 private key: \(error)")
        }
    }

    /// Certificates as concatenated PEM blocks.
    static func encode(_ certificates: [Certificate]) throws(ClusterSecurityError) -> [UInt8] {
        try encoding("PEM") {
            let blocks = try certificates.map { try $0.serializeAsPEM().pemString + "\n" }
            return Array(blocks.joined().utf8)
        }
    }

    /// One certificate as DER.
    static func der(_ certificate: Certificate) throws(ClusterSecurityError) -> [UInt8] {
        try encoding("DER") { try DEREncoding.bytes(of: certificate) }
    }
}
