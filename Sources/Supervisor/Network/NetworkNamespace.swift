import CSpawn
import Glibc

/// The network namespace of one process of a `private`-network instance, held open by a
/// descriptor of /proc/PID/ns/net from its launch (or adoption) until its exit. A restarted
/// instance gets a new namespace, and with it a new `NetworkNamespace`.
final class NetworkNamespace: Sendable {
    /// The namespace's descriptor; open for the object's whole life.
    let descriptor: Int32

    /// The namespace of the process `handle` holds.
    convenience init(of handle: InstanceHandle) throws(SystemCallError) {
        try self.init(pid: handle.pid, pidFD: handle.pidFD.descriptor)
    }

    /// The namespace of process `pid`, held by `pidFD` (a child not yet released, say).
    init(pid: pid_t, pidFD: Int32) throws(SystemCallError) {
        let fd = fl_open_net_namespace(pidFD, pid)
        guard fd >= 0 else { throw SystemCallError(call: "open", path: "/proc/\(pid)/ns/net", errno: -fd) }
        descriptor = fd
    }

    deinit {
        close(descriptor)
    }
}
