import Synchronization

/// How many queries the server answered, by response code, and how many it dropped: counters for
/// metrics, read with `DNSServer.counts`.
public struct DNSServerCounts: Sendable, Equatable {
    /// Responses sent, by response code.
    public var responses: [DNSResponseCode: UInt64]
    /// Responses sent with TC set.
    public var truncated: UInt64
    /// Packets not answered: shorter than a header, or responses.
    public var dropped: UInt64
    /// TCP connections refused because `maxTCPConnections` were open.
    public var refusedConnections: UInt64
}

/// The live counters: relaxed atomic adds, one per query, shared by every channel.
final class DNSServerCounters: Sendable {
    private let byCode: [DNSCounter]
    private let truncated = Atomic<UInt64>(0)
    private let dropped = Atomic<UInt64>(0)
    private let refusedConnections = Atomic<UInt64>(0)

    init() {
        byCode = DNSResponseCode.allCases.map { _ in DNSCounter() }
    }

    func record(_ reply: DNSReply) {
        switch reply {
        case .drop:
            dropped.wrappingAdd(1, ordering: .relaxed)
        case .send(_, let code, let wasTruncated):
            if let index = DNSResponseCode.allCases.firstIndex(of: code) {
                byCode[index].value.wrappingAdd(1, ordering: .relaxed)
            }
            if wasTruncated { truncated.wrappingAdd(1, ordering: .relaxed) }
        }
    }

    func recordRefusedConnection() {
        refusedConnections.wrappingAdd(1, ordering: .relaxed)
    }

    var snapshot: DNSServerCounts {
        var responses: [DNSResponseCode: UInt64] = [:]
        for (index, code) in DNSResponseCode.allCases.enumerated() {
            responses[code] = byCode[index].value.load(ordering: .relaxed)
        }
        return DNSServerCounts(
            responses: responses, truncated: truncated.load(ordering: .relaxed),
            dropped: dropped.load(ordering: .relaxed), refusedConnections: refusedConnections.load(ordering: .relaxed))
    }
}

/// One atomic counter in a class of its own, so that several can sit in an array.
final class DNSCounter: Sendable {
    let value = Atomic<UInt64>(0)
}
