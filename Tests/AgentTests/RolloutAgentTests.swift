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
@Suite(.dedicatedThread, .serialized, .enabled(if: isRoot, "needs root: agentd launches services in namespaces and cgroups"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct RolloutAgentTests {
    /// A service of two instances whose health check is `check`.
    func manifest(check: String, version: String = "1", minHealthyTime: String = "1s", canaries: Int = 0) -> String {
        """
        {"name": "roll", "services": [{"name": "web", "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"],
          "env": {"VERSION": "\(version)"},
          "rootfs": "/var/lib/flotilla/images/busybox", "readOnlyRootfs": true, "user": "nobody", "group": "nogroup",
          "resources": {"cpu": 0.1, "memory": "16Mi", "pids": 16}, "replicas": 2, "discovery": {"enabled": false},
          "health": {"exec": {"command": ["\(check)"]}, "interval": "500ms", "timeout": "400ms"},
          "update": {"maxParallel": 1, "minHealthyTime": "\(minHealthyTime)", "healthyDeadline": "4s", "progressDeadline": "20s", "autoRevert": true, "canaries": \(canaries)}}]}
        """
    }

    /// An apply that changes one service is judged on that service: a batch run of another
    /// service that failed earlier (moved to the new revision unchanged) does not fail it.
    @Test func anApplyIsNotFailedByAnotherServicesFailedInstance() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        func manifest(version: String) -> String {
            """
            {"name": "mixed", "services": [
              {"name": "migrate", "command": ["/bin/sh", "-c", "exit 3"], "rootfs": "/var/lib/flotilla/images/busybox",
               "resources": {"cpu": 0.1, "memory": "16Mi"}, "restart": {"policy": "never"}, "discovery": {"enabled": false}},
              {"name": "web", "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"],
               "env": {"VERSION": "\(version)"}, "rootfs": "/var/lib/flotilla/images/busybox",
               "resources": {"cpu": 0.1, "memory": "16Mi"}, "discovery": {"enabled": false},
               "update": {"minHealthyTime": "0s"}}]}
            """
        }
        _ = try agent.deployctl("apply", "-f", "-", "--timeout", "30s", input: manifest(version: "1"))
        try agent.waitUntil("the migrate run to fail", timeout: 30) {
            try agent.get("/v1/instances?application=mixed", as: [InstanceInfo].self).contains { $0.service == "migrate" && $0.status == .failed }
        }
        let second = try agent.deployctl("apply", "-f", "-", "--timeout", "30s", input: manifest(version: "2"))
        #expect(second.status == 0, "\(second)")
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
        // Named with its failed check, not with the relaunch that followed it. The deadline
        // finds the instance either unhealthy or with its restart scheduled after the check
        // ("restartScheduled: ... after: failed health check ..."): both name the check (a
        // clean-clone CI run of 567edaf met the first).
        #expect(bad.error.contains("web[0] not healthy after 4s (its healthyDeadline): ")
                    && bad.error.contains("failed health check: /bin/false exited with status 1")
                    && !bad.error.contains("launched"), "\(bad.error)")
        // Failed at its deadline, not at the follower's timeout.
        #expect(Date().timeIntervalSince(started) < 30, "\(Date().timeIntervalSince(started))s")

        try agent.waitUntil("the revert rolled out", timeout: 60) {
            application = try agent.get("/v1/applications/roll", as: ApplicationInfo.self)
            return application.rollout?.phase == .succeeded
        }
        #expect(application.revision == 3 && application.lastHealthyRevision == 3 && application.rollout?.revertOf == 2)
        // The event stream tells the same story, one event per step that took effect.
        let events = try agent.get("/v1/events", as: [Components.Schemas.ClusterEvent].self).filter { $0.kind.hasPrefix("rollout.") }
        let story = events.map { "\($0.kind) \($0.message)" }
        #expect(story.contains { $0.hasPrefix("rollout.failed failed: web[0] not healthy after 4s") }, "\(story)")
        #expect(story.contains { $0.hasPrefix("rollout.reverted revision 3: reverts revision 2") }, "\(story)")
        #expect(story.filter { $0 == "rollout.succeeded revision 1 rolled out" || $0 == "rollout.succeeded revision 3 rolled out" }.count == 2, "\(story)")
        #expect(story.contains("rollout.progressed 1 instance updated"), "\(story)")
        let instances = try agent.get("/v1/instances?application=roll", as: [InstanceInfo].self).filter { $0.desired == .run }
        #expect(instances.count == 2 && instances.allSatisfy { $0.revision == 3 && $0.status == .healthy }, "\(instances.map { ($0.id, $0.revision, $0.status) })")
    }

    @Test func pauseResumeUndoAndHistoryFromDeployctl() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest(check: "/bin/true")).status == 0, "\(agent.agentLog())")
        // Each new instance must stay healthy 3s: time enough to pause after the first.
        let applied = try agent.deployctl("apply", "-f", "-", "--no-wait", input: manifest(check: "/bin/true", version: "2", minHealthyTime: "3s"))
        #expect(applied.status == 0, "\(applied)")
        let paused = try agent.deployctl("rollout", "pause", "roll")
        #expect(paused.status == 0 && paused.output.contains("roll: rollout of revision 2 paused"), "\(paused)")
        let again = try agent.deployctl("rollout", "pause", "roll")
        #expect(again.status == 1 && again.error.contains("no rollout is running (its latest, of revision 2, paused)"), "\(again)")
        sleep(5)
        let status = try agent.deployctl("rollout", "status", "roll", "--no-follow")
        #expect(status.status == 6 && status.output.contains("rollout paused"), "\(status)")
        let old = try agent.get("/v1/instances?application=roll", as: [InstanceInfo].self).filter { $0.desired == .run && $0.revision == 1 }
        #expect(old.count == 1, "a paused rollout replaced \(2 - old.count) of 2 old instances")
        // Following a paused rollout says so at once rather than waiting out the timeout.
        let follow = try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest(check: "/bin/true", version: "2", minHealthyTime: "3s"))
        #expect(follow.status == 1 && follow.error.contains("the rollout of revision 2 is paused; `deployctl rollout resume roll` goes on with it"), "\(follow)")

        #expect(try agent.deployctl("rollout", "resume", "roll").status == 0)
        let resumed = try agent.deployctl("rollout", "status", "roll", "--timeout", "60s")
        #expect(resumed.status == 0 && resumed.output.contains("revision 2, rollout succeeded"), "\(resumed)")
        let history = try agent.deployctl("rollout", "history", "roll")
        #expect(history.status == 0 && history.output.contains("2 (current)") && !history.output.contains(" no "), "\(history)")

        let undo = try agent.deployctl("rollout", "undo", "roll")
        #expect(undo.status == 0 && undo.output.contains("roll: at revision 3"), "\(undo)")
        #expect(try agent.deployctl("rollout", "status", "roll", "--timeout", "60s").status == 0)
        let application = try agent.get("/v1/applications/roll?detail=true", as: ApplicationInfo.self)
        #expect(application.revision == 3 && application.revisions?.last?.origin == "undo to revision 1")
        let instances = try agent.get("/v1/instances?application=roll", as: [InstanceInfo].self).filter { $0.desired == .run }
        #expect(instances.count == 2 && instances.allSatisfy { $0.revision == 3 }, "\(instances.map { ($0.id, $0.revision) })")
        let missing = try agent.deployctl("rollout", "undo", "roll", "--to-revision", "9")
        #expect(missing.status == 1 && missing.error.contains("has no revision 9; it keeps 1, 2, 3") && missing.error.contains("[revision_not_found]"), "\(missing)")
    }

    @Test func aCanaryRunsBesideTheOldInstancesUntilPromoted() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest(check: "/bin/true", canaries: 1)).status == 0, "\(agent.agentLog())")
        let apply = try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest(check: "/bin/true", version: "2", canaries: 1))
        #expect(apply.status == 0 && apply.output.contains("Canaries of roll revision 2 are up; the rollout waits"), "\(apply)")
        let status = try agent.deployctl("rollout", "status", "roll", "--no-follow")
        #expect(status.status == 7 && status.output.contains("canaries (web 1): up; waiting for `deployctl rollout promote roll`"), "\(status)")
        let running = try agent.get("/v1/instances?application=roll", as: [InstanceInfo].self).filter { $0.desired == .run }
        #expect(running.filter { $0.revision == 1 }.count == 2 && running.filter { $0.revision == 2 }.count == 1, "\(running.map { ($0.id, $0.revision) })")
        let promote = try agent.deployctl("rollout", "promote", "roll")
        #expect(promote.status == 0 && promote.output.contains("canaries of revision 2 promoted"), "\(promote)")
        let done = try agent.deployctl("rollout", "status", "roll", "--timeout", "60s")
        #expect(done.status == 0 && done.output.contains("rollout succeeded"), "\(done)")
        let again = try agent.deployctl("rollout", "promote", "roll")
        #expect(again.status == 1 && again.error.contains("[rollout_state]"), "\(again)")
        let instances = try agent.get("/v1/instances?application=roll", as: [InstanceInfo].self).filter { $0.desired == .run }
        #expect(instances.count == 2 && instances.allSatisfy { $0.revision == 2 }, "\(instances.map { ($0.id, $0.revision) })")
    }

    @Test func upgradeChangesOneFieldAndRollsItOut() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest(check: "/bin/true")).status == 0, "\(agent.agentLog())")
        let upgrade = try agent.deployctl("upgrade", "roll/web", "--env", "VERSION=7", "--set", "update.maxParallel=2", "--timeout", "60s")
        #expect(upgrade.status == 0, "\(upgrade)")
        let application = try agent.get("/v1/applications/roll?detail=true", as: ApplicationInfo.self)
        let manifest = try #require(application.manifest)
        #expect(application.revision == 2 && manifest.contains(#""VERSION":"7""#) && manifest.contains(#""maxParallel":2"#), "\(manifest)")
        #expect(application.rollout?.phase == .succeeded)
        let instances = try agent.get("/v1/instances?application=roll", as: [InstanceInfo].self).filter { $0.desired == .run }
        #expect(instances.count == 2 && instances.allSatisfy { $0.revision == 2 })
        // A field that is not one: the agent's located error, and nothing changes.
        let bad = try agent.deployctl("upgrade", "roll/web", "--set", "update.maxParalel=2")
        #expect(bad.status == 1 && bad.output.contains(#"services[0].update.maxParalel: unknown field; did you mean "maxParallel"?"#), "\(bad)")
        let missing = try agent.deployctl("upgrade", "roll/nope", "--env", "A=1")
        #expect(missing.status == 1 && missing.error.contains("no service nope (it has web)"), "\(missing)")
        #expect(try agent.get("/v1/applications/roll", as: ApplicationInfo.self).revision == 2)
        let restart = try agent.deployctl("rollout", "restart", "roll/web")
        #expect(restart.status == 0 && restart.output.contains("every instance will be replaced"), "\(restart)")
    }
}
