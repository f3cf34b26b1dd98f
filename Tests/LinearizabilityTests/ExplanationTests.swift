import Linearizability
import Testing

/// A violation must say enough for a person to see what went wrong without re-running the search
/// by hand.
@Suite struct ExplanationTests {
    /// Times in nanoseconds: these are 1 ms, 2 ms, ...
    static let ms: UInt64 = 1_000_000

    @Test func staleReadNamesTheValueItContradicts() throws {
        let ms = Self.ms
        let history = [
            write(1, (1 * ms)...(2 * ms), "v5"),
            write(2, (3 * ms)...(4 * ms), "v7"),
            read(3, (5 * ms)...(6 * ms), returned: "v5"),
        ]
        guard case .notLinearizable(let key, let explanation) = check(history) else {
            Issue.record("not reported as a violation")
            return
        }
        #expect(key == "k")
        #expect(explanation.longestPrefix.map(\.index) == [0, 1])
        #expect(explanation.longestPrefix.map(\.valueAfter) == ["v5", "v7"])
        #expect(explanation.valueAfterPrefix == "v7")
        #expect(explanation.remaining == 1)
        let stuck = try #require(explanation.stuck.first)
        #expect(explanation.stuck.count == 1)
        #expect(stuck.index == 2)
        #expect(stuck.operation == history[2])
        #expect(!stuck.fitsAfterPrefix)
        #expect(!stuck.fitsSomewhere)
        #expect(stuck.refusedWhenValueWas == ["v7"])
        #expect(stuck.reason == #"returned "v5", but the value was "v7" at every point it could be placed"#)
        let text = explanation.description
        print(text)
        #expect(text.contains(#"#2 client 3 read "k": returned "v5" [4.000, 5.000]"#))
        #expect(text.contains(#"#1 client 2 write "k" "v7": ok [2.000, 3.000]  → value "v7""#))
    }

    /// The read fits several places in the search, but at each the value is one of two others.
    @Test func readConcurrentWithSeveralWritesListsEveryValueItContradicts() throws {
        let history = [
            write(1, 0...10, "a"),
            write(2, 20...60, "b"),
            write(3, 25...65, "c"),
            read(4, 30...70, returned: "a"),
            read(4, 80...90, returned: "a"),
        ]
        guard case .notLinearizable(_, let explanation) = check(history) else {
            Issue.record("not reported as a violation")
            return
        }
        // The first read fits before both writes; the second, after both, cannot.
        let secondRead = try #require(explanation.stuck.first { $0.index == 4 })
        #expect(Set(secondRead.refusedWhenValueWas) == ["b", "c"])
        #expect(!secondRead.fitsSomewhere)
    }

    /// An operation of unknown outcome shows as such, with its open window.
    @Test func unknownOperationsShowTheirOpenWindow() {
        let ms = Self.ms
        let history = [
            write(1, (1 * ms)...(2 * ms), "a", .unknown),
            read(2, (3 * ms)...(4 * ms), returned: "z"),
        ]
        guard case .notLinearizable(_, let explanation) = check(history) else {
            Issue.record("not reported as a violation")
            return
        }
        #expect(explanation.description.contains(#"write "k" "a": unknown [0.000, ∞) gave up at 1.000"#))
    }
}
