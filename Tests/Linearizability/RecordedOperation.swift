/// One operation on one key of the key-value store, as the client that made it saw it: what it
/// asked for, when, and what came back.
///
/// Times are nanoseconds on one monotonic clock shared by every client of a run (all clients in
/// one process, reading `CLOCK_MONOTONIC`): the check orders operations by these times alone, so
/// clocks of different machines must not be mixed. `client` is only for people reading an
/// explanation; program order within a client follows from the times.
public struct RecordedOperation: Sendable, Hashable {
    /// What was asked. Values are strings; nil is the key being absent (every key starts absent).
    public enum Kind: Sendable, Hashable {
        case read
        /// Sets the value; nil deletes the key.
        case write(String?)
        /// Sets the value to `new` if it is `expected` (nil: only if the key is absent).
        case cas(expected: String?, new: String?)
    }

    /// What came back.
    public enum Outcome: Sendable, Hashable {
        /// It took effect. For a read, the value it returned (nil: the key was absent); for a
        /// write or a CAS that swapped, nil.
        case ok(String?)
        /// A CAS whose comparison failed: it took effect, as a read that found the value was not
        /// `expected`. (A refusal that never compared anything is `.failed`.)
        case compareFailed
        /// It certainly did not take effect: refused before anything was applied (an HTTP 4xx, a
        /// "not the leader" that the server promises it did not act on). Such operations are left
        /// out of the check.
        case failed
        /// It may or may not have taken effect, at any time after its call, even long after the
        /// client gave up (a timeout, a lost connection: Jepsen's `:info`). Its return time is
        /// treated as infinity.
        case unknown
    }

    public var client: Int
    public var key: String
    public var kind: Kind
    public var callTime: UInt64
    /// When the answer came back; for `.unknown`, when the client gave up waiting. The check
    /// does not use it for `.unknown` (the request may still be sitting in a server's queue),
    /// but explanations show it.
    public var returnTime: UInt64
    public var outcome: Outcome

    public init(client: Int, key: String, kind: Kind, callTime: UInt64, returnTime: UInt64, outcome: Outcome) {
        self.client = client
        self.key = key
        self.kind = kind
        self.callTime = callTime
        self.returnTime = returnTime
        self.outcome = outcome
    }
}
