import Foundation
import SwiftASN1
import Testing
import X509

@testable import Cluster

/// A fresh directory for one test's PEM files, removed with its contents when released.
final class SecurityTemporaryDirectory: Sendable {
    let path: String

    init(_ label: String = #function) throws {
        let template = NSTemporaryDirectory() + "cluster-security-" + label.filter(\.isLetter).prefix(40) + "-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard mkdtemp(&bytes) != nil else { throw CocoaError(.fileWriteUnknown) }
        path = String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func appending(_ component: String) -> String { path + "/" + component }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The permission bits of `path`.
func fileMode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

/// Debian's `openssl`, to hold our certificates to a checker nobody here wrote.
enum OpenSSL {
    static let path = "/usr/bin/openssl"

    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: path) }

    /// Why an openssl cross-check is skipped.
    static let missing: Comment = "skipped: the openssl cross-check needs /usr/bin/openssl (apt-get install openssl)"

    /// Runs `openssl arguments` with `input` on stdin; returns exit status, stdout and stderr.
    static func run(_ arguments: [String], input: [UInt8] = []) throws -> (status: Int32, output: [UInt8], error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        try stdin.fileHandleForWriting.write(contentsOf: input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let error = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, Array(output), String(decoding: error, as: UTF8.self))
    }

    /// Runs a shell pipeline (for `openssl … | openssl … | sha256sum`, exactly as documented).
    static func shell(_ command: String, input: [UInt8]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        try stdin.fileHandleForWriting.write(contentsOf: input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self)
    }
}

/// The PEM text of certificates, for feeding openssl.
func pemBytes(_ certificates: Certificate...) throws -> [UInt8] {
    Array(try certificates.map { try $0.serializeAsPEM().pemString + "\n" }.joined().utf8)
}

/// DER of a certificate.
func derBytes(_ certificate: Certificate) throws -> [UInt8] {
    try DEREncoding.bytes(of: certificate)
}

/// A fixed instant for tests that move the clock: 2030-01-01T00:00:00Z.
let testEpoch = Date(timeIntervalSince1970: 1_893_456_000)

/// The rejection, or nil if accepted.
func rejection(_ result: Result<VerifiedPeer, PeerCertificateRejection>) -> PeerCertificateRejection? {
    if case .failure(let rejection) = result { return rejection }
    return nil
}
