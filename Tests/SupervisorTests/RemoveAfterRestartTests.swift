import Foundation
import Glibc
import Testing
import TestSupport

@testable import Supervisor

/// Removing an instance that an earlier supervisor started (the agent restarted meanwhile): its
/// process must end, whether the new supervisor adopted it first or knows it only from its state
/// directory. A client agent restarted and then told by the cluster that its instance was
/// replaced elsewhere does exactly this.
@Suite(.enabled(if: isRoot, "needs root: namespaces and cgroups"), .dedicatedThread, .timeLimit(.minutes(10)))
struct RemoveAfterRestartTests {
    /// Starts a long sleep under a first supervisor, detaches it, and hands the state to a
    /// second one; returns the second node, the service and the process id.
    private func startAndRestart(_ rootfs: BusyboxRootfs, id: String = #function) async throws
        -> (TestNode, SupervisedService, Int32)
    {
        let service = shellService("exec sleep 1000", rootfs: rootfs, id: id)
        let first = try TestNode()
        let pid: Int32
        do {
            let instance = try await first.node.supervise(service)
            pid = try #require(try await instance.wait(timeout: .seconds(30)) { $0.phase == .running }.pid)
        } catch {
            await first.teardown()
            throw error
        }
        await first.node.detach()
        #expect(processIsRunning(pid), "detaching must leave the process running")
        return (try TestNode(adopting: first), service, pid)
    }

    private func ended(_ pid: Int32) async -> Bool {
        await eventually(within: .seconds(10)) { !processIsRunning(pid) }
    }

    @Test func anAdoptedInstanceEndsWhenRemoved() async throws {
        let rootfs = try BusyboxRootfs()
        let (second, service, pid) = try await startAndRestart(rootfs)
        do {
            let instance = try await second.node.supervise(service)
            let status = try await instance.wait(timeout: .seconds(30)) { $0.adopted && $0.phase == .running }
            #expect(status.pid == pid)
            await second.node.remove(service.instanceID)
            #expect(await ended(pid), "the adopted process \(pid) still runs after remove")
            #expect(second.node.recordedInstanceIDs().contains(service.instanceID) == false)
        } catch {
            await second.teardown()
            throw error
        }
        await second.teardown()
    }

    @Test func aRecordedInstanceNotAdoptedEndsWhenRemoved() async throws {
        let rootfs = try BusyboxRootfs()
        let (second, service, pid) = try await startAndRestart(rootfs)
        #expect(second.node.recordedInstanceIDs().contains(service.instanceID))
        await second.node.remove(service.instanceID)
        #expect(await ended(pid), "the recorded process \(pid) still runs after remove")
        #expect(second.node.recordedInstanceIDs().contains(service.instanceID) == false)
        await second.teardown()
    }
}
