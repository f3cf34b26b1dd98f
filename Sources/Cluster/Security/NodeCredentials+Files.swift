import X509

extension NodeCredentials {
    /// Loads credentials saved by ``save(to:)`` from `directory`: `node.pem` (the node
    /// certificate, then the CA certificate) and `node-key.pem`.
    public static func load(from directory: String) throws(ClusterSecurityError) -> NodeCredentials {
        let certificatePath = SecurityFile.path(directory, certificateFileName)
        let keyPath = SecurityFile.path(directory, privateKeyFileName)
        let chain = try PEMFiles.certificates(at: certificatePath, count: 2...2)
        let key = try PEMFiles.privateKey(at: keyPath)
        do {
            return try NodeCredentials(privateKey: key, certificate: chain[0], caCertificate: chain[1])
        } catch .keyDoesNotMatchCertificate {
            throw .keyDoesNotMatchCertificate(keyPath: keyPath, certificatePath: certificatePath)
        } catch .issuedCertificateMismatch(let reason) {
            throw .unreadableFile(path: certificatePath, reason: reason)
        }
    }

    /// Saves into `directory` (created with mode 0700 if missing): the key (0600) first, then
    /// the chain (0644), each replaced atomically. A crash between the two leaves a new key with
    /// the old certificate, which ``load(from:)`` refuses by name; the agent then asks again.
    ///
    /// The CA certificate also goes alone into `cluster-ca.pem` (0644), on every agent: what an
    /// operator gives deployctl (`--ca-file`) to verify the TCP API of any agent.
    public func save(to directory: String) throws(ClusterSecurityError) {
        try PEMFiles.save(
            privateKey: privateKey, keyFileName: Self.privateKeyFileName, certificates: [certificate, caCertificate],
            certificateFileName: Self.certificateFileName, in: directory)
        try SecurityFile.writeAtomically(
            try PEMFiles.encode([caCertificate]), to: SecurityFile.path(directory, Self.caCertificateFileName), mode: SecurityFile.certificateMode)
    }

    /// The cluster CA's certificate alone, beside the node's credentials.
    public static let caCertificateFileName = "cluster-ca.pem"
}
