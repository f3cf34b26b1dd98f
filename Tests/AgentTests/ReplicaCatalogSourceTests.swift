import Controller
import Testing

@testable import Agent

/// A server's catalog source on a real one-node Raft group whose state has not changed yet
/// (index 0, as on a server just formed): asked past that index it waits for a change instead
/// of answering at once, which had the catalog follower rebuilding the catalog in a busy loop.
@Suite struct ReplicaCatalogSourceTests {
    @Test("past index 0 the source waits for the state's first change", .timeLimit(.minutes(2)))
    func pastIndexZeroWaitsForAChange() async throws {
        let group = try await OneNodeGateway(name: "catalog-source")
        let gateway = group.gateway
        let source = ReplicaCatalogSource(gateway: gateway)

        let now = try #require(await source.catalog(after: nil))
        #expect(now.index == 0)
        let asked = ContinuousClock.now
        let next = Task { await source.catalog(after: now.index) }
        try await Task.sleep(for: .milliseconds(500))
        let registration = OneNodeGateway.registration("n1")
        _ = try await gateway.submit(.registerNode(registration))
        let changed = try #require(await next.value)
        let waited = ContinuousClock.now - asked
        #expect(waited >= .milliseconds(500), "answered after \(waited), before the state changed")
        #expect(changed.index > 0)
        #expect(Array(changed.nodes.keys) == ["n1"])
        await group.stop()
    }
}
