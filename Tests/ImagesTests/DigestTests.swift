import Testing

@testable import Images

@Suite("Digest")
struct DigestTests {
    @Test("sha256:<64 lowercase hex> parses and prints back")
    func parses() throws {
        let text = "sha256:" + String(repeating: "ab", count: 32)
        #expect(try Digest(parsing: text).description == text)
    }

    @Test(
        "malformed digests are refused, naming the value",
        arguments: [
            "sha256:" + String(repeating: "AB", count: 32),
            "sha256:" + String(repeating: "a", count: 63),
            "sha512:" + String(repeating: "a", count: 64),
            String(repeating: "a", count: 64),
            "sha256:" + String(repeating: "g", count: 64),
        ])
    func refuses(_ value: String) {
        #expect {
            try Digest(parsing: value)
        } throws: { error in
            "\(error)".contains("\"\(value)\"")
        }
    }

    @Test("hashing in chunks gives the one-shot digest; known vector for \"abc\"")
    func hashing() {
        let bytes = Array("abc".utf8)
        #expect(Digest.of(bytes).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var hasher = DigestHasher()
        hasher.update([bytes[0]])
        hasher.update(Array(bytes[1...]))
        #expect(hasher.finalize() == Digest.of(bytes))
    }
}
