import ArgumentParser
import Cluster
import Foundation

extension ClusterCommand {
    /// `deployctl cluster ca create --out DIR`.
    struct CertificateAuthority: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ca", abstract: "The cluster CA for servers that form a cluster together (--bootstrap-expect).",
            subcommands: [Create.self])

        /// Makes the CA and join token offline, on the operator's machine, like
        /// `consul tls ca create` and `nomad tls ca create`.
        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make a cluster CA and a join token pinning it, for servers to form a new cluster with.",
                discussion: """
                    Writes DIR/ca.pem, DIR/ca-key.pem (0600) and DIR/join-token (0600). Copy DIR to each of the N servers and \
                    start each with: agentd --bootstrap-expect N --ca-dir DIR --join HOST:PORT (the others' cluster ports). \
                    The key signs every certificate of the cluster: keep DIR as secret as the servers' state. \
                    Agents join the formed cluster with the token (agentd --join HOST:PORT --token TOKEN).
                    """)

            @Option(help: "The directory to write; it must not hold a CA already.") var out: String
            @Option(help: "Names the CA (its subject), default flotilla.") var clusterID = "flotilla"

            func run() async throws {
                guard !ClusterCA.exists(in: out) else {
                    throw ValidationError("\(out) already holds a CA (ca.pem): give a new directory, or use the CA there")
                }
                let token: JoinToken
                do {
                    token = try ClusterIdentity.createAuthority(in: out, clusterID: clusterID)
                } catch {
                    throw ValidationError("cannot make the CA in \(out): \(error)")
                }
                Terminal.standardOutput.write("""
                    made a cluster CA in \(out) (ca.pem, ca-key.pem, join-token)
                    join token: \(token.encoded)
                    next: copy \(out) to every server and start each with --bootstrap-expect N --ca-dir \(out) --join HOST:PORT (the others)

                    """)
            }
        }
    }
}
