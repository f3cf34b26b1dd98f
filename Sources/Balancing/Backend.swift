/// One instance a balancer may send a connection or request to.
///
/// The balancer knows a backend by its `id` alone: an update that keeps an id keeps that
/// backend's outstanding requests, its ejection state and its place in the rotation, even when
/// its address, port or weight changed.
public struct Backend: Hashable, Sendable {
    /// The largest weight accepted. SRV records carry 16-bit weights; keeping ours in the same
    /// range lets DNS and the proxy describe one catalog, and keeps the weighted scheduler's
    /// fixed-point arithmetic exact (see `WeightedSchedule`).
    public static let maximumWeight = 65_535

    /// The instance id, stable for the instance's life.
    public var id: String
    /// Host name or IP address to connect to.
    public var address: String
    /// TCP port to connect to, 1...65535.
    public var port: Int
    /// Share of traffic relative to the other backends, 1...`maximumWeight`. Used by the
    /// `weighted` strategy and, as the number of ring points, by `consistent-hash`; the other
    /// strategies treat all backends alike.
    public var weight: Int

    /// A backend. Nothing is checked here: `Balancer.init` and `Balancer.update(backends:)`
    /// refuse a set with an invalid backend, naming every problem (a weight of 0 or below is a
    /// caller error, reported, never clamped).
    public init(id: String, address: String, port: Int, weight: Int = 1) {
        self.id = id
        self.address = address
        self.port = port
        self.weight = weight
    }
}

extension Backend {
    /// Every problem with a whole set: each backend's fields, and ids used more than once.
    static func problems(in backends: [Backend]) -> [BalancingProblem] {
        var problems: [BalancingProblem] = []
        var firstIndexByID: [String: Int] = [:]
        for (index, backend) in backends.enumerated() {
            func add(_ field: String, _ message: String) {
                problems.append(BalancingProblem(
                    path: "backends[\(index)].\(field)", message: "backend \"\(backend.id)\": \(message)"))
            }
            if backend.id.isEmpty { add("id", "must not be empty") }
            if backend.address.isEmpty { add("address", "must not be empty") }
            if !(1...65_535).contains(backend.port) { add("port", "\(backend.port) is outside 1...65535") }
            if !(1...Backend.maximumWeight).contains(backend.weight) {
                add("weight", "\(backend.weight) is outside 1...\(Backend.maximumWeight); give a weight of at least 1, or leave the backend out")
            }
            if let first = firstIndexByID[backend.id] {
                add("id", "is also the id of backends[\(first)]; ids must be unique")
            } else {
                firstIndexByID[backend.id] = index
            }
        }
        return problems
    }
}
