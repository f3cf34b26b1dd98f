extension Density {
    /// The figures as issue 4 asks for them (goal ≤ 64 KiB per service, no process besides them).
    func printReport() {
        let rssPerServiceKiB = Double(rssAfterKiB - rssBeforeKiB) / Double(services)
        let heapPerServiceKiB = Double(heapAfterBytes - heapBeforeBytes) / 1024 / Double(services)
        let idleSeconds = Double(idleWindow.components.seconds) + Double(idleWindow.components.attoseconds) / 1e18
        let idleFraction = (Double(idleCPU.components.seconds) + Double(idleCPU.components.attoseconds) / 1e18) / idleSeconds
        print("\nDensity: \(services) busybox sleep services through NodeSupervisor.supervise, in a fresh process")
        print("  launched in \(launchTime); median supervise: first tenth \(firstTenthLaunch), last tenth \(lastTenthLaunch)")
        print("  supervisor RSS \(rssBeforeKiB) KiB → \(rssAfterKiB) KiB: \(format(rssPerServiceKiB, decimals: 1)) KiB per service (goal ≤ 64)")
        print("  malloc heap in use \(heapBeforeBytes / 1024) KiB → \(heapAfterBytes / 1024) KiB: "
            + "\(format(heapPerServiceKiB, decimals: 1)) KiB per service")
        print("  new processes on the host besides the services: \(newProcesses.helpers.count) of the supervisor's "
            + "(goal 0), \(newProcesses.unrelated.count) unrelated; services not the supervisor's children: \(servicesNotChildren)")
        for helper in newProcesses.helpers.prefix(10) { print("    helper: \(helper)") }
        if !newProcesses.unrelated.isEmpty {
            print("    unrelated (started elsewhere meanwhile): " + newProcesses.unrelated.prefix(8).joined(separator: ", ")
                + (newProcesses.unrelated.count > 8 ? ", …" : ""))
        }
        print("  supervisor threads \(threads)")
        print("  idle CPU over \(idleWindow): \(idleCPU) (\(format(idleFraction * 100, decimals: 3)) % of one core)")
        print("  teardown (shutdown: stop all, cgroups removed) \(teardownTime), cgroups left \(cgroupsLeft)")
    }
}
