@testable import Controller
import Testing
import TestSupport

@Suite("Key-value store: keys, indexes, check-and-set, transactions, snapshots")
struct KVStoreTests {
    func key(_ text: String) throws -> KVKey { try KVKey(validating: text) }
    let time = Timestamp(unixMilliseconds: 1_700_000_000_000)

    func apply(_ state: inout ClusterState, _ transaction: KVTransaction, at index: UInt64) -> CommandResult {
        state.apply(.kvTransaction(transaction), at: index, time: time)
    }

    func applied(_ result: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) -> KVTransactionResult? {
        guard case .kvTransactionApplied(let outcome) = result else {
            Issue.record("expected a transaction result, got \(result)", sourceLocation: sourceLocation)
            return nil
        }
        return outcome
    }

    @Test(arguments: [
        ("", "a key cannot be empty"),
        (String(repeating: "k", count: 513), "the key is 513 bytes; keys are at most 512"),
        ("/etc/app", "a key does not start with /"),
        ("app//port", "a key has no empty segment (//)"),
        ("app/./port", "a key has no . segment; write the path it stands for"),
        ("app/../port", "a key has no .. segment; write the path it stands for"),
        ("..", "a key has no .. segment; write the path it stands for"),
        ("app/\nport", "the key holds the control character U+A; use printable characters"),
    ])
    func badKeysAreRefusedWithTheReason(text: String, reason: String) {
        #expect(throws: ControllerError.invalidKey(key: text, reason: reason)) { try KVKey(validating: text) }
    }

    @Test func goodKeysAreTakenAsWritten() throws {
        for text in ["app", "app/config/", "app/db.port", "ключ/значение", "a/...", String(repeating: "k", count: 512)] {
            #expect(try key(text).description == text)
        }
    }

    @Test func indexesTellCreationFromModification() throws {
        var state = ClusterState()
        let port = try key("app/port")
        _ = apply(&state, KVTransaction(operations: [.set(port, Array("80".utf8))]), at: 5)
        _ = apply(&state, KVTransaction(operations: [.set(port, Array("81".utf8))]), at: 9)
        #expect(state.kv.get(port) == KVEntry(key: port, value: Array("81".utf8), createIndex: 5, modifyIndex: 9))
        // The store's index moves; the cluster state's does not (nothing to plan or watch).
        #expect(state.kv.lastChangeIndex == 9 && state.lastChangeIndex == 0)
        _ = apply(&state, KVTransaction(operations: [.delete(port)]), at: 10)
        _ = apply(&state, KVTransaction(operations: [.set(port, Array("82".utf8))]), at: 12)
        #expect(state.kv.get(port)?.createIndex == 12, "a key deleted and set again is created again")
    }

    @Test func checkAndSetOnTheModifyIndex() throws {
        var state = ClusterState()
        let leader = try key("locks/leader")
        let create = KVTransaction(compares: [.modifyIndex(leader, equals: 0)], operations: [.set(leader, Array("a".utf8))])
        #expect(applied(apply(&state, create, at: 3))?.succeeded == true)
        // Create-only again: refused, naming the comparison and what the key holds; no change.
        let again = try #require(applied(apply(&state, create, at: 4)))
        let held = KVEntry(key: leader, value: Array("a".utf8), createIndex: 3, modifyIndex: 3)
        #expect(again.failedCompare == KVFailedCompare(position: 0, compare: .modifyIndex(leader, equals: 0), current: held))
        #expect(again.results.isEmpty && state.kv.get(leader) == held && state.kv.lastChangeIndex == 3)
        // With the index read: taken.
        let swap = KVTransaction(compares: [.modifyIndex(leader, equals: 3)], operations: [.set(leader, Array("b".utf8))])
        #expect(applied(apply(&state, swap, at: 5))?.succeeded == true)
        #expect(state.kv.get(leader)?.value == Array("b".utf8))
    }

    @Test func aTransactionIsAllOrNothing() throws {
        var state = ClusterState()
        let (a, b, c) = (try key("a"), try key("b"), try key("c"))
        _ = apply(&state, KVTransaction(operations: [.set(a, [1]), .set(b, [2])]), at: 2)
        let failing = KVTransaction(
            compares: [.value(a, equals: [1]), .value(b, equals: [9])],
            operations: [.set(c, [3]), .delete(a)])
        let outcome = try #require(applied(apply(&state, failing, at: 3)))
        #expect(outcome.failedCompare?.position == 1 && outcome.failedCompare?.current?.value == [2])
        #expect(state.kv.get(c) == nil && state.kv.get(a) != nil && state.kv.lastChangeIndex == 2)

        let holding = KVTransaction(
            compares: [.value(a, equals: [1]), .value(b, equals: [2])],
            operations: [.set(c, [3]), .get(c), .delete(a), .get(a)])
        let done = try #require(applied(apply(&state, holding, at: 4)))
        let written = KVEntry(key: c, value: [3], createIndex: 4, modifyIndex: 4)
        #expect(done.results == [.written(written), .read(written), .deleted(count: 1), .read(nil)])
        #expect(state.kv.lastChangeIndex == 4)
    }

    @Test func foldersListAndDeleteInByteOrderAndOnlyUnderTheirPrefix() throws {
        var state = ClusterState()
        let names = ["app/z", "apple", "app/a", "app/", "app/m/n", "b", "app"]
        _ = apply(&state, KVTransaction(operations: try names.map { .set(try key($0), Array($0.utf8)) }), at: 7)
        #expect(state.kv.list(prefix: Array("app/".utf8)).map(\.key.description) == ["app/", "app/a", "app/m/n", "app/z"])
        #expect(state.kv.list(prefix: []).map(\.key.description) == ["app", "app/", "app/a", "app/m/n", "app/z", "apple", "b"])
        let outcome = try #require(applied(apply(&state, KVTransaction(operations: [.deleteTree(prefix: try key("app/"))]), at: 8)))
        #expect(outcome.results == [.deleted(count: 4)])
        #expect(state.kv.list(prefix: []).map(\.key.description) == ["app", "apple", "b"])
        // Deleting what is not there changes nothing, not even the index.
        _ = apply(&state, KVTransaction(operations: [.delete(try key("app/a")), .deleteTree(prefix: try key("none/"))]), at: 9)
        #expect(state.kv.lastChangeIndex == 8)
    }

    @Test func transactionsNoReplicaMayApplyAreRefused() throws {
        var state = ClusterState()
        let a = try key("a")
        let tooMany = KVTransaction(compares: Array(repeating: .modifyIndex(a, equals: 0), count: 60), operations: Array(repeating: .get(a), count: 5))
        #expect(state.apply(.kvTransaction(tooMany), at: 1, time: time).error
            == .invalidTransaction("the transaction has 65 comparisons and operations; at most 64 are allowed: split it"))
        #expect(state.apply(.kvTransaction(KVTransaction(operations: [])), at: 2, time: time).error?.code == "invalid_transaction")
        let big = [UInt8](repeating: 7, count: KVEntry.maxValueBytes + 1)
        #expect(state.apply(.kvTransaction(KVTransaction(operations: [.set(a, [1]), .set(a, big)])), at: 3, time: time).error
            == .valueTooLarge(key: "a", bytes: 524_289, limit: 524_288))
        #expect(state.apply(.kvTransaction(KVTransaction(compares: [.value(a, equals: big)], operations: [.get(a)])), at: 3, time: time).error
            == .valueTooLarge(key: "a", bytes: 524_289, limit: 524_288), "a comparison with a value no key can hold")
        #expect(state.kv.count == 0 && state.kv.lastChangeIndex == 0, "a refused transaction changed something")
        let largest = [UInt8](repeating: 7, count: KVEntry.maxValueBytes)
        #expect(applied(state.apply(.kvTransaction(KVTransaction(operations: [.set(a, largest)])), at: 4, time: time))?.succeeded == true)
    }

    @Test func theLogAndSnapshotsCarryTheStoreExactly() throws {
        var state = ClusterState()
        let transaction = KVTransaction(
            compares: [.modifyIndex(try key("cfg/a"), equals: 0), .value(try key("cfg/b"), equals: [0, 255])],
            operations: [.set(try key("cfg/a"), [0, 1, 2, 255]), .get(try key("cfg/b")), .delete(try key("x")), .deleteTree(prefix: try key("tmp/"))])
        let entry = ControllerEntry(command: .kvTransaction(transaction), time: time)
        #expect(try ControllerEntry.decode(entry.encoded()) == entry)

        for (index, name) in ["k/2", "k/1", "j", "k/3"].enumerated() {
            _ = apply(&state, KVTransaction(operations: [.set(try key(name), Array(name.utf8))]), at: UInt64(index + 1))
        }
        let restored = try ClusterState.restore(from: state.snapshot())
        #expect(restored == state)
        #expect(restored.kv.list(prefix: Array("k/".utf8)).map(\.key.description) == ["k/1", "k/2", "k/3"])
        #expect(restored.kv.lastChangeIndex == 4)
    }

    @Test func changeIndexesMoveWithSetsAndDeletesOfTheKeyOrUnderThePrefix() throws {
        var state = ClusterState()
        let (a, b, other) = (try key("app/a"), try key("app/b"), try key("other"))
        let app = Array("app/".utf8)
        _ = apply(&state, KVTransaction(operations: [.set(a, [1]), .set(b, [2])]), at: 3)
        _ = apply(&state, KVTransaction(operations: [.set(other, [3])]), at: 4)
        #expect(state.kv.changeIndex(of: a) == 3 && state.kv.changeIndex(underPrefix: app) == 3, "a change elsewhere moved the prefix")
        _ = apply(&state, KVTransaction(operations: [.set(b, [5])]), at: 6)
        #expect(state.kv.changeIndex(of: a) == 3 && state.kv.changeIndex(underPrefix: app) == 6)
        // A delete leaves nothing to carry its index but a tombstone: the key's and the
        // prefix's indexes still move past it, and a watch on either wakes.
        _ = apply(&state, KVTransaction(operations: [.delete(b)]), at: 8)
        #expect(state.kv.changeIndex(of: b) == 8 && state.kv.changeIndex(underPrefix: app) == 8)
        _ = apply(&state, KVTransaction(operations: [.deleteTree(prefix: try key("app/"))]), at: 9)
        #expect(state.kv.changeIndex(of: a) == 9 && state.kv.changeIndex(underPrefix: app) == 9)
        #expect(state.kv.changeIndex(underPrefix: Array("other".utf8)) == 4)
        // Created again: the entry's index says it, and the tombstone goes.
        _ = apply(&state, KVTransaction(operations: [.set(a, [7])]), at: 11)
        #expect(state.kv.changeIndex(of: a) == 11 && state.kv.tombstones.count == 1)
        let restored = try ClusterState.restore(from: state.snapshot())
        #expect(restored == state && restored.kv.changeIndex(of: b) == 8, "the snapshot lost the tombstones")
    }

    @Test(.cpuBound) func tombstonesAreBoundedAndTheFloorCoversTheOnesDropped() throws {
        var state = ClusterState()
        let count = KVTombstones.maxCount + 1
        let keys = try (0..<count).map { try key("t/\($0)") }
        _ = apply(&state, KVTransaction(operations: [.set(try key("kept/x"), [1])]), at: 1)
        for (position, batch) in stride(from: 0, to: count, by: 50).enumerated() {
            let slice = keys[batch..<min(batch + 50, count)]
            _ = apply(&state, KVTransaction(operations: slice.map { .set($0, [0]) }), at: UInt64(10 + 2 * position))
            _ = apply(&state, KVTransaction(operations: slice.map { .delete($0) }), at: UInt64(11 + 2 * position))
        }
        #expect(state.kv.tombstones.count <= KVTombstones.maxCount)
        // The first deletes were dropped: their keys report the floor, at least as new.
        #expect(state.kv.tombstones.floor >= 11 && state.kv.changeIndex(of: keys[0]) >= 11)
        #expect(state.kv.changeIndex(underPrefix: Array("kept/".utf8)) >= state.kv.tombstones.floor)
        #expect(state.kv.changeIndex(of: keys[count - 1]) == state.kv.lastChangeIndex, "the newest tombstone was dropped")
        #expect(try ClusterState.restore(from: state.snapshot()) == state)
    }
}
