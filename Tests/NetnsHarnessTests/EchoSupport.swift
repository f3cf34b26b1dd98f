import Foundation
import Glibc
import NetnsHarness

/// A threaded TCP echo server on port 7000 of every address of its host; says `listening` once
/// it accepts.
let echoServerScript = #"""
import socket, threading
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", 7000))
server.listen(16)
print("listening", flush=True)
def serve(connection):
    with connection:
        while True:
            data = connection.recv(65536)
            if not data:
                return
            connection.sendall(data)
while True:
    connection, _ = server.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
"""#

/// Connects to argv[1]:7000 within argv[2] seconds, then times three echoes of 5 bytes; prints
/// `ok CONNECT_MS BEST_ROUND_TRIP_MS` or `fail REASON` (status 1). With argv[3], then echoes that
/// many random bytes in bulk and checks they come back unchanged.
let echoClientScript = #"""
import os, socket, sys, threading, time
try:
    start = time.monotonic()
    connection = socket.create_connection((sys.argv[1], 7000), timeout=float(sys.argv[2]))
    connected = time.monotonic() - start
    rounds = []
    for _ in range(3):
        sent = time.monotonic()
        connection.sendall(b"ping\n")
        got = b""
        while len(got) < 5:
            data = connection.recv(5 - len(got))
            if not data:
                raise Exception("closed by the server")
            got += data
        rounds.append(time.monotonic() - sent)
    if len(sys.argv) > 3:
        # Bulk: frames far above the MTU leave the sender (TSO) and must arrive intact.
        payload = os.urandom(int(sys.argv[3]))
        connection.settimeout(10)
        threading.Thread(target=connection.sendall, args=(payload,), daemon=True).start()
        got = bytearray()
        while len(got) < len(payload):
            data = connection.recv(65536)
            if not data:
                raise Exception("closed by the server after %d bulk bytes" % len(got))
            got += data
        if bytes(got) != payload:
            raise Exception("the bulk echo differs from what was sent")
    print("ok %.3f %.3f" % (connected * 1000, min(rounds) * 1000))
except Exception as error:
    print("fail %s" % error)
    sys.exit(1)
"""#

struct EchoReply {
    var connected: Bool
    var roundTripMilliseconds: Double
    var text: String
}

/// Starts the echo server on `host` and returns once it listens.
func startEchoServer(on host: Int, in network: HostNetwork) throws {
    let log = temporaryPath("echo-\(network.runID)-h\(host).log")
    defer { unlink(log) }
    try network.start(host: host, arguments: ["python3", "-c", echoServerScript], logPath: log)
    try waitFor("listening", count: 1, inFile: log)
}

/// Echoes from `host` to the echo server on `target`'s address.
func echo(from host: Int, to target: Int, in network: HostNetwork, timeoutSeconds: Double = 2,
          bulkBytes: Int? = nil) throws -> EchoReply
{
    try echo(from: host, toAddress: network.address(of: target), in: network, timeoutSeconds: timeoutSeconds,
             bulkBytes: bulkBytes)
}

func echo(from host: Int, toAddress address: String, in network: HostNetwork, timeoutSeconds: Double = 2,
          bulkBytes: Int? = nil) throws -> EchoReply
{
    let output = try network.run(
        host: host,
        arguments: ["python3", "-c", echoClientScript, address, "\(timeoutSeconds)"] + (bulkBytes.map { ["\($0)"] } ?? []),
        timeout: .seconds(20))
    let text = (output.stdout + output.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
    let fields = text.split(separator: " ")
    guard output.status == 0, fields.count == 3, fields[0] == "ok", let roundTrip = Double(fields[2]) else {
        return EchoReply(connected: false, roundTripMilliseconds: .infinity, text: text)
    }
    return EchoReply(connected: true, roundTripMilliseconds: roundTrip, text: text)
}

/// Whether an echo succeeds within a few tries (a healed link may need a moment: ARP again).
func echoEventually(from host: Int, to target: Int, in network: HostNetwork) throws -> Bool {
    for _ in 0..<5 where try echo(from: host, to: target, in: network, timeoutSeconds: 1).connected {
        return true
    }
    return false
}

// MARK: Looking at the machine from outside the harness

/// The root namespace's links and routes, as `ip` shows them (without counters or states that
/// change on their own).
func rootNamespaceView() throws -> String {
    try run(["ip", "-o", "link", "show"]).split(separator: "\n")
        .map { $0.split(separator: " ").prefix(2).joined(separator: " ") }.joined(separator: "\n")
        + "\n" + run(["ip", "route", "show", "table", "all"])
}

func namespaceList() throws -> [String] {
    try run(["ip", "netns", "list"]).split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
}

func pids(in namespace: String) throws -> [pid_t] {
    try run(["ip", "netns", "pids", namespace]).split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }
}

/// Runs a command to completion and returns its stdout; a non-zero status throws.
@discardableResult
func run(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let error = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CommandError(command: arguments, stderr: String(decoding: error, as: UTF8.self))
    }
    return String(decoding: data, as: UTF8.self)
}

struct CommandError: Error {
    var command: [String]
    var stderr: String
}

/// Whether `condition` holds within `timeout`, polled.
func eventually(timeout: Duration = .seconds(3), _ condition: () throws -> Bool) throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        usleep(10_000)
    }
}

/// Waits until `file` holds `count` lines equal to `line`.
func waitFor(_ line: String, count: Int, inFile file: String, timeout: Duration = .seconds(5)) throws {
    let found = try eventually(timeout: timeout) {
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0 == line }.count >= count
    }
    guard found else {
        throw CommandError(command: ["wait for \(line) ×\(count) in \(file)"],
                           stderr: (try? String(contentsOfFile: file, encoding: .utf8)) ?? "(no file)")
    }
}

func temporaryPath(_ name: String) -> String {
    NSTemporaryDirectory() + "flotilla-netns-test-\(getpid())-\(UUID().uuidString.prefix(8))-\(name)"
}

/// Whether `pid` has ended: no such process, or a zombie.
func hasEnded(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
        return true
    }
    return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
}
