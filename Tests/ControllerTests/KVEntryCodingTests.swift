@testable import Controller
import Foundation
import Testing

/// Key-value transactions go into the log in a binary form (the rest stays JSON): it must carry
/// every part exactly, read entries written as JSON before it, and refuse damaged bytes with a
/// located error rather than crash or apply something else.
@Suite struct KVEntryCodingTests {
    func key(_ text: String) throws -> KVKey { try KVKey(validating: text) }
    let time = Timestamp(unixMilliseconds: -1_700_000_000_123)

    func everyPart() throws -> ControllerEntry {
        let transaction = KVTransaction(
            compares: [.modifyIndex(try key("cfg/a"), equals: .max), .value(try key("cfg/ü"), equals: []),
                       .value(try key("b"), equals: [0, 255, 1])],
            operations: [.set(try key("cfg/a"), Array(repeating: 7, count: 70_000)), .get(try key("cfg/b")),
                         .delete(try key("x")), .deleteTree(prefix: try key("tmp/")), .set(try key("e"), [])])
        return ControllerEntry(command: .kvTransaction(transaction), time: time)
    }

    @Test func everyComparisonAndOperationRoundTripsInBinary() throws {
        let entry = try everyPart()
        let bytes = entry.encoded()
        #expect(bytes.first == KVTransactionEntryCoding.marker)
        #expect(try ControllerEntry.decode(bytes) == entry)
        let json = try ControllerCoding.encoder().encode(entry)
        #expect(bytes.count < json.count, "binary \(bytes.count) bytes, JSON \(json.count)")
    }

    @Test func entriesWrittenAsJSONStillRead() throws {
        let entry = try everyPart()
        let json = Array(try ControllerCoding.encoder().encode(entry))
        #expect(json.first == UInt8(ascii: "{"))
        #expect(try ControllerEntry.decode(json) == entry)
    }

    @Test func otherCommandsStayJSON() throws {
        let entry = ControllerEntry(command: .deleteApplication(name: "web", expectedRevision: nil), time: time)
        #expect(entry.encoded().first == UInt8(ascii: "{"))
        #expect(try ControllerEntry.decode(entry.encoded()) == entry)
    }

    @Test func damagedBytesAreRefusedWithWhere() throws {
        let bytes = try everyPart().encoded()
        // Cut anywhere: never a crash, never a shorter transaction.
        for length in 1..<bytes.count where length % 97 == 0 || length < 64 {
            #expect(throws: ControllerError.self) { try ControllerEntry.decode(Array(bytes[..<length])) }
        }
        let trailing = #expect(throws: ControllerError.self) { try ControllerEntry.decode(bytes + [0]) }
        #expect(trailing?.message.contains("1 bytes after") == true, "\(String(describing: trailing))")
        var newer = bytes
        newer[1] = UInt8(ControllerEntry.formatVersion + 1)
        let version = #expect(throws: ControllerError.self) { try ControllerEntry.decode(newer) }
        #expect(version?.message.contains("newer") == true)
        // A key the store would refuse, written by hand: ".." as the only operation's key.
        var badKey: [UInt8] = [KVTransactionEntryCoding.marker, UInt8(ControllerEntry.formatVersion)]
        badKey += [UInt8](repeating: 0, count: 8) + [0, 0] + [1, 0] + [0] + [2, 0, 0, 0] + Array("..".utf8)
        #expect(throws: ControllerError.self) { try ControllerEntry.decode(badKey) }
        var badKind = badKey
        badKind[14] = 9
        badKind.replaceSubrange(19..., with: Array("ok".utf8))
        let kind = #expect(throws: ControllerError.self) { try ControllerEntry.decode(badKind) }
        #expect(kind?.message.contains("unknown operation kind 9") == true, "\(String(describing: kind))")
    }
}
