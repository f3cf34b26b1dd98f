import Foundation
import Glibc

/// Debian's docker-registry on a free loopback port, serving TLS with a certificate of a CA made
/// for the run, its storage in a temporary directory.
final class BenchRegistry {
    let directory: String
    let port: Int
    let process: Process
    var address: String { "127.0.0.1:\(port)" }
    /// The CA's certificate, for our puller (`caFile`).
    var caFile: String { directory + "/certs/ca.crt" }
    /// A directory holding only the CA's certificate, as skopeo's `--src-cert-dir` wants.
    var certDirectory: String { directory + "/certs" }

    init(directory: String) throws {
        self.directory = directory
        let files = FileManager.default
        try files.createDirectory(atPath: directory + "/certs", withIntermediateDirectories: true)
        try files.createDirectory(atPath: directory + "/tls", withIntermediateDirectories: true)
        try files.createDirectory(atPath: directory + "/storage", withIntermediateDirectories: true)
        let tls = directory + "/tls"
        let caFile = directory + "/certs/ca.crt"
        try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=image-bench CA",
                                     "-keyout", tls + "/ca.key", "-out", caFile])
        try run("/usr/bin/openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                                     "-keyout", tls + "/server.key", "-out", tls + "/server.csr"])
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: tls + "/san.ext", atomically: true, encoding: .utf8)
        try run("/usr/bin/openssl", ["x509", "-req", "-in", tls + "/server.csr", "-CA", caFile, "-CAkey", tls + "/ca.key",
                                     "-CAcreateserial", "-days", "1", "-extfile", tls + "/san.ext", "-out", tls + "/server.crt"])
        port = try Self.freePort()
        let config = """
            version: 0.1
            log:
              level: error
            storage:
              filesystem:
                rootdirectory: \(directory)/storage
            http:
              addr: 127.0.0.1:\(port)
              tls:
                certificate: \(tls)/server.crt
                key: \(tls)/server.key
            """
        try config.write(toFile: directory + "/config.yml", atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        process.arguments = ["serve", directory + "/config.yml"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if Self.accepts(port: port) { return }
            usleep(50_000)
        }
        throw BenchError("docker-registry did not listen on \(address) within 20 s")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw BenchError("no free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// Runs a tool to completion; its output is kept for the error when it fails.
@discardableResult
func run(_ tool: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw BenchError("\(tool) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus): \(text.suffix(2000))")
    }
    return text
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
