/// One client operation as the client saw it: when it was invoked, when (and with what) it
/// returned. An operation whose outcome the client never learnt has `returnTime == .max`:
/// it may have taken effect at any point after its call, or never (Porcupine's convention).
struct KVOperation: Equatable, CustomStringConvertible {
    enum Input: Equatable {
        case put(String)
        case get
        case cas(expected: String?, value: String)
    }

    enum Output: Equatable {
        /// A put or CAS that took effect.
        case ok
        /// A CAS whose comparison failed.
        case casFailed
        /// What a get read (nil: absent).
        case value(String?)
        /// A put or CAS whose outcome the client never learnt.
        case unknown
    }

    var client: Int
    var key: String
    var input: Input
    var output: Output
    var callTime: UInt64
    var returnTime: UInt64

    var description: String {
        let returned = returnTime == .max ? "∞" : "\(returnTime)"
        return "c\(client) [\(callTime), \(returned)] \(key) \(input) -> \(output)"
    }
}
