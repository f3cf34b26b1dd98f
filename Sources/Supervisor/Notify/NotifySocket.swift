import CSpawn
import Glibc
import Synchronization

/// The sd_notify socket of one instance: a unix datagram socket in the instance's state
/// directory (`notify/notify.sock`), reachable inside the instance's mount namespace through a
/// read-only bind mount of that directory (a directory, so that a new agent's socket at the same
/// path is seen by running instances too). Every datagram carries the sender's credentials;
/// only processes in the instance's own cgroup are heard, so a service cannot speak for another.
final class NotifySocket: Sendable {
    /// A datagram's fate.
    enum Delivery: Sendable {
        /// From the instance's cgroup: act on it. With the id of the sender's cgroup where it is
        /// known: the cgroup is made anew for each process of the instance, so the id tells a
        /// message of the current process from one a previous process sent just before it ended.
        case accepted(NotifyMessage, senderCgroup: UInt64?)
        /// From elsewhere: refused, with who sent it.
        case refused(String)
    }

    /// The directory bind-mounted into the instance, and the socket in it.
    let directory: String
    var path: String { directory + "/" + Self.socketName }
    static let socketName = "notify.sock"
    /// Where the socket appears inside an instance with its own root filesystem.
    static let mountPoint = "/run/flotilla/notify"

    private let fd: Int32
    private let token: UInt64
    private let watcher: DescriptorWatcher
    private let expected: ExpectedSender

    /// What a sender must match: the instance's cgroup, which has the same path for every process
    /// of the instance: its cgroup2 directory, whose inode number is the cgroup's id (looked up
    /// per message: the cgroup is made anew for each process), and its path as /proc/PID/cgroup
    /// shows it. Known before the first launch, so that a message sent right after execve is
    /// judged like any other.
    struct ExpectedSender: Sendable {
        var unifiedDirectory: String?
        var relativePath: String

        var cgroupID: UInt64? {
            unifiedDirectory.flatMap(InstanceCgroup.cgroupID(atPath:))
        }
    }

    /// Binds the socket (replacing one a previous agent left) and starts listening on `watcher`;
    /// `deliver` is called on the watcher's thread.
    init(directory: String, sender: ExpectedSender, watcher: DescriptorWatcher,
         deliver: @escaping @Sendable (Delivery) -> Void) throws(SystemCallError)
    {
        self.directory = directory
        self.watcher = watcher
        expected = sender
        try FileSystem.makeDirectories(directory)
        // sockaddr_un holds 107 bytes of path: bind through /proc/self/fd/N/ of the directory,
        // which is short whatever the state directory's path.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw .last("open", directory) }
        defer { close(directoryFD) }
        let bound = fl_notify_bind("/proc/self/fd/\(directoryFD)/\(Self.socketName)")
        guard bound >= 0 else { throw SystemCallError(call: "bind", path: directory + "/" + Self.socketName, errno: -bound) }
        fd = bound
        let expected = self.expected
        let open = OpenDescriptor(bound)
        do throws(SystemCallError) {
            token = try watcher.add(bound) { _ in
                // Delivered after the lock is released: a delivery can drop the last reference
                // to the instance, whose socket's deinit then takes this lock to close it.
                var deliveries: [Delivery] = []
                open.withOpen { Self.receiveAll($0, expected: expected) { deliveries.append($0) } }
                for delivery in deliveries { deliver(delivery) }
            }
        } catch {
            close(bound)
            throw error
        }
        openDescriptor = open
    }

    /// Shared with the handler: the descriptor, closed under its lock.
    private let openDescriptor: OpenDescriptor

    deinit {
        watcher.remove(fd, token: token)
        openDescriptor.close()
    }

    private static func receiveAll(_ fd: Int32, expected: ExpectedSender, deliver: (Delivery) -> Void) {
        var buffer = [CChar](repeating: 0, count: 4096)
        while true {
            var sender = fl_notify_sender()
            let n = buffer.withUnsafeMutableBufferPointer { fl_notify_receive(fd, $0.baseAddress, $0.count, &sender) }
            if n < 0 { return }
            defer { if sender.pidfd >= 0 { close(sender.pidfd) } }
            // Cut short, its last assignment may be cut too (WATCHDOG_USEC=30000000 read as
            // =300): systemd ignores such a message, and so does this.
            if sender.truncated != 0 {
                deliver(.refused("a message of over \(buffer.count) bytes (or with more control data than fits) from pid \(sender.pid): "
                    + "cut short, ignored as systemd does"))
                continue
            }
            let text = String(decoding: buffer[0..<Int(n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            switch verify(sender, against: expected) {
            case .success(let senderCgroup):
                deliver(.accepted(NotifyMessage(parsing: text), senderCgroup: senderCgroup))
            case .failure(let why):
                deliver(.refused(why.why))
            }
        }
    }

    private struct Refusal: Error {
        var why: String
    }

    /// The sender's cgroup from its pidfd (SCM_PIDFD, PIDFD_GET_INFO: still known after the
    /// sender has exited, which a short-lived `systemd-notify` often has by now), else from
    /// /proc/PID/cgroup of its SCM_CREDENTIALS pid. Answers the sender's cgroup id where known.
    private static func verify(_ sender: fl_notify_sender, against expected: ExpectedSender) -> Result<UInt64?, Refusal> {
        let who = "pid \(sender.pid) (uid \(sender.uid))"
        if sender.pidfd >= 0, let cgroupID = expected.cgroupID {
            var info = fl_pidfd_info()
            // PIDFD_INFO_EXIT too: for a sender already reaped, the kernel answers only with its
            // exit record (which holds its cgroup id). One caught between its exit and its
            // reaping is briefly in neither (ESRCH): ask again for a few milliseconds.
            let mask = UInt64(FL_PIDFD_INFO_CGROUPID) | UInt64(FL_PIDFD_INFO_EXIT)
            var attempts = 0
            while fl_pidfd_info(sender.pidfd, mask, &info) == -ESRCH, attempts < 20 {
                attempts += 1
                InstanceCgroup.sleep(.microseconds(250))
            }
            if info.mask & UInt64(FL_PIDFD_INFO_CGROUPID) != 0 {
                if info.cgroup_id == cgroupID { return .success(cgroupID) }
                return .failure(Refusal(why: "from \(who) in cgroup \(describeCgroup(sender.pid)) (id \(info.cgroup_id)), not this instance's"))
            }
        }
        // The directory's id before and after the read: a sender alive in the cgroup keeps it
        // from being removed, so the same id both times is the id of the sender's cgroup.
        let idBefore = expected.cgroupID
        guard let membership = ProcessCgroups(pid: sender.pid) else {
            return .failure(Refusal(why: "from \(who): its cgroup cannot be read (it has exited)"))
        }
        for line in membership.lines {
            // With a cgroup2 directory only its line counts: a v1 line keeps its path after the
            // cgroup is removed, so a sender of the previous cgroup would match it.
            guard expected.unifiedDirectory == nil || line.hierarchy == "0" else { continue }
            if line.path == expected.relativePath {
                // The directory made anew meanwhile: which cgroup the sender was in is unknown.
                let idAfter = expected.cgroupID
                guard idBefore == idAfter else {
                    return .failure(Refusal(why: "from \(who): the instance's cgroup was made anew while the message was checked"))
                }
                return .success(idAfter)
            }
        }
        return .failure(Refusal(why: "from \(who) in cgroup \(describeCgroup(sender.pid)), not this instance's"))
    }

    private static func describeCgroup(_ pid: Int32) -> String {
        guard let membership = ProcessCgroups(pid: pid) else { return "(unknown: it has exited)" }
        if let unified = membership.unifiedPath { return unified }
        let line = membership.lines.first { $0.controllers.split(separator: ",").contains("pids") } ?? membership.lines.first
        return line.map { String($0.path) } ?? "(unknown)"
    }
}

/// A descriptor that a handler on another thread may still use once after its owner closed it
/// (a wake-up already taken, see `DescriptorWatcher.remove`): by then the number may be another
/// descriptor's, whose data the handler would take. Used and closed under one lock.
final class OpenDescriptor: Sendable {
    private let descriptor: Mutex<Int32?>

    init(_ descriptor: Int32) {
        self.descriptor = Mutex(descriptor)
    }

    /// Runs `body` with the descriptor unless it is closed.
    func withOpen(_ body: (Int32) -> Void) {
        descriptor.withLock { fd in
            if let fd { body(fd) }
        }
    }

    func close() {
        descriptor.withLock { fd in
            if let open = fd { Glibc.close(open) }
            fd = nil
        }
    }
}
