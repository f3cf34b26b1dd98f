import Manifest
import Testing

@Suite struct ImageNameTests {
    struct Parsed: Sendable, CustomTestStringConvertible {
        var text: String
        var registry: String
        var repository: String
        var tag: String?
        var digest: String?
        var testDescription: String { text }
    }

    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    @Test(arguments: [
        Parsed(text: "busybox", registry: "docker.io", repository: "library/busybox", tag: nil, digest: nil),
        Parsed(text: "busybox:1.36", registry: "docker.io", repository: "library/busybox", tag: "1.36", digest: nil),
        Parsed(text: "team/web", registry: "docker.io", repository: "team/web", tag: nil, digest: nil),
        Parsed(text: "127.0.0.1:5000/web:1.4", registry: "127.0.0.1:5000", repository: "web", tag: "1.4", digest: nil),
        Parsed(text: "localhost/a/b-c__d.e", registry: "localhost", repository: "a/b-c__d.e", tag: nil, digest: nil),
        Parsed(text: "registry.example:5000/team/web:1.4@" + digest, registry: "registry.example:5000", repository: "team/web", tag: "1.4", digest: digest),
        Parsed(text: "registry.example/web@" + digest, registry: "registry.example", repository: "web", tag: nil, digest: digest),
    ])
    func parses(_ expected: Parsed) throws {
        let name = try ImageName(parsing: expected.text)
        #expect(name.registry == expected.registry)
        #expect(name.repository == expected.repository)
        #expect(name.tag == expected.tag)
        #expect(name.digest == expected.digest)
        #expect(name.description == expected.text)
    }

    @Test func aTagOrDigestIsWhatTheRegistryIsAskedFor() throws {
        #expect(try ImageName(parsing: "busybox").manifestReference == "latest")
        #expect(try ImageName(parsing: "busybox:1").manifestReference == "1")
        #expect(try ImageName(parsing: "busybox:1@" + Self.digest).manifestReference == Self.digest)
    }

    @Test func pinningKeepsTheTagAndReplacesAnEarlierDigest() throws {
        let other = "sha256:" + String(repeating: "cd", count: 32)
        #expect(try ImageName(parsing: "reg:5000/web:1.4").pinned(to: Self.digest).text == "reg:5000/web:1.4@" + Self.digest)
        #expect(try ImageName(parsing: "reg:5000/web:1.4@" + Self.digest).pinned(to: other).text == "reg:5000/web:1.4@" + other)
        #expect(try ImageName(parsing: "web").pinned(to: Self.digest).digest == Self.digest)
    }

    @Test(arguments: [
        ("UPPER/web", "lowercase"), ("web:", "tag after ':' is empty"), ("web:.x", "tag \".x\""), ("web@sha256:xyz", "64 lowercase hex"),
        ("web@md5:" + String(repeating: "a", count: 32), "must be sha256:"), ("reg.example:0/web", "invalid port"), ("/web", "path component is empty"),
        ("web/", "path component is empty"), ("a..b", "\"..\""), ("reg_x.example:5000/web", "not a registry host"),
        ("", "repository name is missing"), (String(repeating: "a", count: 300), "longer than 255"),
    ])
    func refuses(text: String, words: String) {
        do {
            _ = try ImageName(parsing: text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.description.contains(words), "\(error)")
        }
    }

    @Test func aServiceWithAnImageLeavesCommandWorkingDirectoryAndUserToIt() throws {
        let application = try ManifestDecoder.decode(Array(#"{"name": "app", "services": [{"name": "web", "image": "reg:5000/web:1"}]}"#.utf8))
        let service = try #require(application.services.first)
        #expect(service.image?.text == "reg:5000/web:1")
        #expect(service.command.isEmpty && service.workingDir == nil && service.user == nil)
        // Without an image the fixed defaults stay, so that existing revisions read back equal.
        let plain = try ManifestDecoder.decode(Array(#"{"name": "app", "services": [{"name": "web", "command": ["/x"]}]}"#.utf8))
        #expect(plain.services.first?.workingDir == "/" && plain.services.first?.user == .id(0))
        // Written back without the command it never had, and read back equal.
        let again = try ManifestDecoder.decode(Array(JSONWriter.compact(application.json).utf8))
        #expect(again == application)
    }
}
