import Cluster
import Raft
import TestSupport
import Testing

/// Servers forming a cluster with `--bootstrap-expect`: they agree on the same servers and ids
/// whatever order they talk in, and a misconfiguration (one server too many, a name taken
/// twice, another count) ends in an error rather than two clusters.
@Suite struct FormationProgressTests {
    /// One server of a simulated formation: its progress and the addresses it was given.
    struct Simulated {
        var progress: FormationProgress
        var joins: [String]
        var failed: FormationError? { progress.failure }
    }

    /// Runs a formation of `names` (server i at address "host-i") in which each server was
    /// given `joins(i)`, every step one server asking another it knows of, in an order drawn
    /// from `seed`; returns the servers when no one can move any more.
    static func simulate(names: [String], expect: Int, seed: UInt64, joins: (Int) -> [Int]) -> [Simulated] {
        var random = SplitMix64(seed: seed)
        var servers = names.indices.map { index in
            Simulated(
                progress: FormationProgress(local: FormingServer(name: names[index], address: "host-\(index)"), expect: expect),
                joins: joins(index).map { "host-\($0)" })
        }
        for _ in 0..<5_000 {
            let active = servers.indices.filter { servers[$0].progress.formed == nil && servers[$0].progress.failure == nil }
            guard !active.isEmpty else { break }
            let asker = active[Int(random.next() % UInt64(active.count))]
            let addresses = Array(Set(servers[asker].joins + servers[asker].progress.knownServers.map(\.address)).subtracting([
                servers[asker].progress.local.address
            ])).sorted()
            guard !addresses.isEmpty else { break }
            let address = addresses[Int(random.next() % UInt64(addresses.count))]
            let target = Int(address.dropFirst("host-".count))!
            let request = FormationRequest(expect: servers[asker].progress.expect, known: servers[asker].progress.knownServers)
            let response = servers[target].progress.answer(request, askerName: names[asker])
            switch response {
            case .forming(let known): servers[asker].progress.heard(from: known[0].name, knows: known)
            case .formed(let formed): servers[asker].progress.adopt(formed)
            case .refused(let reason): servers[asker].progress.refused(reason)
            }
        }
        return servers
    }

    @Test("three servers, each given only the next one's address, all form the same cluster, ids by name", .cpuBound, arguments: 0..<200)
    func everyServerDecidesTheSame(seed: UInt64) {
        let names = ["gamma", "alpha", "beta"]
        let servers = Self.simulate(names: names, expect: 3, seed: seed) { [($0 + 1) % 3] }
        let expected = [
            FormedServer(id: 1, name: "alpha", address: "host-1"), FormedServer(id: 2, name: "beta", address: "host-2"),
            FormedServer(id: 3, name: "gamma", address: "host-0"),
        ]
        for server in servers {
            #expect(server.failed == nil)
            #expect(server.progress.formed == expected, "seed \(seed): \(server.progress.local.name)")
        }
    }

    /// Four servers all told to expect three: however they talk, no two decide differently;
    /// those that cannot decide fail with what is wrong.
    @Test("one server too many never makes two clusters", .cpuBound, arguments: 0..<400)
    func oneTooManyNeverSplits(seed: UInt64) {
        let names = ["a", "b", "c", "d"]
        let servers = Self.simulate(names: names, expect: 3, seed: seed) { [($0 + 1) % 4] }
        let decided = Set(servers.compactMap(\.progress.formed))
        #expect(decided.count <= 1, "seed \(seed): \(decided)")
        for formation in decided { #expect(formation.count == 3) }
        for server in servers where server.progress.formed == nil {
            #expect(server.failed != nil, "seed \(seed): \(server.progress.local.name) neither formed nor failed: \(servers.map { ($0.progress.local.name, $0.progress.formed?.map(\.name), $0.failed.map { "\($0)" }, $0.progress.knownServers.map(\.name)) })")
        }
    }

    @Test func misconfigurationsAreNamed() throws {
        var alpha = FormationProgress(local: FormingServer(name: "alpha", address: "10.0.0.1:4647"), expect: 3)
        // Another count: refused with both counts.
        let other = alpha.answer(FormationRequest(expect: 5, known: [FormingServer(name: "beta", address: "10.0.0.2:4647")]), askerName: "beta")
        guard case .refused(let reason) = other else { Issue.record("\(other)"); return }
        #expect(reason.contains("3") && reason.contains("5") && reason.contains("same count"))
        // A request whose first server is not the certificate's name is refused.
        let posing = alpha.answer(FormationRequest(expect: 3, known: [FormingServer(name: "gamma", address: "10.0.0.3:4647")]), askerName: "beta")
        guard case .refused = posing else { Issue.record("\(posing)"); return }
        // One name at two addresses.
        alpha.heard(from: "beta", knows: [FormingServer(name: "beta", address: "10.0.0.2:4647"), FormingServer(name: "ALPHA", address: "10.0.0.9:4647")])
        #expect(alpha.failure == .nameTakenTwice(name: "alpha", addresses: ["10.0.0.1:4647", "10.0.0.9:4647"]))
        // Once failed, it says so to whoever asks.
        let after = alpha.answer(FormationRequest(expect: 3, known: [FormingServer(name: "beta", address: "10.0.0.2:4647")]), askerName: "beta")
        guard case .refused(let failed) = after else { Issue.record("\(after)"); return }
        #expect(failed.contains("two servers are named alpha"))
        // Left out of a formation made without it.
        var late = FormationProgress(local: FormingServer(name: "delta", address: "10.0.0.4:4647"), expect: 3)
        late.adopt([
            FormedServer(id: 1, name: "alpha", address: "a:1"), FormedServer(id: 2, name: "beta", address: "b:1"),
            FormedServer(id: 3, name: "gamma", address: "c:1"),
        ])
        #expect(late.failure == .leftOut(["alpha", "beta", "gamma"]))
        #expect(late.formed == nil)
    }

    @Test func aServerWaitsForEveryReport() throws {
        var alpha = FormationProgress(local: FormingServer(name: "alpha", address: "a:1"), expect: 3)
        let all = [FormingServer(name: "beta", address: "b:1"), FormingServer(name: "alpha", address: "a:1"), FormingServer(name: "gamma", address: "c:1")]
        alpha.heard(from: "beta", knows: all)
        // Knows all three, but gamma has not said it does: not yet.
        #expect(alpha.formed == nil)
        #expect(alpha.waitingFor.map(\.name) == ["gamma"])
        alpha.heard(from: "gamma", knows: [all[2], all[0]])
        #expect(alpha.formed == nil)
        alpha.heard(from: "gamma", knows: [all[2], all[0], all[1]])
        #expect(alpha.formed?.map(\.id) == [1, 2, 3])
        #expect(alpha.formed?.map(\.name) == ["alpha", "beta", "gamma"])
    }
}
