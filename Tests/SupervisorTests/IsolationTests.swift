import Foundation
import Glibc
import Testing

@testable import Supervisor

/// Each isolation knob, observed from inside a real service.
@Suite(.enabled(if: isRoot, "needs root: namespaces and cgroups"), .timeLimit(.minutes(2)))
struct IsolationTests {
    @Test func serviceIsPidOneAndSeesItsHostname() async throws {
        let rootfs = try BusyboxRootfs()
        let test = try TestSupervisor()
        let capture = try OutputCapture()
        var launch = spec(["/bin/sh", "-c", "echo pid=$$; hostname"], rootfs: rootfs, capture: capture)
        launch.hostname = "svc-test"
        let (status, output) = try await run(launch, on: test.supervisor, capture: capture)
        #expect(status.termination == .exited(code: 0))
        #expect(output == "pid=1\nsvc-test\n")
        try test.finish()
    }
}
