@testable import Controller
import Manifest
import Testing

/// A service that reads keys (`kv` in its manifest) is replaced when one of their values
/// changes, under its update strategy, and not otherwise; node assignments carry the values.
@Suite struct KeyBindingRolloutTests {
    func set(_ cluster: inout TestCluster, _ key: String, _ value: String) {
        let result = cluster.apply(.kvTransaction(KVTransaction(operations: [.set(try! KVKey(validating: key), Array(value.utf8))])))
        if case .kvTransactionApplied = result { return }
        Issue.record("\(result)")
    }

    @Test func aChangedValueReplacesTheInstancesThatReadItAndNothingElse() throws {
        var cluster = TestCluster(nodes: [makeNode("n1"), makeNode("n2")])
        set(&cluster, "web/port", "8080")
        var web = makeService("web", replicas: 3, update: UpdateStrategy(maxParallel: 1))
        web.kv = [KeyBinding(key: "web/port", env: "PORT"), KeyBinding(key: "web/tls.pem", file: "/etc/web/tls.pem")]
        cluster.apply(makeApplication("shop", web, makeService("worker")))
        cluster.converge()
        let key = ServiceKey("shop", "web")
        let first = Set(cluster.live(key).map(\.id))
        let worker = Set(cluster.live(ServiceKey("shop", "worker")).map(\.id))
        #expect(first.count == 3)

        // The assignment carries the values of the keys its instances read (absent ones not).
        let node = try #require(cluster.live(key).first?.node)
        #expect(cluster.state.assignment(for: node).boundValues == ["web/port": Array("8080".utf8)])

        // The same bytes again, a key nobody reads: the state does not change, nothing rolls.
        let before = cluster.state.lastChangeIndex
        set(&cluster, "web/port", "8080")
        set(&cluster, "other/key", "x")
        #expect(cluster.state.lastChangeIndex == before)
        cluster.converge()
        #expect(Set(cluster.live(key).map(\.id)) == first)

        // A new value: one at a time (maxParallel 1), every instance of web is replaced; the
        // worker, which reads no key, stays.
        set(&cluster, "web/port", "9090")
        #expect(cluster.state.lastChangeIndex == cluster.index, "the change did not wake the planner")
        let (plan, _) = cluster.schedule()
        #expect(plan.placements.count == 1 && plan.placements.allSatisfy { $0.reason.contains("a key it reads changed") }, "\(plan.placements.map(\.reason))")
        cluster.reportAll()
        cluster.converge()
        #expect(Set(cluster.live(key).map(\.id)).isDisjoint(with: first) && cluster.live(key).count == 3)
        #expect(Set(cluster.live(ServiceKey("shop", "worker")).map(\.id)) == worker)

        // A key that did not exist appearing is a change too.
        let second = Set(cluster.live(key).map(\.id))
        set(&cluster, "web/tls.pem", "cert")
        cluster.converge()
        #expect(Set(cluster.live(key).map(\.id)).isDisjoint(with: second))
        let restored = try ClusterState.restore(from: cluster.state.snapshot())
        #expect(restored == cluster.state, "the snapshot lost keyChangeIndex")

        // A replica restored from the snapshot knows who reads the key (rebuilt, not stored).
        var replica = TestCluster()
        replica.state = restored
        replica.index = cluster.index
        let third = Set(replica.live(key).map(\.id))
        set(&replica, "web/port", "7070")
        replica.converge()
        #expect(Set(replica.live(key).map(\.id)).isDisjoint(with: third), "a restored replica did not roll the service")

        // Deleting a tree that holds a read key is a change of it too.
        let fourth = Set(replica.live(key).map(\.id))
        let deleted = replica.apply(.kvTransaction(KVTransaction(operations: [.deleteTree(prefix: try KVKey(validating: "web"))])))
        guard case .kvTransactionApplied = deleted else { Issue.record("\(deleted)"); return }
        replica.converge()
        #expect(Set(replica.live(key).map(\.id)).isDisjoint(with: fourth), "deleting the key's tree did not roll the service")

        // Once the application is gone, its keys are nobody's: a write is no change of the state.
        cluster.apply(.deleteApplication(name: "shop", expectedRevision: nil))
        let afterDelete = cluster.state.lastChangeIndex
        set(&cluster, "web/port", "6060")
        #expect(cluster.state.lastChangeIndex == afterDelete)
    }
}
