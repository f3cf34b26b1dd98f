import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// agentd warns at start when its dynamic port range overlaps the kernel's ephemeral ports,
/// which outgoing connections hold (EphemeralPortRange says what that cost in rollout-bench).
@Suite(.dedicatedThread, .enabled(if: getuid() == 0, "needs root: agentd runs as root"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct PortRangeWarningTests {
    @Test func aRangeInsideTheEphemeralPortsIsWarnedAboutAndOneBelowIsNot() throws {
        let inside = try DevAgent(extraArguments: ["--port-range", "40000-40499"])
        defer { inside.shutdown() }
        let range = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        try #require(range.count == 2 && range[0] <= 40000 && range[1] >= 40499, "this machine's ephemeral ports are \(range)")
        #expect(inside.agentLog().contains("--port-range 40000-40499 overlaps the kernel's ephemeral ports in 40000-40499"), "\(inside.agentLog())")

        let below = try DevAgent()
        defer { below.shutdown() }
        #expect(!below.agentLog().contains("ephemeral"), "\(below.agentLog())")
    }
}
