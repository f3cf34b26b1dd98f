import Foundation
import Testing

@testable import Images

/// The store's small files (image records, an instance's image.json): replaced whole, no
/// temporary left behind, and a failure names its call and path (before, every failure of a
/// record's write was reported as EIO, a full disk as "Input/output error").
@Suite struct DurableFileTests {
    @Test func replacesTheFileWholeAndLeavesNoTemporary() throws {
        let directory = NSTemporaryDirectory() + "flotilla-durable-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/record.json"
        try DurableFile.write(Array("first".utf8), to: path)
        try DurableFile.write(Array("second".utf8), to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["record.json"])
    }

    @Test func aFailureNamesItsCallPathAndReason() throws {
        let path = NSTemporaryDirectory() + "flotilla-no-such-directory-\(UInt32.random(in: 0...UInt32.max))/record.json"
        let error = #expect(throws: ImageError.self) { try DurableFile.write([1], to: path) }
        guard case .system(let call, let failedPath, let code)? = error else {
            Issue.record("\(String(describing: error))")
            return
        }
        #expect(call == "open" && code == ENOENT, "\(String(describing: error))")
        #expect(failedPath?.hasPrefix((path as NSString).deletingLastPathComponent + "/.record.json.tmp-") == true)
    }
}
