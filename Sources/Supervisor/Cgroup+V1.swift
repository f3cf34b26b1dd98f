import Glibc

extension InstanceCgroup {
    /// Kills every process of a v1 cgroup without letting one escape by forking: freeze the
    /// cgroup, SIGKILL each member, then thaw (cgroup-v1/freezer-subsystem.rst; runc's
    /// signalAllProcesses does the same). Frozen processes cannot fork. Older kernels deliver the
    /// kills only at the thaw; on 6.18 here a SIGKILL ends a v1-frozen process at once (seen in
    /// a test of this stop), so a pid can be reaped and reused during the loop, as with any list.
    static func legacyFreezeAndKill(_ freezer: String) throws(SystemCallError) {
        let state = freezer + "/freezer.state"
        try FileIO.write("FROZEN", to: state)
        // Thawed on every path: a cgroup left FROZEN after a failed read holds its processes
        // (and, on older kernels, the kills sent to them) until someone thaws it by hand.
        var thawed = false
        defer { if !thawed { try? FileIO.write("THAWED", to: state) } }
        var pause = Duration.microseconds(50)
        let deadline = ContinuousClock.now + .seconds(2)
        // FREEZING means some task has not stopped yet; writing FROZEN again retries it.
        while try FileIO.readText(state).trimmingNewlines != "FROZEN" {
            if ContinuousClock.now >= deadline { break }
            sleep(pause)
            pause = min(pause * 2, .milliseconds(10))
            try FileIO.write("FROZEN", to: state)
        }
        for pid in try processes(in: freezer) { Glibc.kill(pid, SIGKILL) }
        try FileIO.write("THAWED", to: state)
        thawed = true
    }
}
