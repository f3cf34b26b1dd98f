import Manifest
import Testing

/// The repository's root, found from this file's path, so tests can read manifests/ and docs/.
let repositoryRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
    return path
}()

func readRepositoryFile(_ relativePath: String) throws -> String {
    let path = repositoryRoot + "/" + relativePath
    guard let file = fopen(path, "rb") else { throw TestFailure("cannot open \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count == 0 { break }
        bytes.append(contentsOf: buffer[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The example manifests: every `manifests/*.json` except the schema.
func exampleManifestNames() throws -> [String] {
    guard let directory = opendir(repositoryRoot + "/manifests") else { throw TestFailure("no manifests/ directory") }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name.hasSuffix(".json"), name != "schema.json" { names.append(name) }
    }
    return names.sorted()
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Decodes text, returning the issues (empty when valid).
func issues(of text: String) -> [ManifestIssue] {
    do {
        _ = try ManifestDecoder.decode(Array(text.utf8))
        return []
    } catch {
        return error.issues
    }
}

#if canImport(Glibc)
import Glibc
#endif
