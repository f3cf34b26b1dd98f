@testable import Controller
import Manifest
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The main pid, restart count and last exit of an instance, which operators and scripts look
/// for first: carried by status reports into the replicated state, and readable from entries
/// and snapshots written before they existed.
@Suite("Instance status reports: pid, restarts and last exit")
struct InstanceProcessTests {
    static func placedInstance() throws -> (TestCluster, InstanceID) {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(makeApplication("web", makeService("web")))
        cluster.schedule()
        return (cluster, try #require(cluster.state.instances.keys.first))
    }

    @Test func reportsCarryThePidRestartCountAndLastExit() throws {
        var (cluster, id) = try Self.placedInstance()
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .running, mainPID: 4100, restartCount: 0)]))
        var instance = try #require(cluster.state.instances[id])
        #expect(instance.mainPID == 4100 && instance.restartCount == 0 && instance.lastExit == nil)
        // It crashes and waits for its restart: no process, one restart, the exit kept.
        let crash = ExitInfo(code: 2)
        cluster.apply(.reportInstanceStatus(node: "a", reports: [
            InstanceStatusReport(id: id, status: .starting, message: "restart 1 in 250ms", mainPID: nil, restartCount: 1, lastExit: crash),
        ]))
        instance = try #require(cluster.state.instances[id])
        #expect(instance.mainPID == nil && instance.restartCount == 1 && instance.lastExit == crash)
        #expect(instance.exit == nil, "a restarted process has not ended the instance")
        // Running again: a new pid, and the last exit is still there.
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .running, mainPID: 4200, restartCount: 1, lastExit: crash)]))
        instance = try #require(cluster.state.instances[id])
        #expect(instance.mainPID == 4200 && instance.restartCount == 1 && instance.lastExit == crash)
    }

    /// A change of pid alone is recorded (an operator must not see a dead pid), without an
    /// event line: the events say what happened, and nothing new did.
    @Test func aChangeOfPidAloneIsRecordedWithoutAnEvent() throws {
        var (cluster, id) = try Self.placedInstance()
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .running, message: "up", mainPID: 10)]))
        let events = try #require(cluster.state.instances[id]?.events)
        let before = cluster.state.lastChangeIndex
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .running, message: "up", mainPID: 11)]))
        let instance = try #require(cluster.state.instances[id])
        #expect(instance.mainPID == 11)
        #expect(instance.events == events)
        #expect(cluster.state.lastChangeIndex > before && instance.modifiedIndex == cluster.state.lastChangeIndex)
        // The same report again changes nothing at all.
        let settled = cluster.state.lastChangeIndex
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .running, message: "up", mainPID: 11)]))
        #expect(cluster.state.lastChangeIndex == settled)
    }

    /// A report that does not know the restart count or an exit (nil) leaves what is recorded;
    /// one without a pid says no process runs.
    @Test func unknownFactsLeaveTheRecordAndNoPidClearsIt() throws {
        var (cluster, id) = try Self.placedInstance()
        cluster.apply(.reportInstanceStatus(node: "a", reports: [
            InstanceStatusReport(id: id, status: .running, mainPID: 7, restartCount: 3, lastExit: ExitInfo(signal: 9, oomKilled: true)),
        ]))
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .unhealthy, message: "HTTP 500")]))
        let instance = try #require(cluster.state.instances[id])
        #expect(instance.mainPID == nil)
        #expect(instance.restartCount == 3 && instance.lastExit == ExitInfo(signal: 9, oomKilled: true))
    }

    /// Before, a report without an exit differed from a recorded exit, and so repeated the
    /// last event every time it came.
    @Test func aReportWithoutAnExitDoesNotRepeatTheLastEvent() throws {
        var (cluster, id) = try Self.placedInstance()
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .starting, exit: ExitInfo(code: 1), message: "exit 1")]))
        let count = try #require(cluster.state.instances[id]?.events.count)
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .starting, message: "exit 1")]))
        #expect(cluster.state.instances[id]?.events.count == count)
        #expect(cluster.state.instances[id]?.exit == ExitInfo(code: 1))
    }

    @Test func whatIsNewsToTheCluster() {
        let running = InstanceStatusReport(id: "i", status: .running, message: "healthy: HTTP 200", mainPID: 10, restartCount: 0)
        #expect(running.isNews(after: nil))
        #expect(!running.isNews(after: running))
        var otherMessage = running
        otherMessage.message = "status: warming"
        #expect(!otherMessage.isNews(after: running), "a message alone is not news")
        var restarted = running
        restarted.mainPID = 11
        #expect(restarted.isNews(after: running))
        var counted = running
        counted.restartCount = 1
        #expect(counted.isNews(after: running))
        var exited = running
        exited.lastExit = ExitInfo(code: 0)
        #expect(exited.isNews(after: running))
        let starting = InstanceStatusReport(id: "i", status: .starting, message: "restart 1 in 250ms")
        #expect(starting.isNews(after: starting), "each restart's message says why it is not up")
    }

    // MARK: - Formats written before the fields existed

    @Test func aReportEntryWrittenBeforeTheFieldsExistedDecodes() throws {
        let old = #"{"command":{"node":"a","reports":[{"exit":{"code":3,"oomKilled":false},"id":"web.web.0-1","message":"exited","status":"failed"}],"type":"reportInstanceStatus"},"formatVersion":1,"time":5}"#
        let entry = try ControllerEntry.decode(Array(old.utf8))
        let expected = InstanceStatusReport(id: "web.web.0-1", status: .failed, exit: ExitInfo(code: 3), message: "exited")
        #expect(entry.command == .reportInstanceStatus(node: "a", reports: [expected]))
        #expect(expected.mainPID == nil && expected.restartCount == nil && expected.lastExit == nil)
        // Without the new facts it is written exactly as before, so old readers read it too.
        #expect(String(decoding: entry.encoded(), as: UTF8.self) == old)
    }

    @Test func theNewFieldsSurviveTheLogAndSnapshots() throws {
        var (cluster, id) = try Self.placedInstance()
        let report = InstanceStatusReport(id: id, status: .running, message: "up", mainPID: 4321, restartCount: 2, lastExit: ExitInfo(signal: 15))
        let entry = ControllerEntry(command: .reportInstanceStatus(node: "a", reports: [report]), time: Timestamp(unixMilliseconds: 9))
        #expect(try ControllerEntry.decode(entry.encoded()) == entry)
        cluster.apply(.reportInstanceStatus(node: "a", reports: [report]))
        let restored = try ClusterState.restore(from: cluster.state.snapshot())
        #expect(restored == cluster.state)
        #expect(restored.instances[id]?.mainPID == 4321 && restored.instances[id]?.restartCount == 2)
    }

    @Test func aSnapshotWrittenBeforeTheFieldsExistedRestores() throws {
        var (cluster, id) = try Self.placedInstance()
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .failed, exit: ExitInfo(code: 1), message: "gave up")]))
        let current = String(decoding: cluster.state.snapshot(), as: UTF8.self)
        // What the previous version wrote: the same, without the three members (keys are sorted).
        let old = current.replacing(#""restartCount":0,"#, with: "")
        #expect(!old.contains("restartCount") && !old.contains("mainPID") && !old.contains("lastExit"))
        let restored = try ClusterState.restore(from: Array(old.utf8))
        #expect(restored == cluster.state)
        let instance = try #require(restored.instances[id])
        #expect(instance.mainPID == nil && instance.restartCount == 0 && instance.lastExit == nil && instance.exit == ExitInfo(code: 1))
    }

    /// One instance as the previous version's synthesized encoder wrote it.
    @Test func anInstanceRecordInThePreviousFormatDecodes() throws {
        let old = #"""
            {"createdAt":1700000000000,"createdIndex":4,"desiredState":"run","events":[{"message":"running on a","status":"running","time":1700000001000}],
             "exit":{"code":0,"oomKilled":false},"id":"web.web.0-1","index":0,"modifiedIndex":5,"node":"a",
             "ports":[{"name":"http","number":20000,"protocol":"tcp"}],"reservedCPUMillicores":250,"reservedMemoryBytes":67108864,
             "revision":1,"service":{"application":"web","service":"web"},"status":"running"}
            """#
        let instance = try JSONDecoder().decode(InstanceRecord.self, from: Data(old.utf8))
        #expect(instance.id == "web.web.0-1" && instance.ports == [AssignedPort(name: "http", number: 20000)])
        #expect(instance.mainPID == nil && instance.restartCount == 0 && instance.lastExit == nil)
    }
}
