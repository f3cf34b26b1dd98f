import AgentAPI
import Foundation
import OpenAPIRuntime
import ServiceLifecycle

/// Instance output and cluster events: a JSON array, or with `follow` / `stream` a response
/// that goes on as things happen, for at most `wait` (the agent's --max-query-wait), after which
/// the client resumes where it was.
extension APIHandler {
    func getInstanceLogs(_ input: Operations.GetInstanceLogs.Input) async throws -> Operations.GetInstanceLogs.Output {
        let (id, query) = (input.path.id, input.query)
        let lines = try query.tail.map { tail throws(APIError) in
            guard tail >= 0 else { throw Self.negative("tail", tail) }
            return Int(clamping: tail)
        }
        if let since = query.since, since < 0 { throw Self.negative("since", since) }
        let duration = try api.queryLimits.wait(query.wait, fallback: api.queryLimits.maxWait)
        guard try await api.gateway.read({ $0.instances[id] != nil }) else { throw Self.instanceNotFound(id) }
        guard query.follow == true else {
            return .ok(.init(body: .json(try await api.logs.tail(instance: id, lines: lines, since: query.since))))
        }
        let source = try await api.logs.follow(instance: id, lines: lines, since: query.since)
        let encoder = APIJSON.encoder()
        let records = Self.bounded(source, for: duration).map { line -> ArraySlice<UInt8> in
            var bytes = try ArraySlice(encoder.encode(line))
            bytes.append(0x0A)
            return bytes
        }
        return .ok(.init(body: .applicationJsonl(HTTPBody(records, length: .unknown, iterationBehavior: .single))))
    }

    func listEvents(_ input: Operations.ListEvents.Input) async throws -> Operations.ListEvents.Output {
        let query = input.query
        var after = UInt64(0)
        if let value = query.after {
            guard value >= 0 else { throw Self.negative("after", value) }
            after = UInt64(value)
        } else if let lastEventID = input.headers.lastEventID {
            // SSE reconnection: the client's EventSource sends the id of the last event it saw.
            guard let value = UInt64(lastEventID) else {
                throw APIError(code: APIErrorCode.badRequest, message: "Last-Event-ID: \(lastEventID) is not an event index", path: "Last-Event-ID")
            }
            after = value
        }
        let feed = api.gateway.feed
        let index = APIMapping.signed(feed.index)
        guard query.stream == true else {
            return .ok(.init(headers: .init(xFlotillaIndex: index), body: .json(feed.recent(after: after))))
        }
        let duration = try api.queryLimits.wait(query.wait, fallback: api.queryLimits.maxWait)
        let encoder = APIJSON.encoder()
        let events = Self.bounded(Self.keepingAlive(feed.subscribe(after: after)), for: duration).map { item -> ArraySlice<UInt8> in
            guard let event = item else { return ArraySlice(": keepalive\n\n".utf8) }
            let data = String(decoding: try encoder.encode(event), as: UTF8.self)
            return ArraySlice("id: \(event.index)\nevent: \(event.kind)\ndata: \(data)\n\n".utf8)
        }
        return .ok(.init(
            headers: .init(xFlotillaIndex: index),
            body: .textEventStream(HTTPBody(events, length: .unknown, iterationBehavior: .single))))
    }

    /// `source` until `duration` has passed (or it ends, or the agent shuts down): a stream ends
    /// like a blocking query times out, and its client resumes from the last item it saw.
    static func bounded<Element: Sendable>(
        _ source: some AsyncSequence<Element, any Error> & Sendable, for duration: Duration
    ) -> AsyncThrowingStream<Element, any Error> {
        AsyncThrowingStream { continuation in
            let reader = Task {
                do {
                    for try await element in source { continuation.yield(element) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            // A stream also ends when the agent shuts down (SIGTERM): graceful shutdown waits for
            // open requests, and a stream would otherwise hold it up for its whole duration.
            let timer = Task {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
                continuation.finish()
            }
            continuation.onTermination = { _ in
                reader.cancel()
                timer.cancel()
            }
        }
    }

    /// The events, with a nil (a comment line) every 15 s so that proxies and idle timeouts do
    /// not close a quiet stream.
    static func keepingAlive(_ events: AsyncStream<ClusterEvent>) -> AsyncThrowingStream<ClusterEvent?, any Error> {
        AsyncThrowingStream { continuation in
            let reader = Task {
                for await event in events { continuation.yield(event) }
                continuation.finish()
            }
            let ticker = Task {
                while !Task.isCancelled {
                    continuation.yield(nil)
                    try await Task.sleep(for: .seconds(15))
                }
            }
            continuation.onTermination = { _ in
                reader.cancel()
                ticker.cancel()
            }
        }
    }
}
