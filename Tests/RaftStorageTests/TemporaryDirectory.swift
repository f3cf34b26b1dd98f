import Foundation

/// A fresh directory under the system temporary directory, removed with everything in it when
/// the value is released.
final class TemporaryDirectory: Sendable {
    let path: String

    init(_ label: String = #function) throws {
        let template = NSTemporaryDirectory() + "raft-storage-" + label.filter(\.isLetter).prefix(40) + "-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard mkdtemp(&bytes) != nil else { throw CocoaError(.fileWriteUnknown) }
        path = String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A path inside the directory.
    func appending(_ component: String) -> String { path + "/" + component }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Raw file surgery for the corruption tests.
enum FileBytes {
    static func read(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// XORs one byte in place, leaving the file's size alone.
    static func flip(_ path: String, at offset: Int) throws {
        var bytes = try read(path)
        bytes[offset] ^= 0x5A
        try write(bytes, to: path)
    }

    static func names(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }
}
