import CArchive
import CImages
import Foundation
import Glibc
import Testing

@testable import Images

/// Root is needed to mknod whiteouts, set trusted xattrs, keep owners and mount overlayfs.
let isRoot = getuid() == 0
let needsRoot: Comment = "needs root (mknod of whiteouts, trusted.* xattrs, chown, mount)"

/// A directory of its own under /tmp (`/tmp/flotilla-images-test-<random>`), removed by `remove`.
struct TestDirectory {
    let path: String

    init() throws {
        path = "/tmp/flotilla-images-test-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    func remove() {
        try? FileSystem.removeTree(path)
    }

    /// A blob store and a layer store under `<path>/store`.
    func stores() throws -> (BlobStore, LayerStore) {
        let blobs = try BlobStore(root: path + "/store")
        return (blobs, try LayerStore(root: path + "/store", blobs: blobs))
    }
}

/// Runs a test body with a fresh test directory, removed however the body ends.
func withTestDirectory(_ body: (TestDirectory) async throws -> Void) async throws {
    let directory = try TestDirectory()
    defer { directory.remove() }
    try await body(directory)
}

/// Runs a program to completion; throws with its stderr if it fails.
func run(_ program: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let errors = Pipe()
    process.standardError = errors
    try process.run()
    let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TestFailure("\(program) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(message)")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// How a layer tarball is compressed: `allCases` are those a layer may use (Docker's).
enum Compression: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case none, gzip, zstd, bzip2, xz
    var testDescription: String { rawValue }
}

/// Makes a layer tarball of a staging directory with GNU tar (numeric owners, as image
/// builders write them), compresses it, and puts it in the blob store. Returns its digest.
func addLayer(staging: String, compression: Compression, to blobs: BlobStore, scratch: String) async throws -> Digest {
    let tarball = scratch + "/layer-\(UInt32.random(in: 0...UInt32.max)).tar"
    try run("/bin/tar", ["--numeric-owner", "--xattrs", "-cf", tarball, "-C", staging, "."])
    var file = tarball
    switch compression {
    case .none: break
    case .gzip:
        try run("/bin/gzip", ["-q", tarball])
        file = tarball + ".gz"
    case .zstd:
        try run("/usr/bin/zstd", ["-q", "--rm", tarball])
        file = tarball + ".zst"
    case .bzip2:
        try run("/bin/bzip2", ["-q", tarball])
        file = tarball + ".bz2"
    case .xz:
        try run("/usr/bin/xz", ["-q", tarball])
        file = tarball + ".xz"
    }
    return try await addBlob(file: file, to: blobs)
}

/// Puts a file in the blob store under its own digest, in 64 KiB chunks.
func addBlob(file: String, to blobs: BlobStore) async throws -> Digest {
    let content = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
    let digest = Digest.of(content)
    try await blobs.write(digest, from: chunks(of: content, size: 64 * 1024))
    return digest
}

/// `content` as an async sequence of chunks, as a registry response body arrives.
func chunks(of content: [UInt8], size: Int) -> AsyncStream<[UInt8]> {
    AsyncStream { continuation in
        var start = 0
        while start < content.count {
            continuation.yield(Array(content[start..<min(start + size, content.count)]))
            start += size
        }
        continuation.finish()
    }
}

/// One entry of a hand-made tarball, for what GNU tar will not write (`../x`, a hard link to
/// `../../etc/passwd`): written with libarchive, pax format.
struct TarEntry: Sendable {
    var path: String
    var type: mode_t = S_IFREG
    var mode: mode_t = 0o644
    var hardlink: String? = nil
    var symlink: String? = nil
    var xattrs: [String: String] = [:]
    var content: [UInt8] = []
}

/// Writes `entries` as a plain tarball at `path`.
func writeTarball(_ entries: [TarEntry], to path: String) throws {
    guard let archive = archive_write_new() else { throw TestFailure("archive_write_new") }
    defer { archive_write_free(archive) }
    archive_write_set_format_pax_restricted(archive)
    guard archive_write_open_filename(archive, path) == ARCHIVE_OK else { throw TestFailure("open \(path)") }
    for item in entries {
        guard let entry = archive_entry_new() else { throw TestFailure("archive_entry_new") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, item.path)
        archive_entry_set_filetype(entry, UInt32(item.type))
        archive_entry_set_perm(entry, item.mode)
        archive_entry_set_size(entry, la_int64_t(item.content.count))
        for (name, value) in item.xattrs {
            archive_entry_xattr_add_entry(entry, name, value, value.utf8.count)
        }
        if let symlink = item.symlink {
            archive_entry_set_symlink(entry, symlink)
        }
        if let hardlink = item.hardlink {
            archive_entry_set_hardlink(entry, hardlink)
            archive_entry_set_size(entry, 0)
        }
        guard archive_write_header(archive, entry) == ARCHIVE_OK else {
            throw TestFailure("archive_write_header \(item.path): \(String(cString: archive_error_string(archive)))")
        }
        if !item.content.isEmpty && item.hardlink == nil {
            _ = item.content.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
        }
    }
    guard archive_write_close(archive) == ARCHIVE_OK else { throw TestFailure("archive_write_close \(path)") }
}

/// lstat, or nil when nothing is there.
func fileStatus(_ path: String) -> stat? {
    var info = stat()
    return lstat(path, &info) == 0 ? info : nil
}

/// The value of an xattr, without following a symlink; nil when unset.
func attribute(_ name: String, of path: String) -> String? {
    var buffer = [UInt8](repeating: 0, count: 256)
    let count = lgetxattr(path, name, &buffer, buffer.count)
    return count < 0 ? nil : String(decoding: buffer[..<count], as: UTF8.self)
}

/// The names in a temp-file-prone directory that start with `.tmp-`.
func temporaries(in directory: String) throws -> [String] {
    try FileSystem.names(in: directory).filter { $0.hasPrefix(".tmp-") }
}
