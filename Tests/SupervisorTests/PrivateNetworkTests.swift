import Foundation
import Glibc
import Manifest
import Synchronization
import Testing
import TestSupport

@testable import Supervisor

/// `private` network mode on real services: busybox httpd in a network namespace of its own,
/// reached from the node only through the ports the supervisor publishes.
@Suite(.dedicatedThread, .enabled(if: isRoot, "needs root: namespaces and cgroups"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct PrivateNetworkTests {
    /// busybox httpd on 127.0.0.1:`port` inside its own network namespace. Before it starts, the
    /// script records what the namespace looks like from inside (`/www/lo-flags`,
    /// `/www/interfaces`), which the tests then fetch through the published port.
    static func privateWebServer(_ rootfs: BusyboxRootfs, port: Int, check: HealthCheck? = nil,
                                 restart: RestartPolicy = RestartPolicy(initialDelay: .milliseconds(50)),
                                 id: String = #function) throws -> SupervisedService
    {
        try FileManager.default.createDirectory(atPath: rootfs.path + "/www", withIntermediateDirectories: true)
        try "hello from inside\n".write(toFile: rootfs.path + "/www/index.html", atomically: true, encoding: .utf8)
        let policy = SupervisionPolicy(restart: restart, health: check, readiness: check == nil ? .exec : .health,
                                       stopTimeout: .milliseconds(500))
        var service = shellService(
            "cat /sys/class/net/lo/flags > /www/lo-flags; ls /sys/class/net > /www/interfaces; "
                + "exec httpd -f -p 127.0.0.1:\(port) -h /www",
            rootfs: rootfs, id: id, policy: policy, ports: ["http": port])
        service.launch.namespaces.insert(.network)
        return service
    }

    /// busybox nc listening on `port` in its own network namespace, handing each connection to
    /// `handler` (`nc -ll -e`); returns once it runs.
    static func runPrivateNetcat(port: Int, handler: String, rootfs: BusyboxRootfs, on test: TestNode,
                                 id: String = #function) async throws
    {
        var service = shellService("exec nc -ll -p \(port) -e \(handler)", rootfs: rootfs, id: id, ports: ["tcp": port])
        service.launch.namespaces.insert(.network)
        let instance = try await test.node.supervise(service)
        _ = try await instance.wait(timeout: .seconds(30)) { $0.phase == .running }
    }

    static let httpCheck = HealthCheck(probe: .http(HTTPCheck(port: "http", path: "/index.html")),
                                       interval: .milliseconds(100), timeout: .seconds(1))

    @Test func loopbackIsUpInsideAndThePublishedPortAnswersFromTheNode() async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        try await withTestNode { test in
            let instance = try await test.node.supervise(try Self.privateWebServer(rootfs, port: port, check: Self.httpCheck))
            let status = try await instance.wait(timeout: .seconds(30)) { $0.health == .healthy }
            #expect(status.lastCheck == ProbeOutcome(passed: true, detail: "HTTP 200"))
            let page = try httpGet(port: port, path: "/index.html")
            #expect(page.hasPrefix("HTTP/1.") && page.hasSuffix("hello from inside\n"), "\(page)")
            // IFF_UP | IFF_LOOPBACK, and no interface but lo.
            #expect(httpBody(try httpGet(port: port, path: "/lo-flags")) == "0x9\n")
            #expect(httpBody(try httpGet(port: port, path: "/interfaces")) == "lo\n")

            // The service listens on 127.0.0.1 of its namespace only; on the node the port is
            // the proxy's, on 0.0.0.0.
            let pid = try #require(status.pid)
            #expect(listeningAddresses(port: port, table: "/proc/\(pid)/net/tcp") == ["127.0.0.1"])
            #expect(listeningAddresses(port: port, table: "/proc/self/net/tcp") == ["0.0.0.0"])
        }
    }

    /// With a user namespace too, the new network namespace belongs to it, and the child (root
    /// there) still brings `lo` up: httpd can bind 127.0.0.1 and the published port answers.
    @Test func loopbackComesUpInsideAUserNamespaceToo() async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        try await withTestNode { test in
            // The namespace's root owns nothing of the rootfs: the notify mount point must exist.
            try FileManager.default.createDirectory(atPath: rootfs.path + "/run/flotilla/notify",
                                                    withIntermediateDirectories: true)
            var service = try Self.privateWebServer(rootfs, port: port, check: Self.httpCheck)
            service.launch.command = ["/bin/sh", "-c", "exec httpd -f -p 127.0.0.1:\(port) -h /www"]
            service.launch.namespaces.insert(.user)
            service.launch.idMapping = .shifted(to: 100_000, count: 65536)
            let instance = try await test.node.supervise(service)
            let status = try await instance.wait(timeout: .seconds(30)) { $0.health == .healthy }
            let pid = try #require(status.pid)
            #expect(try String(contentsOfFile: "/proc/\(pid)/uid_map", encoding: .utf8).contains("100000"))
            #expect(httpBody(try httpGet(port: port, path: "/index.html")) == "hello from inside\n")
        }
    }

    /// Published on 127.0.0.2: the node's 127.0.0.1 has nothing on the port, so a check that
    /// passes can only have connected inside the namespace. TCP and HTTP checks alike.
    @Test(arguments: [HealthCheck.Probe.http(HTTPCheck(port: "http", path: "/index.html")), .tcp(TCPCheck(port: "http"))])
    func checksConnectInsideTheNamespace(probe: HealthCheck.Probe) async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        try await withTestNode(publishAddress: "127.0.0.2") { test in
            let check = HealthCheck(probe: probe, interval: .milliseconds(100), timeout: .seconds(1))
            let instance = try await test.node.supervise(try Self.privateWebServer(rootfs, port: port, check: check))
            let status = try await instance.wait(timeout: .seconds(30)) { $0.health == .healthy }
            #expect(status.lastCheck?.passed == true)
            #expect(throws: SystemCallError.self) { try httpGet(port: port, path: "/index.html") }
            #expect(try httpGet(host: "127.0.0.2", port: port, path: "/index.html").hasSuffix("hello from inside\n"))
        }
    }

    @Test func aRestartedInstanceIsPublishedIntoItsNewNamespaceAndStopClosesThePort() async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        try await withTestNode { test in
            let instance = try await test.node.supervise(try Self.privateWebServer(rootfs, port: port, check: Self.httpCheck))
            let first = try await instance.wait(timeout: .seconds(30)) { $0.health == .healthy }
            let firstPid = try #require(first.pid)
            // Held open, so that the kernel cannot give its inode number to the next namespace.
            let held = open("/proc/\(firstPid)/ns/net", O_RDONLY | O_CLOEXEC)
            #expect(held >= 0)
            defer { close(held) }
            let firstNamespace = try namespaceInode(firstPid)
            #expect(try httpGet(port: port, path: "/index.html").hasSuffix("hello from inside\n"))

            kill(firstPid, SIGKILL)
            let second = try await instance.wait(timeout: .seconds(30)) { $0.launchCount == 2 && $0.health == .healthy }
            let secondPid = try #require(second.pid)
            #expect(try namespaceInode(secondPid) != firstNamespace)
            #expect(try httpGet(port: port, path: "/index.html").hasSuffix("hello from inside\n"))

            // A connection open through the proxy is closed along with the instance.
            let idle = try connectTCP(port: port)
            defer { close(idle) }
            let stopped = await instance.stop()
            #expect(stopped.phase == .stopped)
            var byte: UInt8 = 0
            let n = read(idle, &byte, 1)
            #expect(n == 0 || (n < 0 && errno == ECONNRESET), "read \(n), errno \(errno)")
            let refused = await eventually(within: .seconds(5)) {
                (try? connectTCP(port: port)).map { fd -> Bool in
                    close(fd)
                    return false
                } ?? true
            }
            #expect(refused)
            #expect(throws: SystemCallError(call: "connect", path: "127.0.0.1:\(port)", errno: ECONNREFUSED)) {
                try connectTCP(port: port)
            }
        }
    }

    /// An agent restart is a non-event for the service, but its published ports close with the
    /// old supervisor; the next one publishes them again into the adopted process's namespace.
    @Test func theNextSupervisorPublishesAnAdoptedInstanceAgain() async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        let service = try Self.privateWebServer(rootfs, port: port)
        let first = try TestNode()
        let pid: Int32
        do {
            let instance = try await first.node.supervise(service)
            pid = try #require(try await instance.wait(timeout: .seconds(30)) { $0.phase == .running }.pid)
            #expect(await eventually { (try? httpGet(port: port, path: "/index.html"))?.hasSuffix("hello from inside\n") == true })
        } catch {
            await first.teardown()
            throw error
        }
        await first.node.detach()
        let unpublished = await eventually(within: .seconds(5)) { (try? connectTCP(port: port)).map { close($0) } == nil }
        #expect(unpublished)

        let second = try TestNode(adopting: first)
        do {
            let instance = try await second.node.supervise(service)
            let status = try await instance.wait(timeout: .seconds(30)) { $0.adopted && $0.phase == .running }
            #expect(status.pid == pid)
            #expect(await eventually { (try? httpGet(port: port, path: "/index.html"))?.hasSuffix("hello from inside\n") == true })
        } catch {
            await second.teardown()
            throw error
        }
        await second.teardown()
    }

    @Test func aPortInUseOnTheNodeFailsTheStartAndNamesThePort() async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        let squatter = try listenTCP(port: port)
        defer { close(squatter) }
        try await withTestNode { test in
            let service = try Self.privateWebServer(rootfs, port: port, restart: RestartPolicy(policy: .never))
            let instance = try await test.node.supervise(service)
            let status = try await instance.wait(timeout: .seconds(30)) { $0.isFinished }
            let expected = "publishing port \"http\": bind 0.0.0.0:\(port): Address already in use"
            #expect(status.phase == .failed(reason: "could not start: " + expected))
            #expect(status.launchCount == 0)
            #expect(instance.events().contains { $0.kind == .launchFailed && $0.reason == expected })
        }
    }

    /// systemd's `RestartSec=0` as `initialDelay: 0s`, with a port in use: each relaunch fails
    /// before anything starts. The failures are taken one loop turn at a time, up to
    /// `maxRestarts`, then the instance fails: taken at once, each relaunch ran inside the
    /// last failure, and 20,000 of them overflowed the stack.
    @Test func launchFailuresWithNoRestartDelayEndInFailureNotInAStackOverflow() async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        let squatter = try listenTCP(port: port)
        defer { close(squatter) }
        try await withTestNode { test in
            let restart = RestartPolicy(initialDelay: .zero, maxDelay: .zero, maxRestarts: 20_000, window: .seconds(3600))
            let service = try Self.privateWebServer(rootfs, port: port, restart: restart)
            let instance = try await test.node.supervise(service)
            let status = try await instance.wait(timeout: .seconds(120)) { $0.isFinished }
            guard case .failed = status.phase else {
                Issue.record("\(status.phase)")
                return
            }
            #expect(status.launchCount == 0)
        }
    }

    /// A service that speaks first: its greeting reaches a client that has sent nothing.
    @Test func aGreetingFromTheServiceReachesTheClient() async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        try await withTestNode { test in
            try await Self.runPrivateNetcat(port: port, handler: "/bin/echo hello client", rootfs: rootfs, on: test)
            var greetings: [String] = []
            let answered = await eventually(within: .seconds(20)) {
                guard let fd = try? connectTCP(port: port) else { return false }
                defer { close(fd) }
                let text = (try? readAll(fd)).map { String(decoding: $0, as: UTF8.self) } ?? ""
                if !text.isEmpty { greetings.append(text) }
                return greetings.count == 5
            }
            #expect(answered)
            #expect(greetings == Array(repeating: "hello client\n", count: 5))
        }
    }

    /// More bytes than the socket buffers hold, each way at once: the proxy passes everything,
    /// in order, and the half-close.
    @Test func theProxyCarriesLargeBodiesBothWaysAndHalfCloses() async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        try await withTestNode { test in
            try await Self.runPrivateNetcat(port: port, handler: "/bin/cat", rootfs: rootfs, on: test)
            let body = [UInt8]((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
            var echoed: [UInt8] = []
            let answered = await eventually(within: .seconds(20)) {
                echoed = (try? echo(body, port: port)) ?? []
                return !echoed.isEmpty
            }
            #expect(answered)
            #expect(echoed.count == body.count)
            #expect(echoed == body)
        }
    }
}

// MARK: - Plain sockets, from the node's side

/// An IPv4 address of the node.
private func socketAddress(_ host: String, port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr(host)
    return address
}

/// A blocking TCP connection to `host`:`port`, with 5 s send and receive timeouts.
private func connectTCP(host: String = "127.0.0.1", port: Int) throws(SystemCallError) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SystemCallError(call: "socket", errno: errno) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = socketAddress(host, port: port)
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
        let error = errno
        close(fd)
        throw SystemCallError(call: "connect", path: "\(host):\(port)", errno: error)
    }
    return fd
}

/// A socket listening on 0.0.0.0:`port`, as another program of the node would hold it.
private func listenTCP(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    var address = socketAddress("0.0.0.0", port: port)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard fd >= 0, bound == 0, listen(fd, 8) == 0 else {
        let error = errno
        close(fd)
        throw SystemCallError(call: "bind", path: "0.0.0.0:\(port)", errno: error)
    }
    return fd
}

/// An HTTP/1.0 GET of `path`: the whole response, status line to body.
private func httpGet(host: String = "127.0.0.1", port: Int, path: String) throws(SystemCallError) -> String {
    let fd = try connectTCP(host: host, port: port)
    defer { close(fd) }
    try writeAll(fd, Array("GET \(path) HTTP/1.0\r\nHost: \(host)\r\n\r\n".utf8))
    return String(decoding: try readAll(fd), as: UTF8.self)
}

/// The body of an HTTP response (after the blank line that ends its head).
private func httpBody(_ response: String) -> String? {
    response.range(of: "\r\n\r\n").map { String(response[$0.upperBound...]) }
}

/// Sends `body` to an echo service from a thread of its own while reading the answer (so that
/// neither side's buffers fill up), half-closes, and returns all that came back.
private func echo(_ body: [UInt8], port: Int) throws -> [UInt8] {
    let fd = try connectTCP(port: port)
    defer { close(fd) }
    let writeError = Mutex<SystemCallError?>(nil)
    let writer = Thread {
        do throws(SystemCallError) {
            try writeAll(fd, body)
        } catch {
            writeError.withLock { $0 = error }
        }
        shutdown(fd, Int32(SHUT_WR))
    }
    writer.start()
    let answer = try readAll(fd)
    if let error = writeError.withLock({ $0 }) { throw error }
    return answer
}

/// The local addresses listening on `port` in a /proc/…/net/tcp table (the namespace of the
/// process it belongs to).
private func listeningAddresses(port: Int, table: String) -> [String] {
    guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").dropFirst().compactMap { line -> String? in
        let fields = line.split(separator: " ")
        guard fields.count > 3, fields[3] == "0A" else { return nil }
        let local = fields[1].split(separator: ":")
        guard local.count == 2, Int(local[1], radix: 16) == port, let raw = UInt32(local[0], radix: 16) else { return nil }
        // The kernel prints the address in host byte order of a network-order value.
        return [raw & 0xff, raw >> 8 & 0xff, raw >> 16 & 0xff, raw >> 24].map(String.init).joined(separator: ".")
    }
}

/// The inode of a process's network namespace.
private func namespaceInode(_ pid: Int32) throws -> UInt64 {
    var info = stat()
    guard stat("/proc/\(pid)/ns/net", &info) == 0 else { throw SystemCallError(call: "stat", path: "/proc/\(pid)/ns/net", errno: errno) }
    return UInt64(info.st_ino)
}
