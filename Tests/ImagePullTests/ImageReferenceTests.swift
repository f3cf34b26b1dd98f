import Images
import Testing

@testable import ImagePull

@Suite struct ImageReferenceTests {
    static let hex = String(repeating: "ab", count: 32)

    @Test(arguments: [
        ("registry.example:5000/team/web:1.4", "registry.example:5000", "team/web", "1.4", false),
        ("registry.example:5000/team/web", "registry.example:5000", "team/web", "latest", false),
        ("127.0.0.1:5000/web", "127.0.0.1:5000", "web", "latest", false),
        ("localhost/a/b/c:v_1.0-rc", "localhost", "a/b/c", "v_1.0-rc", false),
        ("busybox", "docker.io", "library/busybox", "latest", false),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", false),
        ("team/web:2", "docker.io", "team/web", "2", false),
        ("docker.io/busybox", "docker.io", "library/busybox", "latest", false),
        ("reg.example/web@sha256:\(hex)", "reg.example", "web", nil, true),
        ("reg.example:5000/web:1.4@sha256:\(hex)", "reg.example:5000", "web", "1.4", true),
        ("ghcr.io/a-b__c/d.e:x", "ghcr.io", "a-b__c/d.e", "x", false),
    ] as [(String, String, String, String?, Bool)])
    func parses(text: String, registry: String, repository: String, tag: String?, pinned: Bool) throws {
        let reference = try ImageReference(parsing: text)
        #expect(reference.registry == registry)
        #expect(reference.repository == repository)
        #expect(reference.tag == tag)
        #expect((reference.digest != nil) == pinned)
        // Canonical text round-trips.
        #expect(try ImageReference(parsing: reference.description) == reference)
    }

    @Test func docker_io_requests_go_to_registry_1() throws {
        #expect(try ImageReference(parsing: "busybox").requestHost == "registry-1.docker.io")
        #expect(try ImageReference(parsing: "busybox").description == "docker.io/library/busybox:latest")
        #expect(try ImageReference(parsing: "reg:5000/web").requestHost == "reg:5000")
    }

    @Test func pinning_keeps_the_tag() throws {
        let digest = try Digest(hex: Self.hex)
        let pinned = try ImageReference(parsing: "reg.example:5000/web:1.4").pinned(to: digest)
        #expect(pinned.description == "reg.example:5000/web:1.4@sha256:\(Self.hex)")
        #expect(pinned.manifestReference == "sha256:\(Self.hex)")
        #expect(try ImageReference(parsing: pinned.description) == pinned)
    }

    @Test(arguments: [
        ("", "repository name is missing"),
        ("Reg.example/Web", "lowercase"),
        ("reg.example/web:", "tag after ':' is empty"),
        ("reg.example/web:-x", "tag \"-x\""),
        ("reg.example/web@sha256:abc", "64 lowercase hex digits"),
        ("reg.example/web@md5:\(hex)", "must be sha256:"),
        ("reg.example:99999/web", "invalid port"),
        ("reg.example/web//x", "path component is empty"),
        ("reg.example/-web", "must start and end"),
        ("reg.example/we..b", "\"..\""),
        ("reg.example/web app", "\" \""),
        ("reg.example/", "repository name is missing"),
    ])
    func refuses(text: String, reason: String) {
        #expect {
            try ImageReference(parsing: text)
        } throws: { error in
            let message = "\(error)"
            return message.contains(reason) && message.contains("valid: registry.example:5000/team/web:1.4")
        }
    }
}

@Suite struct AuthChallengeTests {
    @Test func bearer_with_quoted_parameters() {
        let challenges = AuthChallenge.parse(
            #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#)
        #expect(challenges == [
            AuthChallenge(scheme: "bearer", parameters: [
                "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                "scope": "repository:library/busybox:pull",
            ])
        ])
    }

    @Test func several_challenges_and_escapes() {
        let challenges = AuthChallenge.parse(#"Basic realm="a \"quoted\" realm", Bearer realm="https://t/x",service=reg"#)
        #expect(challenges.map(\.scheme) == ["basic", "bearer"])
        #expect(challenges.first?.parameters["realm"] == #"a "quoted" realm"#)
        #expect(challenges.last?.parameters == ["realm": "https://t/x", "service": "reg"])
    }

    @Test func scheme_alone() {
        #expect(AuthChallenge.parse("Basic") == [AuthChallenge(scheme: "basic", parameters: [:])])
        #expect(AuthChallenge.parse("") == [])
    }
}
