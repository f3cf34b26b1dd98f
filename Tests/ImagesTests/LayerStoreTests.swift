import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport

@testable import Images

/// The base layer of the tests: busybox-static, a shell link, a file and a directory the
/// next layer deletes.
func makeBaseStaging(in directory: TestDirectory) throws -> String {
    let staging = directory.path + "/base"
    let files = FileManager.default
    for sub in ["bin", "etc", "opt"] {
        try files.createDirectory(atPath: staging + "/" + sub, withIntermediateDirectories: true)
    }
    try files.copyItem(atPath: "/bin/busybox", toPath: staging + "/bin/busybox")
    try files.createSymbolicLink(atPath: staging + "/bin/sh", withDestinationPath: "busybox")
    try "base\n".write(toFile: staging + "/etc/hidden", atomically: false, encoding: .utf8)
    try "kept\n".write(toFile: staging + "/etc/kept", atomically: false, encoding: .utf8)
    try "old\n".write(toFile: staging + "/opt/old", atomically: false, encoding: .utf8)
    // A setgid directory (allowed: Debian's /var/mail is one) and a FIFO (allowed: inert).
    try files.createDirectory(atPath: staging + "/var/mail", withIntermediateDirectories: true)
    guard chmod(staging + "/var/mail", 0o2775) == 0, mkfifo(staging + "/var/fifo", 0o600) == 0 else {
        throw TestFailure("chmod or mkfifo in \(staging)")
    }
    // An owner that is nobody on this host: layers keep numeric owners.
    guard chown(staging + "/etc/kept", 4321, 8765) == 0 else { throw TestFailure("chown") }
    return staging
}

/// The layer above: an OCI whiteout for etc/hidden and an opaque opt/ with a new file.
func makeWhiteoutStaging(in directory: TestDirectory) throws -> String {
    let staging = directory.path + "/top"
    try FileManager.default.createDirectory(atPath: staging + "/etc", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: staging + "/opt", withIntermediateDirectories: true)
    try "".write(toFile: staging + "/etc/.wh.hidden", atomically: false, encoding: .utf8)
    try "".write(toFile: staging + "/opt/.wh..wh..opq", atomically: false, encoding: .utf8)
    try "new\n".write(toFile: staging + "/opt/new", atomically: false, encoding: .utf8)
    return staging
}

/// The base layer, compressed as asked, in the blob store.
func addBaseLayer(_ directory: TestDirectory, _ compression: Compression, to blobs: BlobStore) async throws -> Digest {
    try await addLayer(staging: try makeBaseStaging(in: directory), compression: compression, to: blobs, scratch: directory.path)
}

/// The whiteout layer, compressed as asked, in the blob store.
func addWhiteoutLayer(_ directory: TestDirectory, _ compression: Compression, to blobs: BlobStore) async throws -> Digest {
    try await addLayer(
        staging: try makeWhiteoutStaging(in: directory), compression: compression, to: blobs, scratch: directory.path)
}

/// A fresh store holding both test layers, unpacked: the image of the overlay tests.
struct TwoLayerImage {
    let blobs: BlobStore
    let layers: LayerStore
    let base: Digest
    let top: Digest

    init(in directory: TestDirectory, base baseCompression: Compression, top topCompression: Compression) async throws {
        (blobs, layers) = try directory.stores()
        base = try await addBaseLayer(directory, baseCompression, to: blobs)
        top = try await addWhiteoutLayer(directory, topCompression, to: blobs)
        try layers.unpack(base)
        try layers.unpack(top)
    }

    /// The layer directories, lowest first.
    var paths: [String] { [layers.path(of: base), layers.path(of: top)] }
}

@Suite("LayerStore", .dedicatedThread, .timeLimit(.minutes(10)), .enabled(if: isRoot, needsRoot))
struct LayerStoreTests {
    @Test("a layer unpacks with contents, links, owners and modes", arguments: Compression.allCases)
    func unpacks(_ compression: Compression) async throws {
        try await withTestDirectory { directory in
            let (blobs, layers) = try directory.stores()
            let layer = try await addBaseLayer(directory, compression, to: blobs)
            #expect(try layers.unpack(layer) == .unpacked)
            let root = layers.path(of: layer)
            #expect(FileManager.default.contentsEqual(atPath: root + "/bin/busybox", andPath: "/bin/busybox"))
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/bin/sh") == "busybox")
            let kept = try #require(fileStatus(root + "/etc/kept"))
            #expect(kept.st_uid == 4321 && kept.st_gid == 8765)
            #expect(try #require(fileStatus(root + "/bin/busybox")).st_mode & 0o777 == 0o755)
            #expect(try #require(fileStatus(root + "/var/mail")).st_mode & 0o7777 == 0o2775)
            #expect(try #require(fileStatus(root + "/var/fifo")).st_mode & S_IFMT == S_IFIFO)
            #expect(try layers.list() == [layer])
            #expect(try temporaries(in: layers.directory).isEmpty)
        }
    }

    @Test("a second unpack is a no-op, and concurrent unpacks unpack once")
    func unpacksOnce() async throws {
        try await withTestDirectory { directory in
            let (blobs, layers) = try directory.stores()
            let layer = try await addBaseLayer(directory, .gzip, to: blobs)
            let outcomes = Mutex<[LayerStore.UnpackOutcome]>([])
            let failures = Mutex<[String]>([])
            // Threads of their own, not tasks (unpacking blocks on the layer's lock), released
            // together so that they all ask before any has finished.
            let start = DispatchSemaphore(value: 0)
            let done = DispatchGroup()
            let unpackers = 6
            for _ in 0..<unpackers {
                done.enter()
                Thread {
                    start.wait()
                    do {
                        let outcome = try layers.unpack(layer)
                        outcomes.withLock { $0.append(outcome) }
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                    done.leave()
                }.start()
            }
            for _ in 0..<unpackers { start.signal() }
            done.wait()
            #expect(failures.withLock { $0 } == [])
            #expect(outcomes.withLock { $0.filter { $0 == .unpacked }.count } == 1)
            #expect(try layers.unpack(layer) == .alreadyPresent)
            #expect(try temporaries(in: layers.directory).isEmpty)
        }
    }

    @Test("OCI whiteouts become overlayfs whiteouts: a 0/0 character device and an opaque xattr")
    func whiteouts() async throws {
        try await withTestDirectory { directory in
            let (blobs, layers) = try directory.stores()
            let layer = try await addWhiteoutLayer(directory, .zstd, to: blobs)
            try layers.unpack(layer)
            let root = layers.path(of: layer)
            let whiteout = try #require(fileStatus(root + "/etc/hidden"))
            #expect(whiteout.st_mode & S_IFMT == S_IFCHR)
            #expect(whiteout.st_rdev == 0)
            #expect(fileStatus(root + "/etc/.wh.hidden") == nil)
            #expect(attribute("trusted.overlay.opaque", of: root + "/opt") == "y")
            #expect(fileStatus(root + "/opt/.wh..wh..opq") == nil)
            #expect(fileStatus(root + "/opt/new") != nil)
            #expect(attribute("trusted.overlay.opaque", of: root + "/etc") == nil)
        }
    }

    @Test("a later entry replaces an earlier symlink or hard link, never writing through it")
    func replacesWithoutWritingThrough() async throws {
        try await withTestDirectory { directory in
            let (blobs, layers) = try directory.stores()
            let outside = directory.path + "/outside"
            try "outside\n".write(toFile: outside, atomically: false, encoding: .utf8)
            let tarball = directory.path + "/replacing.tar"
            try writeTarball(
                [
                    TarEntry(path: "link", type: S_IFLNK, mode: 0o777, symlink: outside),
                    TarEntry(path: "link", content: Array("layer\n".utf8)),
                    TarEntry(path: "a", content: Array("a\n".utf8)),
                    TarEntry(path: "b", hardlink: "a"),
                    TarEntry(path: "b", content: Array("b\n".utf8)),
                ], to: tarball)
            let layer = try await addBlob(file: tarball, to: blobs)
            try layers.unpack(layer)
            let root = layers.path(of: layer)
            #expect(try String(contentsOfFile: outside, encoding: .utf8) == "outside\n")
            #expect(try String(contentsOfFile: root + "/link", encoding: .utf8) == "layer\n")
            #expect(try #require(fileStatus(root + "/link")).st_mode & S_IFMT == S_IFREG)
            #expect(try String(contentsOfFile: root + "/a", encoding: .utf8) == "a\n")
            #expect(try String(contentsOfFile: root + "/b", encoding: .utf8) == "b\n")
        }
    }

    /// A layer that must be refused, the entry path the error must name, and why.
    struct Refused: Sendable, CustomTestStringConvertible {
        let name: String
        /// The entries, given the test directory (for a symlink pointing into it).
        let entries: @Sendable (String) -> [TarEntry]
        let path: String
        let reason: String
        var testDescription: String { name }
    }

    static let refused: [Refused] = [
        Refused(name: "../x", entries: { _ in [TarEntry(path: "../x", content: [1])] }, path: "../x", reason: "\"..\""),
        Refused(name: "a/../../x", entries: { _ in [TarEntry(path: "a/../../x", content: [1])] }, path: "a/../../x", reason: "\"..\""),
        Refused(name: "/abs", entries: { _ in [TarEntry(path: "/abs", content: [1])] }, path: "/abs", reason: "absolute"),
        Refused(
            name: "hard link to ../../etc/passwd",
            entries: { _ in [TarEntry(path: "passwd", hardlink: "../../etc/passwd")] }, path: "passwd",
            reason: "hard link to \"../../etc/passwd\""),
        Refused(
            name: "hard link to /etc/passwd",
            entries: { _ in [TarEntry(path: "passwd", hardlink: "/etc/passwd")] }, path: "passwd", reason: "absolute"),
        Refused(
            name: "character device",
            entries: { _ in [TarEntry(path: "dev/mem", type: S_IFCHR, mode: 0o600)] }, path: "dev/mem", reason: "device node"),
        Refused(
            name: "block device",
            entries: { _ in [TarEntry(path: "dev/sda", type: S_IFBLK, mode: 0o600)] }, path: "dev/sda", reason: "device node"),
        Refused(
            name: "setuid file",
            entries: { _ in [TarEntry(path: "bin/su", mode: 0o4755, content: [1])] }, path: "bin/su", reason: "setuid"),
        Refused(
            name: "setgid file",
            entries: { _ in [TarEntry(path: "bin/wall", mode: 0o2755, content: [1])] }, path: "bin/wall", reason: "setgid"),
        Refused(
            name: "file capability",
            entries: { _ in [TarEntry(path: "bin/ping", xattrs: ["security.capability": "x"], content: [1])] },
            path: "bin/ping", reason: "security.capability"),
        Refused(
            name: "forged overlay xattr",
            entries: { _ in [TarEntry(path: "etc", type: S_IFDIR, mode: 0o755, xattrs: ["trusted.overlay.redirect": "/x"])] },
            path: "etc/", reason: "trusted.overlay.redirect"),
        Refused(
            name: "aufs whiteout metadata",
            entries: { _ in [TarEntry(path: ".wh..wh.plnk", content: [1])] }, path: ".wh..wh.plnk", reason: "whiteout"),
        Refused(
            name: "write through a symlink",
            entries: { directory in
                [
                    TarEntry(path: "etc", type: S_IFLNK, mode: 0o777, symlink: directory + "/outside"),
                    TarEntry(path: "etc/passwd", content: [1]),
                ]
            }, path: "etc/passwd", reason: "symlink"),
    ]

    /// Only the compressions Docker reads: before, every filter libarchive has was on, and for
    /// some (lrzip, grzip, lzop) it runs an outside program as root. lz4, which it reads
    /// in-process, stands for them here: the test needs no lrzip installed.
    @Test("a layer in another compression than gzip, zstd, bzip2 or xz is refused")
    func refusesOtherCompressions() async throws {
        try await withTestDirectory { directory in
            let (blobs, layers) = try directory.stores()
            let tarball = directory.path + "/layer.tar"
            try run("/bin/tar", ["--numeric-owner", "-cf", tarball, "-C", try makeBaseStaging(in: directory), "."])
            try run("/usr/bin/lz4", ["-q", "--rm", tarball, tarball + ".lz4"])
            let layer = try await addBlob(file: tarball + ".lz4", to: blobs)
            let error = #expect(throws: ImageError.self) { try layers.unpack(layer) }
            #expect(error?.description.contains("Unrecognized archive format") == true, "\(String(describing: error))")
            #expect(!layers.contains(layer))
        }
    }

    @Test("escaping paths, devices, setuid files, file capabilities and overlay xattrs are refused, naming the entry", arguments: refused)
    func refuses(_ case: Refused) async throws {
        try await withTestDirectory { directory in
            let (blobs, layers) = try directory.stores()
            let tarball = directory.path + "/refused.tar"
            try FileManager.default.createDirectory(atPath: directory.path + "/outside", withIntermediateDirectories: false)
            try writeTarball(`case`.entries(directory.path), to: tarball)
            let layer = try await addBlob(file: tarball, to: blobs)
            let error = #expect(throws: ImageError.self) { try layers.unpack(layer) }
            let message = error?.description ?? ""
            #expect(message.contains("\"\(`case`.path)\""), "\(message)")
            #expect(message.localizedCaseInsensitiveContains(`case`.reason), "\(message)")
            #expect(!layers.contains(layer))
            // Nothing but the layer's lock file: no temp directory, no `../x` landed beside it.
            #expect(try FileSystem.names(in: layers.directory) == [layer.hex + ".lock"])
            #expect(try FileSystem.names(in: directory.path + "/outside").isEmpty)
        }
    }
}
