import Manifest
import Testing

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(#"{"a": [1, -2.5, 1e3, true, false, null, "x\n\u00e9\ud83d\ude00"], "b": {}}"#)
        guard case .object(let object) = value else { Issue.record("not an object"); return }
        #expect(object.members.map(\.key) == ["a", "b"])
        #expect(object["a"] == [1, -2.5, 1000.0, true, false, .null, "x\né😀"])
        #expect(object["b"] == .object(JSONObject()))
    }

    @Test func keepsMemberOrderAndExactIntegers() throws {
        let value = try JSONParser.parse(#"{"z": 9007199254740993, "a": 1}"#)
        guard case .object(let object) = value else { Issue.record("not an object"); return }
        #expect(object.members.map(\.key) == ["z", "a"])
        #expect(object["z"] == .integer(9_007_199_254_740_993))
    }

    @Test(arguments: [
        ("{\"a\": 1,\n \"a\": 2}", 2, 2, "duplicate member \"a\""),
        ("{\"a\": 1,}", 1, 9, "expected a member name"),
        ("[1, 2", 1, 6, "expected ',' or ']'"),
        ("{\"a\" 1}", 1, 6, "expected ':'"),
        ("\"abc", 1, 1, "unterminated string"),
        ("01", 1, 2, "leading zeros"),
        ("{} x", 1, 4, "after the end of the document"),
        ("tru", 1, 1, "expected true"),
        ("\"\\x\"", 1, 2, "invalid escape"),
        ("\"\\ud800\"", 1, 8, "unpaired UTF-16 surrogate"),
        ("", 1, 1, "unexpected end of input"),
        ("[1e999]", 1, 2, "out of range"),
    ])
    func reportsSyntaxErrorsWithPosition(text: String, line: Int, column: Int, words: String) {
        do {
            _ = try JSONParser.parse(text)
            Issue.record("parsed \(text)")
        } catch {
            #expect(error.line == line)
            #expect(error.column == column)
            #expect(error.message.contains(words), "\(error.message)")
        }
    }

    @Test func refusesDeepNesting() {
        let text = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
        #expect(throws: JSONParser.SyntaxError.self) { try JSONParser.parse(text) }
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: JSONParser.SyntaxError.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func writerRoundTrips() throws {
        let text = #"{"s": "q\"\\\u0001/", "n": [1.5, -3, 0], "o": {"k": null}}"#
        let value = try JSONParser.parse(text)
        #expect(try JSONParser.parse(JSONWriter.pretty(value)) == value)
        #expect(try JSONParser.parse(JSONWriter.compact(value)) == value)
    }
}
