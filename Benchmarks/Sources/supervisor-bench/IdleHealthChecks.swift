import Foundation
import Glibc
import Manifest
import Supervisor

/// The supervisor's idle CPU with 1,000 instances (busybox httpd) under HTTP health checks every
/// 10 seconds: all checks run on one event loop.
enum IdleHealthChecks {
    static func run(rootfs: BenchRootfs, instances: Int, measure: Duration, forwarding: Forwarding) async throws {
        try "ok".write(toFile: rootfs.path + "/www/health", atomically: true, encoding: .utf8)
        let bench = try BenchNode(forwarding)
        let memoryBefore = residentBytes()
        let check = HealthCheck(probe: .http(HTTPCheck(port: "http", path: "/health")), interval: .seconds(10),
                                timeout: .seconds(2))
        let policy = SupervisionPolicy(health: check, readiness: .health, stopTimeout: .seconds(1))
        let ports = (0..<instances).map { 30000 + $0 }
        let started = ContinuousClock.now
        var supervised: [SupervisedInstance] = []
        for (index, port) in ports.enumerated() {
            let launch = LaunchSpec(instanceID: "web-\(index)", command: ["/bin/httpd", "-f", "-p", "127.0.0.1:\(port)", "-h", "/www"],
                                    root: .directory(rootfs.path))
            supervised.append(try await bench.node.supervise(
                SupervisedService(serviceName: "web", launch: launch, policy: policy, ports: ["http": port])))
        }
        let launched = ContinuousClock.now - started
        for instance in supervised { _ = try await instance.wait(timeout: .seconds(120)) { $0.isReady } }
        let ready = ContinuousClock.now - started
        let memoryAfter = residentBytes()
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
        let threadsBefore = threadTicks()
        let cpuBefore = processCPUTime()
        let wallBefore = ContinuousClock.now
        try await Task.sleep(for: measure)
        let cpu = processCPUTime() - cpuBefore
        let wall = ContinuousClock.now - wallBefore
        var checks = 0
        var healthy = 0
        for instance in supervised {
            let status = await instance.status()
            if status.lastCheck != nil { checks += 1 }
            if status.health == .healthy { healthy += 1 }
        }
        print("== Idle supervisor: \(instances) instances, HTTP health checks every 10 s, \(forwarding.label)")
        print("  launched in \(milliseconds(launched)), all ready in \(milliseconds(ready)); healthy now: \(healthy)")
        print(String(format: "  supervisor CPU while idle: %.2f%% of one core over %.0f s  (goal <= 2%%)",
                     seconds(cpu) / seconds(wall) * 100, seconds(wall)))
        let threadsAfter = threadTicks()
        let busiest = threadsAfter.map { tid, value in (value.name, value.ticks - (threadsBefore[tid]?.ticks ?? 0)) }
            .filter { $0.1 > 0 }.sorted { $0.1 > $1.1 }
        print("  CPU ticks (1/100 s) by thread: " + busiest.map { "\($0.0): \($0.1)" }.joined(separator: ", "))
        print("  supervisor threads: \(threads); resident memory added: \((memoryAfter - memoryBefore) / instances / 1024) KiB per instance")
        await bench.finish()
    }
}
