import AgentAPI
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Where deployctl finds the agent: `--address`/`FLOTILLA_ADDR` (a unix socket path, or
/// `http://host:port`) and `--token`/`FLOTILLA_TOKEN` for TCP.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "The agent: a unix socket path (default /run/flotilla/api.sock, or $FLOTILLA_ADDR) or http://host:port.")
    var address: String?

    @Option(name: .long, help: "Bearer token for TCP access (default $FLOTILLA_TOKEN).")
    var token: String?

    func client() -> AgentClient {
        let environment = ProcessInfo.processInfo.environment
        return AgentClient(
            address: address ?? environment["FLOTILLA_ADDR"] ?? AgentClient.defaultSocket,
            token: token ?? environment["FLOTILLA_TOKEN"])
    }
}

/// Why a command failed, and the exit status it maps to.
enum CommandFailure: Error, CustomStringConvertible {
    /// The agent refused the request (exit 1).
    case refused(APIError)
    /// The agent could not be reached (exit 3).
    case unreachable(String)
    /// Something the user asked for cannot be done (exit 1).
    case failed(String)

    var description: String {
        switch self {
        case .refused(let error): error.description
        case .unreachable(let message): message
        case .failed(let message): message
        }
    }

    var exitCode: Int32 {
        switch self {
        case .refused, .failed: 1
        case .unreachable: 3
        }
    }
}

/// Talks to agentd's HTTP API over its unix socket or TCP.
struct AgentClient: Sendable {
    static let defaultSocket = "/run/flotilla/api.sock"

    let address: String
    let token: String?

    /// The URL of `path` (with its query) on the agent.
    func url(_ path: String) -> String {
        if address.hasPrefix("http://") || address.hasPrefix("https://") {
            return (address.hasSuffix("/") ? String(address.dropLast()) : address) + path
        }
        let socket = address.hasPrefix("unix://") ? String(address.dropFirst("unix://".count)) : address
        let encoded = socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socket
        return "http+unix://\(encoded)\(path)"
    }

    /// Sends a request and returns the response, its body not yet read.
    func send(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, timeout: Duration = .seconds(60)) async throws(CommandFailure) -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url(path))
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            return try await HTTPClient.shared.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000))
        } catch {
            throw .unreachable("cannot reach the agent at \(address): \(error); is agentd running? (set --address or FLOTILLA_ADDR)")
        }
    }

    /// Sends a request and decodes a JSON answer, or throws the agent's error.
    func call<Answer: Decodable>(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, as type: Answer.Type, timeout: Duration = .seconds(60)) async throws(CommandFailure) -> Answer {
        let response = try await send(method, path, body: body, timeout: timeout)
        let bytes: ByteBuffer
        do {
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw .unreachable("the agent's answer was cut off: \(error)")
        }
        let data = Data(bytes.readableBytesView)
        guard (200..<300).contains(response.status.code) else {
            if let error = try? JSONDecoder().decode(APIError.self, from: data) { throw .refused(error) }
            throw .failed("the agent answered \(response.status.code): \(String(decoding: data, as: UTF8.self))")
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw .failed("the agent's answer is not what this deployctl understands (\(error)); are their versions the same?")
        }
    }

    /// Streams newline-delimited records from a long-lived response.
    func lines(_ path: String) async throws(CommandFailure) -> AsyncThrowingStream<String, any Error> {
        let response = try await send(.GET, path, timeout: .seconds(365 * 24 * 3600))
        guard (200..<300).contains(response.status.code) else {
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
            if let error = try? JSONDecoder().decode(APIError.self, from: body) { throw .refused(error) }
            throw .failed("the agent answered \(response.status.code)")
        }
        return AsyncThrowingStream { continuation in
            let task = Task {
                var pending: [UInt8] = []
                do {
                    for try await chunk in response.body {
                        pending.append(contentsOf: chunk.readableBytesView)
                        while let newline = pending.firstIndex(of: 0x0A) {
                            continuation.yield(String(decoding: pending[..<newline], as: UTF8.self))
                            pending.removeSubrange(...newline)
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// Query-string building that escapes what needs it.
func query(_ items: [(String, String?)]) -> String {
    let parts = items.compactMap { key, value in
        value.map { "\(key)=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? $0)" }
    }
    return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
}

/// Path segments escaped for a URL.
func segment(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? text
}
