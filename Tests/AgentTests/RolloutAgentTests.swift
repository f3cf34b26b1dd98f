import AgentAPI
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

private let isRoot = getuid() == 0

/// The rollout engine on a real agent: the leader's clock enforces the deadlines, and
/// `deployctl apply` says how the rollout ended.
@Suite(.dedicatedThread, .serialized, .enabled(if: isRoot, "needs root: agentd launches services in namespaces and cgroups"), .timeLimit(.minutes(5)))
struct RolloutAgentTests {
    /// A service of two instances whose health check is `check`.
    func manifest(check: String) -> String {
        """
        {"name": "roll", "services": [{"name": "web", "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"],
          "rootfs": "/var/lib/flotilla/images/busybox", "readOnlyRootfs": true, "user": "nobody", "group": "nogroup",
          "resources": {"cpu": 0.1, "memory": "16Mi", "pids": 16}, "replicas": 2, "discovery": {"enabled": false},
          "health": {"exec": {"command": ["\(check)"]}, "interval": "500ms", "timeout": "400ms"},
          "update": {"maxParallel": 1, "minHealthyTime": "1s", "healthyDeadline": "4s", "progressDeadline": "20s", "autoRevert": true}}]}
        """
    }

    @Test func aRevisionThatNeverBecomesHealthyFailsAtItsDeadlineAndIsReverted() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let first = try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest(check: "/bin/true"))
        #expect(first.status == 0, "\(first)\n\(agent.agentLog())")
        var application = try agent.get("/v1/applications/roll", as: ApplicationInfo.self)
        #expect(application.rollout?.phase == .succeeded && application.lastHealthyRevision == 1, "\(String(describing: application.rollout))")

        let started = Date()
        let bad = try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest(check: "/bin/false"))
        #expect(bad.status == 1, "\(bad)")
        #expect(bad.error.contains("the rollout of revision 2 failed and was reverted: revision 3: reverts revision 2"), "\(bad.error)")
        #expect(bad.error.contains("web[0] not healthy after 4s (its healthyDeadline)"), "\(bad.error)")
        // Failed at its deadline, not at the follower's timeout.
        #expect(Date().timeIntervalSince(started) < 30, "\(Date().timeIntervalSince(started))s")

        try agent.waitUntil("the revert rolled out", timeout: 60) {
            application = try agent.get("/v1/applications/roll", as: ApplicationInfo.self)
            return application.rollout?.phase == .succeeded
        }
        #expect(application.revision == 3 && application.lastHealthyRevision == 3 && application.rollout?.revertOf == 2)
        let instances = try agent.get("/v1/instances?application=roll", as: [InstanceInfo].self).filter { $0.desired == .run }
        #expect(instances.count == 2 && instances.allSatisfy { $0.revision == 3 && $0.status == .healthy }, "\(instances.map { ($0.id, $0.revision, $0.status) })")
    }
}
