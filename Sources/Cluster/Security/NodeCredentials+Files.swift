import X509

extension NodeCredentials {
    /// Loads credentials saved by ``save(to:)`` from `directory`: `node.pem` (the node
    /// certificate, then the CA certificate) and `node-key.pem`. When the key does not match the
    /// certificate and the previous key does (``save(to:)`` was cut off between the two files),
    /// the previous pair: its certificate is the one on disk, and it renews as due.
    public static func load(from directory: String) throws(ClusterSecurityError) -> NodeCredentials {
        let certificatePath = SecurityFile.path(directory, certificateFileName)
        let keyPath = SecurityFile.path(directory, privateKeyFileName)
        let previousKeyPath = SecurityFile.path(directory, previousPrivateKeyFileName)
        let chain = try PEMFiles.certificates(at: certificatePath, count: 2...2)
        let key = try PEMFiles.privateKey(at: keyPath)
        do {
            let credentials = try NodeCredentials(privateKey: key, certificate: chain[0], caCertificate: chain[1])
            // Left by a save that finished all but this: the old certificate's key, still valid
            // for a while, has no business on disk any more.
            try? SecurityFile.remove(previousKeyPath)
            return credentials
        } catch .keyDoesNotMatchCertificate {
            if SecurityFile.exists(previousKeyPath), let previous = try? PEMFiles.privateKey(at: previousKeyPath),
                let credentials = try? NodeCredentials(privateKey: previous, certificate: chain[0], caCertificate: chain[1])
            {
                return credentials
            }
            throw .keyDoesNotMatchCertificate(keyPath: keyPath, certificatePath: certificatePath)
        } catch .issuedCertificateMismatch(let reason) {
            throw .unreadableFile(path: certificatePath, reason: reason)
        }
    }

    /// Saves into `directory` (created with mode 0700 if missing): the key (0600) first, then
    /// the chain (0644), each replaced atomically. The key of the certificate being replaced is
    /// first kept as `node-key.previous.pem` (0600) until the chain is in place: a crash between
    /// the two files leaves the new key with the old certificate, and ``load(from:)`` then takes
    /// the previous key, so the agent starts with its old pair and renews again. That key is
    /// the one ``load(from:)`` pairs with the certificate on disk, not whatever `node-key.pem`
    /// holds: after a save cut off, that is a key without a certificate, and a second save cut
    /// off would otherwise keep it in place of the only key that still fits.
    ///
    /// The CA certificate also goes alone into `cluster-ca.pem` (0644), on every agent: what an
    /// operator gives deployctl (`--ca-file`) to verify the TCP API of any agent.
    public func save(to directory: String) throws(ClusterSecurityError) {
        let previousKeyPath = SecurityFile.path(directory, Self.previousPrivateKeyFileName)
        if let current = try? Self.load(from: directory) {
            try SecurityFile.writeAtomically(
                Array(current.privateKey.pemRepresentation.utf8) + [UInt8(ascii: "\n")], to: previousKeyPath,
                mode: SecurityFile.privateKeyMode)
        }
        try PEMFiles.save(
            privateKey: privateKey, keyFileName: Self.privateKeyFileName, certificates: [certificate, caCertificate],
            certificateFileName: Self.certificateFileName, in: directory)
        // Left behind by a crash here, the next load removes it.
        try SecurityFile.remove(previousKeyPath)
        try SecurityFile.writeAtomically(
            try PEMFiles.encode([caCertificate]), to: SecurityFile.path(directory, Self.caCertificateFileName), mode: SecurityFile.certificateMode)
    }

    /// The key a save in progress replaces (``save(to:)``).
    static let previousPrivateKeyFileName = "node-key.previous.pem"

    /// The cluster CA's certificate alone, beside the node's credentials.
    public static let caCertificateFileName = "cluster-ca.pem"
}
