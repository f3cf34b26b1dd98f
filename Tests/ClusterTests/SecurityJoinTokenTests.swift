import Foundation
import Raft
import Testing

@testable import Cluster

@Suite("Join tokens")
struct SecurityJoinTokenTests {
    static let pin = ClusterCAPin(subjectPublicKeyInfoDER: Array("a key".utf8))

    @Test("a generated token reads back as itself, in the documented shape")
    func roundTrip() throws {
        let token = JoinToken.generate(caPin: Self.pin)
        let text = token.encoded
        let parts = text.split(separator: ".").map(String.init)
        #expect(parts.count == 4)
        #expect(parts[0] == "flt1")
        #expect(parts[1].count == 6)
        #expect(parts[2].count == 32)
        #expect(parts[3] == Self.pin.hex)
        #expect(text.allSatisfy { $0 == "." || ($0.isASCII && ($0.isLowercase || $0.isNumber)) })

        let parsed = try JoinToken(parsing: text + "\n")
        #expect(parsed.id == token.id)
        #expect(parsed.secret == token.secret)
        #expect(parsed.caPin == Self.pin)
        #expect(parsed.encoded == text)
    }

    @Test("the generator is injectable: one seed, one token; the system generator never repeats")
    func generator() {
        var first = SplitMix64(seed: 7)
        var second = SplitMix64(seed: 7)
        #expect(JoinToken.generate(caPin: Self.pin, using: &first).encoded == JoinToken.generate(caPin: Self.pin, using: &second).encoded)
        let tokens = Set((0..<100).map { _ in JoinToken.generate(caPin: Self.pin).secret })
        #expect(tokens.count == 100)
    }

    @Test("the secret stays out of the description")
    func redacted() {
        let token = JoinToken.generate(caPin: Self.pin)
        #expect(!token.description.contains(token.secret))
        #expect(token.description == "flt1.\(token.id).<secret>.\(Self.pin.hex)")
    }

    @Test("the secret authenticates, a wrong one or a wrong id does not")
    func authenticates() throws {
        var generator = SplitMix64(seed: 1)
        let token = JoinToken.generate(caPin: Self.pin, using: &generator)
        #expect(token.authenticates(id: token.id, secret: token.secret))
        var wrongLast = Array(token.secret)
        wrongLast[31] = wrongLast[31] == "a" ? "b" : "a"
        #expect(!token.authenticates(id: token.id, secret: String(wrongLast)))
        #expect(!token.authenticates(id: token.id, secret: String(token.secret.dropLast())))
        #expect(!token.authenticates(id: token.id, secret: ""))
        #expect(!token.authenticates(id: "zzzzzz", secret: token.secret))
    }

    static let id = "abc123"
    static let secret = "0123456789abcdefghijklmnopqrstuv"
    static let remedy = "; get a new one with `deployctl cluster token`"

    @Test(
        "each malformed part is refused with its own message",
        arguments: [
            ("", JoinTokenError.empty, "join token: the token is empty"),
            ("flt1.\(id).\(secret)", .wrongPartCount(found: 3),
             "join token: expected flt1.<token id>.<secret>.<CA pin>, four parts separated by dots, found 3"),
            ("flt2.\(id).\(secret).\(pin.hex)", .unknownFormat(found: "flt2"), "join token: starts with \"flt2\", expected \"flt1\""),
            ("flt1.abc12.\(secret).\(pin.hex)", .invalidID, "join token: the token id must be 6 characters [a-z0-9]"),
            ("flt1.ABC123.\(secret).\(pin.hex)", .invalidID, "join token: the token id must be 6 characters [a-z0-9]"),
            ("flt1.\(id).\(secret.dropLast()).\(pin.hex)", .invalidSecret, "join token: the secret must be 32 characters [a-z0-9]"),
            ("flt1.\(id).\(secret.dropLast())_.\(pin.hex)", .invalidSecret, "join token: the secret must be 32 characters [a-z0-9]"),
            ("flt1.\(id).\(secret).\(pin.hex.dropLast())", .invalidCAPin,
             "join token: the CA pin must be 64 lowercase hex digits (the SHA-256 of the cluster CA's public key)"),
            ("flt1.\(id).\(secret).\(pin.hex.uppercased())", .invalidCAPin,
             "join token: the CA pin must be 64 lowercase hex digits (the SHA-256 of the cluster CA's public key)"),
            ("flt1.\(id).\(secret).sha256:\(pin.hex.dropFirst(7))", .invalidCAPin,
             "join token: the CA pin must be 64 lowercase hex digits (the SHA-256 of the cluster CA's public key)"),
        ])
    func malformed(text: String, error: JoinTokenError, message: String) {
        #expect(throws: error) { try JoinToken(parsing: text) }
        #expect(error.description == message + Self.remedy)
        #expect(!error.description.contains(Self.secret))
    }
}
