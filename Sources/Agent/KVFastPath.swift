import AgentAPI
import Controller
import Foundation
import HTTPTypes
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOHTTPTypes
import Synchronization

/// `PUT /v1/kv/{key}` in its plain form (no query, a `Content-Length` body) and `GET` of one
/// key (no query but `stale=true`) answered on the connection's event loop, beside Hummingbird's
/// request handling rather than through it. The write or read itself is the same (the API
/// handler's own `getKV`; for a write, `putKV`'s transaction and answer, proposed without a task
/// while this server leads, see `submit`), and so is the answer, byte for byte but for its
/// indexes, last contact and date: the document's `KVEntry` (or the 404's error), encoded as the
/// generated server encodes it, with the same headers in the same order. What differs is the way there:
/// Hummingbird's async request handling and the generated server's conversions (its query
/// decoding parses the query string once per parameter) took 44 % of the leader's CPU per write
/// (258 against 145 µs at 64 clients; three servers on one machine, the same binary with and
/// without this path: 1.5× to 1.6× as many writes per second), and about 150 of 200 µs per
/// stale read (25,600 to 26,900 stale reads per second at 64 clients against 7,900 to 11,200).
///
/// Any request it does not take passes on untouched to the router, which answers it as it
/// answers every other: a write's query string (`cas`), a read's other than `stale=true`
/// (`recurse`, `raw`, a blocking query's `index` and `wait`), a percent-encoded or unusual key,
/// a body sent chunked or with `Expect` (or any with a read), a `Connection` header, a missing or
/// wrong token, a value over the limit. It sits after Hummingbird's `HTTPConnectionStateHandler` (see `Installer`), which
/// therefore counts its requests as in progress: an idle timeout or a graceful shutdown does
/// not close a connection with a request under way, and its answers go out the same way.
final class KVFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What the handlers of one listener share.
    struct Settings: Sendable {
        /// The API's handler, whose `putKV` makes the write.
        var handler: APIHandler
        /// Nil on the unix socket, which its permissions guard.
        var token: BearerToken?
        var metrics: APIMetrics
        /// Where the installer says, once, that it could not install the path.
        var logger: Logger
        /// `flotilla_api_kv_fast_writes_total`: the writes this path took (answered or refused).
        var fastWrites = Counter(label: "flotilla_api_kv_fast_writes_total")
        /// `flotilla_api_kv_fast_reads_total`: the reads of one key this path took.
        var fastReads = Counter(label: "flotilla_api_kv_fast_reads_total")
    }

    /// The request whose answer is awaited: answers go out in the order of their requests
    /// (HTTP/1.1 pipelining), so nothing else is taken until it has been answered.
    private enum InFlight {
        /// A write or read taken here.
        case taken
        /// A request of the router's: until its answer's end passes on its way out.
        case routed
    }

    private var inFlight: InFlight?
    /// The request in flight has been read to its end.
    private var requestReadWhole = false
    /// The body so far of the write being read.
    private var reading: (key: KVKey, body: ByteBuffer, started: ContinuousClock.Instant)?
    /// The read taken, until its request's end.
    private var pendingRead: (key: KVKey, stale: Bool, started: ContinuousClock.Instant)?
    /// Parts that came while a request was in flight (pipelined), taken in order once answered.
    private var held = CircularBuffer<HTTPRequestPart>()
    /// A read the channel asked for while an answer was awaited: made once it has gone out, so
    /// that a client pipelining requests is read no faster than it is answered.
    private var readHeld = false
    /// Events that came after the parts held or during a write taken here (a client's half
    /// close, an error of the parser on what it sent next): passed on after them, or the
    /// router, which ends the connection on them, would end it before the write is answered.
    private var heldEvents: [HeldEvent] = []

    private enum HeldEvent {
        case user(Any)
        case error(any Error)
    }
    private let settings: Settings
    private var date = HTTPDate()
    /// False once removed from the pipeline: a write answered after that has nowhere to go.
    private var isAdded = false

    init(settings: Settings) {
        self.settings = settings
    }

    func handlerAdded(context: ChannelHandlerContext) { isAdded = true }
    func handlerRemoved(context: ChannelHandlerContext) { isAdded = false }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if !held.isEmpty || (inFlight != nil && Self.isHead(part)) {
            held.append(part)
            return
        }
        take(part, context: context)
    }

    private func take(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            requestReadWhole = false
            if let (key, length) = plainWrite(head) {
                settings.fastWrites.increment()
                inFlight = .taken
                // Grown as the body comes: a header alone does not reserve 512 KiB.
                reading = (key, context.channel.allocator.buffer(capacity: min(length, 64 << 10)), .now)
            } else if let (key, stale) = plainRead(head) {
                settings.fastReads.increment()
                inFlight = .taken
                pendingRead = (key, stale, .now)
            } else {
                inFlight = .routed
                context.fireChannelRead(wrapInboundOut(part))
            }
        case .body(var chunk):
            guard reading != nil else { return context.fireChannelRead(wrapInboundOut(part)) }
            reading?.body.writeBuffer(&chunk)
        case .end:
            requestReadWhole = true
            if let (key, stale, started) = pendingRead {
                pendingRead = nil
                return submitRead(key, stale: stale, started: started, context: context)
            }
            guard let (key, body, started) = reading else { return context.fireChannelRead(wrapInboundOut(part)) }
            reading = nil
            submit(key, value: Array(body.readableBytesView), started: started, context: context)
        }
    }

    /// The router's answers pass on; the end of one lets the next request in.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        if case .end = unwrapOutboundIn(data), inFlight == .routed {
            answered(context: context)
        }
    }

    /// Holds the channel's reads while an answer is awaited and its request has been read whole.
    func read(context: ChannelHandlerContext) {
        guard inFlight != nil, requestReadWhole else { return context.read() }
        readHeld = true
    }

    /// The request in flight has been answered: the parts held come in, in order.
    private func answered(context: ChannelHandlerContext) {
        inFlight = nil
        var tookHeld = false
        while let part = held.first, !(inFlight != nil && Self.isHead(part)) {
            held.removeFirst()
            take(part, context: context)
            tookHeld = true
        }
        // What was passed on is delivered at a read's end (NIOAsyncChannel's handler waits for
        // one), and no read of the channel's may come while reads are held.
        if tookHeld { context.fireChannelReadComplete() }
        if !holdsEvents {
            let events = heldEvents
            heldEvents = []
            for event in events {
                switch event {
                case .user(let event): context.fireUserInboundEventTriggered(event)
                case .error(let error): context.fireErrorCaught(error)
                }
            }
        }
        if readHeld, inFlight == nil || !requestReadWhole {
            readHeld = false
            context.read()
        }
    }

    /// Whether an event now would overtake a request: one held, or a write taken here and read
    /// whole (the router's own requests are behind it in the pipeline anyway). In the middle of
    /// a taken write's body, an event (a half close, a parser error) goes on at once: the body
    /// will not end, the write is never made, and the router ends the connection.
    private var holdsEvents: Bool {
        !held.isEmpty || (inFlight == .taken && reading == nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard holdsEvents else { return context.fireUserInboundEventTriggered(event) }
        heldEvents.append(.user(event))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard holdsEvents else { return context.fireErrorCaught(error) }
        heldEvents.append(.error(error))
    }

    private static func isHead(_ part: HTTPRequestPart) -> Bool {
        if case .head = part { return true }
        return false
    }

    /// The key and the body's length of a write this path takes, else nil.
    private func plainWrite(_ head: HTTPRequest) -> (KVKey, Int)? {
        guard head.method == .put, let path = head.path, path.hasPrefix(Self.prefix), takesFields(head.headerFields),
            let length = head.headerFields[.contentLength].flatMap(Int.init), length <= KVEntry.maxValueBytes,
            let key = Self.plainKey(path.utf8.dropFirst(Self.prefix.utf8.count))
        else { return nil }
        return (key, length)
    }

    /// The key and the consistency of a read of one key this path takes, else nil: no body, and
    /// no query but `stale=true` (the router takes `recurse`, `raw`, blocking queries).
    private func plainRead(_ head: HTTPRequest) -> (KVKey, stale: Bool)? {
        guard head.method == .get, let path = head.path, path.hasPrefix(Self.prefix), takesFields(head.headerFields),
            head.headerFields[.contentLength].map({ $0 == "0" }) ?? true
        else { return nil }
        var text = path.utf8.dropFirst(Self.prefix.utf8.count)
        var stale = false
        if let mark = text.firstIndex(of: UInt8(ascii: "?")) {
            guard text[text.index(after: mark)...].elementsEqual("stale=true".utf8) else { return nil }
            stale = true
            text = text[..<mark]
        }
        guard let key = Self.plainKey(text) else { return nil }
        return (key, stale)
    }

    /// Header fields that leave nothing to the router: no chunked body, `Expect` or `Connection`,
    /// an `Accept` the JSON answer meets (another the generated server checks: 406, or 400
    /// malformed), and the token where one is asked for.
    private func takesFields(_ fields: HTTPFields) -> Bool {
        fields[.transferEncoding] == nil && fields[.expect] == nil && fields[.connection] == nil
            && (fields[.accept].map(Self.acceptsJSON) ?? true) && (settings.token?.accepts(fields) ?? true)
    }

    /// A key whose characters no rule of the document's pattern and KeyRules differs on; the
    /// rest (`%`, `?`, spaces, non-ASCII) is for the router's full checks.
    private static func plainKey(_ text: Substring.UTF8View) -> KVKey? {
        guard text.allSatisfy(isPlainKeyByte) else { return nil }
        return try? KVKey(validating: String(decoding: text, as: UTF8.self))
    }

    private static let prefix = "/v1/kv/"

    /// The `Accept` values a client sends that take the answer's JSON as they stand.
    private static func acceptsJSON(_ value: String) -> Bool {
        value == "*/*" || value == "application/json"
    }

    fileprivate static func isPlainKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// Writes as `putKV` does and answers back on the loop. While this server leads, the write
    /// is handed to the Raft node without a task of its own (`APIHandler.submitPlainPut`, see
    /// `RaftNode.submit`). Elsewhere (a follower forwards to the leader) through `putKV` itself,
    /// off the loop.
    private func submit(_ key: KVKey, value: [UInt8], started: ContinuousClock.Instant, context: ChannelHandlerContext) {
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        // The batch starts once the loop has read its pass's requests (see `RaftNode.submit`).
        settings.handler.submitPlainPut(key: key, value: value, startBatch: { loop.execute($0) }) {
            loop.execute {
                let (fastPath, context) = bound.value
                fastPath.submitThroughPutKV(key, value: value, started: started, context: context)
            }
        } done: { submitted in
            loop.execute {
                let (fastPath, context) = bound.value
                let answer: Answer
                do throws(APIError) {
                    answer = try Answer.written(APIHandler.putKVOutput(submitted: submitted))
                } catch {
                    answer = Answer.refused(error)
                }
                fastPath.answer(answer, method: .put, started: started, context: context)
            }
        }
    }

    /// Writes through `putKV` itself, off the loop, and answers back on the loop.
    private func submitThroughPutKV(_ key: KVKey, value: [UInt8], started: ContinuousClock.Instant, context: ChannelHandlerContext) {
        let handler = settings.handler
        answerOffTheLoop(method: .put, started: started, context: context) {
            // The body as the middleware keeps it for the handler.
            Answer.written(try await RequestBody.$bytes.withValue(value) {
                try await handler.putKV(.init(path: .init(key: key.description)))
            })
        }
    }

    /// Reads through `getKV` itself, off the loop, and answers back on the loop.
    private func submitRead(_ key: KVKey, stale: Bool, started: ContinuousClock.Instant, context: ChannelHandlerContext) {
        let handler = settings.handler
        answerOffTheLoop(method: .get, started: started, context: context) {
            Answer.read(try await handler.getKV(.init(path: .init(key: key.description), query: .init(stale: stale ? true : nil))))
        }
    }

    /// Runs the handler's call in a task and answers with what it returns, or with the API's
    /// error shape for what it throws, back on the connection's loop.
    private func answerOffTheLoop(
        method: HTTPRequest.Method, started: ContinuousClock.Instant, context: ChannelHandlerContext,
        _ call: @escaping @Sendable () async throws -> Answer
    ) {
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        Task {
            let answer: Answer
            do {
                answer = try await call()
            } catch let error as APIError {
                answer = Answer.refused(error)
            } catch {
                answer = Answer.refused(APIError(code: APIErrorCode.internalError, message: "\(error)"))
            }
            loop.execute {
                let (fastPath, context) = bound.value
                fastPath.answer(answer, method: method, started: started, context: context)
            }
        }
    }

    /// What a write or a read is answered.
    private struct Answer: Sendable {
        var status: HTTPResponse.Status
        var fields: [(HTTPField.Name, String)]
        var body: Data
        var succeeded: Bool

        /// `putKV`'s 200.
        static func written(_ output: Operations.PutKV.Output) -> Answer {
            if case .ok(let written) = output, case .json(let entry) = written.body {
                // The entry without its value; `X-Flotilla-Index` alone before the content type.
                if let body = plainJSON(entry) {
                    return Answer(status: .ok, fields: fields(index: written.headers.xFlotillaIndex, lastContact: nil, knownLeader: nil),
                                  body: body, succeeded: true)
                }
                return json(status: .ok, entry, index: written.headers.xFlotillaIndex, lastContact: nil, knownLeader: nil)
            }
            return refused(APIError(code: APIErrorCode.internalError, message: "putKV answered \(output), which a write does not"))
        }

        /// `getKV`'s 200 (the entry) or 404 (the API's error).
        static func read(_ output: Operations.GetKV.Output) -> Answer {
            switch output {
            case .ok(let found):
                if case .json(.KVEntry(let entry)) = found.body, let body = plainJSON(entry) {
                    return Answer(status: .ok, fields: fields(index: found.headers.xFlotillaIndex, lastContact: found.headers.xFlotillaLastContact,
                                                              knownLeader: found.headers.xFlotillaKnownLeader), body: body, succeeded: true)
                }
                if case .json(let payload) = found.body {
                    return json(status: .ok, payload, index: found.headers.xFlotillaIndex,
                                lastContact: found.headers.xFlotillaLastContact, knownLeader: found.headers.xFlotillaKnownLeader)
                }
            case .notFound(let missing):
                if case .json(let error) = missing.body {
                    return json(status: .notFound, error, index: missing.headers.xFlotillaIndex,
                                lastContact: missing.headers.xFlotillaLastContact, knownLeader: missing.headers.xFlotillaKnownLeader)
                }
            default:
                break
            }
            return refused(APIError(code: APIErrorCode.internalError, message: "getKV answered \(output), which a read of one key does not"))
        }

        /// A JSON answer with the headers the generated server sets, in its order, before the
        /// content type.
        private static func json(status: HTTPResponse.Status, _ body: some Encodable, index: Int64, lastContact: Int64?, knownLeader: Bool?) -> Answer {
            do {
                return Answer(status: status, fields: fields(index: index, lastContact: lastContact, knownLeader: knownLeader),
                              body: try APIJSON.encoder().encode(body), succeeded: true)
            } catch {
                return refused(APIError(code: APIErrorCode.internalError, message: "the answer could not be encoded: \(error)"))
            }
        }

        private static func fields(index: Int64, lastContact: Int64?, knownLeader: Bool?) -> [(HTTPField.Name, String)] {
            var fields: [(HTTPField.Name, String)] = [(.flotillaIndex, String(index))]
            if let lastContact { fields.append((.flotillaLastContact, String(lastContact))) }
            if let knownLeader { fields.append((.flotillaKnownLeader, knownLeader ? "true" : "false")) }
            fields.append((.contentType, "application/json; charset=utf-8"))
            return fields
        }

        /// `entry` as `APIJSON`'s encoder writes it (keys sorted, `/` as it is), written
        /// directly: Foundation's encoder took 3 % of the leader's CPU at 16 writers. Only for a
        /// key of the fast path's plain bytes, which JSON writes as they are (so does it the
        /// value, standard base64 from `APIMapping.kvEntry`); nil for any other.
        private static func plainJSON(_ entry: Components.Schemas.KVEntry) -> Data? {
            guard entry.key.utf8.allSatisfy(KVFastPath.isPlainKeyByte) else { return nil }
            var text = #"{"createIndex":\#(entry.createIndex),"key":"\#(entry.key)","modifyIndex":\#(entry.modifyIndex),"size":\#(entry.size)"#
            if let value = entry.value { text += #","value":"\#(value)""# }
            text += "}"
            return Data(text.utf8)
        }

        /// The API's one error shape, as `APIErrorResponse` answers a handler's error.
        static func refused(_ error: APIError) -> Answer {
            Answer(status: HTTPResponse.Status(code: error.httpStatus), fields: [(.contentType, APIErrorResponse.contentType)],
                   body: APIErrorResponse.body(error), succeeded: false)
        }
    }

    private func answer(_ answer: Answer, method: HTTPRequest.Method, started: ContinuousClock.Instant, context: ChannelHandlerContext) {
        // As the middleware: answers count (the client gone or not), refusals do not.
        if answer.succeeded {
            settings.metrics.record(method: method, route: Self.route, statusCode: answer.status.code, duration: .now - started)
        }
        guard isAdded, context.channel.isActive else { return }
        var fields = HTTPFields()
        for (name, value) in answer.fields { fields.append(HTTPField(name: name, value: value)) }
        // Then what Hummingbird adds to every answer: its length, the date, the server's name.
        fields.append(HTTPField(name: .contentLength, value: String(answer.body.count)))
        fields.append(HTTPField(name: .date, value: date.now()))
        fields.append(HTTPField(name: .server, value: APIListeners.serverName))
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: answer.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        answered(context: context)
    }

    /// The route the router's metrics name these writes by.
    static let route = "/v1/kv/**"
}

extension KVFastPath {
    /// Put among Hummingbird's `additionalChannelHandlers`, which come before its
    /// `HTTPConnectionStateHandler`: at the connection's first request it puts the fast path
    /// after that handler and leaves.
    final class Installer: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart

        private let settings: Settings

        init(settings: Settings) {
            self.settings = settings
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let pipeline = context.pipeline.syncOperations
            do {
                let state = try pipeline.handler(type: HTTPConnectionStateHandler.self)
                try pipeline.addHandler(KVFastPath(settings: settings), position: .after(state))
            } catch {
                // The router then answers every write: right, but at the router's cost. Said
                // once per process, not once per connection.
                if !Self.toldOfFailure.exchange(true, ordering: .relaxed) {
                    settings.logger.warning(
                        "key-value writes go through the router: the fast path could not be put after Hummingbird's connection state handler (\(error))")
                }
            }
            context.fireChannelRead(data)
            pipeline.removeHandler(context: context, promise: nil)
        }

        private static let toldOfFailure = Atomic(false)
    }
}

extension HTTPField.Name {
    static let flotillaIndex = HTTPField.Name("X-Flotilla-Index")!
    static let flotillaLastContact = HTTPField.Name("X-Flotilla-Last-Contact")!
    static let flotillaKnownLeader = HTTPField.Name("X-Flotilla-Known-Leader")!
}

/// The `Date` header's text (RFC 9110 §5.6.7), made once a second.
private struct HTTPDate {
    private var second: time_t = -1
    private var text = ""

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    mutating func now() -> String {
        var clock = time(nil)
        guard clock != second else { return text }
        var parts = tm()
        gmtime_r(&clock, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        text = "\(Self.days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(Self.months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
        second = clock
        return text
    }
}
