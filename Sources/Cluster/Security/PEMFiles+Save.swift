import Crypto
import X509

extension PEMFiles {
    /// Saves a private key and its certificates into `directory` (created with mode 0700 if
    /// missing): the key (0600) first, then the certificates (0644), each replaced atomically,
    /// so that a certificate file on disk always has its key beside it.
    static func save(
        privateKey: P256.Signing.PrivateKey, keyFileName: String, certificates: [Certificate], certificateFileName: String,
        in directory: String
    ) throws(ClusterSecurityError) {
        try SecurityFile.makeDirectory(directory)
        try SecurityFile.writeAtomically(
            Array(privateKey.pemRepresentation.utf8) + [UInt8(ascii: "\n")], to: SecurityFile.path(directory, keyFileName),
            mode: SecurityFile.privateKeyMode)
        try SecurityFile.writeAtomically(
            try encode(certificates), to: SecurityFile.path(directory, certificateFileName), mode: SecurityFile.certificateMode)
    }
}
