import Synchronization
import Testing

@testable import Agent

/// The making of instance roots and the collection of unused images exclude each other: a
/// collection removed layers that a root started during it had just found present and mounted.
@Suite struct ImageUseGateTests {
    @Test func aRootStartedDuringACollectionWaitsForItsEnd() async throws {
        let gate = ImageUseGate()
        #expect(gate.beginCollection())
        let entered = Flag()
        let prepare = Task {
            await gate.enterPrepare("web-1")
            entered.value.store(true, ordering: .sequentiallyConsistent)
        }
        try await Task.sleep(for: .milliseconds(200))
        let enteredDuringTheCollection = entered.value.load(ordering: .sequentiallyConsistent)
        #expect(!enteredDuringTheCollection, "a root was made while a collection ran")
        #expect(!gate.beginCollection())
        gate.endCollection()
        await prepare.value
        let enteredAfter = entered.value.load(ordering: .sequentiallyConsistent)
        #expect(enteredAfter)
        // Let in by the end of the collection, it now keeps the next one from starting.
        #expect(gate.preparingCount == 1)
        #expect(!gate.beginCollection())
        gate.leavePrepare("web-1")
        #expect(gate.beginCollection())
        gate.endCollection()
    }

    @Test func aCollectionDoesNotStartWhileARootIsMade() async {
        let gate = ImageUseGate()
        await gate.enterPrepare("web-1")
        await gate.enterPrepare("web-2")
        #expect(!gate.beginCollection())
        gate.leavePrepare("web-1")
        #expect(!gate.beginCollection())
        gate.leavePrepare("web-2")
        #expect(gate.beginCollection())
    }
}

private final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}
